import { OidcAuthError } from "../errors.js";
import { normalizeConfig } from "../config/normalize.js";
import { derivedUserId } from "../claims/identity.js";
import { buildUserContext } from "./userContext.js";
import { verifyAccessTokenNow, type VerifiedToken } from "../verify/verifyAccessToken.js";
import type { OidcConfig, OidcConfigInput, OidcUserContext } from "../types.js";

function userContextOf({ payload, issuer }: VerifiedToken, config: OidcConfig): OidcUserContext {
  return buildUserContext(payload, issuer.mapClaims, derivedUserId(issuer.issuer, payload.sub as string, config));
}

/**
 * Verify a raw JWT access token and map its claims.
 *
 * Resolves to an `OidcUserContext`. No users manager is consulted here, so
 * `userId` is derived from the subject: the `sub` when the config trusts one
 * issuer, `<iss>#<sub>` when it trusts several. Rejects with an
 * `OidcAuthError` whose `code` is safe to show a client and whose `reason`
 * explains the failure for your log.
 *
 * `config` is validated on first use, then frozen (with the plain objects
 * and arrays inside it): mutating it afterwards throws a `TypeError` in
 * strict mode. The same object, or a new one equal in content to a recent
 * one, reuses the validated form and its verified-token cache — so passing a
 * fresh literal per call is cheap, and a changed configuration is a new
 * object.
 */
export function verifyOidcToken(token: string, config: OidcConfigInput | OidcConfig): Promise<OidcUserContext> {
  try {
    let normalized: OidcConfig;
    try {
      normalized = normalizeConfig(config as OidcConfigInput);
    } catch (error) {
      throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: (error as Error).message, cause: error });
    }
    // No promise in between when the token is verified at once (cached, or fresh keys and the fast path).
    const verified = verifyAccessTokenNow(token, normalized);
    return verified instanceof Promise ? verified.then((each) => userContextOf(each, normalized)) : Promise.resolve(userContextOf(verified, normalized));
  } catch (error) {
    return Promise.reject(error);
  }
}
