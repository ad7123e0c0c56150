import { OidcAuthError } from "./OidcAuthError.js";
import { normalizeConfig } from "./lib/config.js";
import { derivedUserId } from "./lib/identity.js";
import { buildUserContext } from "./lib/userContext.js";
import { verifyAccessTokenNow, type VerifiedToken } from "./lib/verifyAccessToken.js";
import type { OidcConfig, OidcConfigInput, OidcUserContext } from "./types.js";

/** Each config object is validated once (and keeps one token cache): reuse the object, don't mutate it. */
const normalizedInputs = new WeakMap<object, OidcConfig>();

function userContextOf({ payload, issuer }: VerifiedToken, config: OidcConfig): OidcUserContext {
  return buildUserContext(payload, issuer.mapClaims, derivedUserId(issuer.issuer, payload.sub as string, config));
}

/**
 * Verify a raw JWT access token and map its claims.
 *
 * Resolves to an `OidcUserContext`. No users manager is consulted here, so
 * `userId` is derived from the subject: the `sub` when the config trusts one
 * issuer, `<iss>#<sub>` when it trusts several. Rejects with an `OidcAuthError` whose `code` is safe to
 * show a client and whose `reason` explains the failure for your log.
 */
export function verifyOidcToken(token: string, config: OidcConfigInput | OidcConfig): Promise<OidcUserContext> {
  try {
    let normalized = config !== null && typeof config === "object" ? normalizedInputs.get(config) : undefined;
    if (normalized === undefined) {
      try {
        normalized = normalizeConfig(config as OidcConfigInput);
      } catch (error) {
        throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: (error as Error).message, cause: error });
      }
      normalizedInputs.set(config, normalized);
    }
    // No promise in between when the token is verified at once (cached, or fresh keys and the fast path).
    const verified = verifyAccessTokenNow(token, normalized);
    const resolved = normalized;
    return verified instanceof Promise ? verified.then((each) => userContextOf(each, resolved)) : Promise.resolve(userContextOf(verified, resolved));
  } catch (error) {
    return Promise.reject(error);
  }
}
