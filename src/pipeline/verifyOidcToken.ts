import type { OidcVerificationReport } from "../diagnostics.js";
import { OidcAuthError } from "../errors.js";
import { normalizeConfig } from "../config/normalize.js";
import { sharedContext } from "./sharedContext.js";
import { verifyAccessTokenNow } from "../verify/verifyAccessToken.js";
import type { OidcConfig, OidcConfigInput, OidcUserContext } from "../types.js";
import { issOf } from "../claims/identity.js";
import { observeAuth, observingAuth } from "./observe.js";
import { prooflessRefusal } from "./dpopBinding.js";

/**
 * Verify a raw JWT access token and map its claims.
 *
 * Resolves to an `OidcUserContext` (frozen: the context of a cached token is
 * shared by every call that presents it). No users manager is consulted here, so
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
 *
 * No proof of possession is checked: a token bound to a key (a `cnf` claim,
 * e.g. DPoP's `cnf.jkt`), or issued by an issuer whose DPoP policy is
 * `"required"`, is refused with `ERR_AUTH_TOKEN_INVALID`, as the
 * middlewares refuse it without its proof.
 *
 * Published on the `auth` channel (transport `"verify"`) and the
 * `authenticate` tracing channel when they have subscribers.
 */
export function verifyOidcToken(token: string, config: OidcConfigInput | OidcConfig): Promise<OidcUserContext> {
  try {
    const result = observingAuth() ? observeAuth("verify", token, config, normalizedOrNot, issOf, verifyObserved) : verifyNow(token, config);
    return result instanceof Promise ? result : Promise.resolve(result);
  } catch (error) {
    return Promise.reject(error);
  }
}

const verifyObserved = (config: OidcConfigInput | OidcConfig, token: string | undefined, report: OidcVerificationReport | undefined) => verifyNow(token as string, config, report);

function verifyNow(token: string, config: OidcConfigInput | OidcConfig, report?: OidcVerificationReport): OidcUserContext | Promise<OidcUserContext> {
  let normalized: OidcConfig;
  try {
    normalized = normalizeConfig(config as OidcConfigInput);
  } catch (error) {
    throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: (error as Error).message, cause: error });
  }
  // No promise in between when the token is verified at once (cached, or fresh keys and the fast path).
  const verified = verifyAccessTokenNow(token, normalized, undefined, report);
  return verified instanceof Promise ? verified.then((each) => withoutProof(sharedContext(each, normalized), normalized)) : withoutProof(sharedContext(verified, normalized), normalized);
}

/** No proof of possession is checked here: a token bound to a key (any `cnf`), or of an issuer that requires DPoP, is refused. */
function withoutProof(context: OidcUserContext, config: OidcConfig): OidcUserContext {
  const reason = prooflessRefusal(context, config, "verified without a proof (verifyOidcToken checks none)");
  if (reason !== undefined) throw new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason });
  return context;
}

function normalizedOrNot(config: OidcConfigInput | OidcConfig): OidcConfig | undefined {
  try {
    return normalizeConfig(config as OidcConfigInput);
  } catch {
    return undefined;
  }
}
