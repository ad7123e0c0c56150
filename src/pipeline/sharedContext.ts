/**
 * User contexts are built once per verification and shared: a cached token's
 * context is built on its first use and handed to every later request or
 * socket that presents the same token. So every context is frozen, with its
 * arrays and `features` (its `claims` are frozen already).
 */
import { derivedUserId } from "../claims/identity.js";
import type { OidcConfig, OidcUserContext } from "../types.js";
import type { VerifiedToken } from "../verify/verifyAccessToken.js";
import { buildUserContext } from "./userContext.js";

/** The user context of a verified token under `config`, built on first use and kept with the verification. */
export function sharedContext(verified: VerifiedToken, config: OidcConfig): OidcUserContext {
  const known = verified.context;
  if (known !== undefined) return known;
  const { payload, issuer } = verified;
  // buildUserContext hands out its lists and `features` frozen already: only the context itself is left.
  return (verified.context = Object.freeze(buildUserContext(payload, issuer.mapClaims, derivedUserId(issuer.issuer, payload.sub as string, config))));
}

/** Freeze a context and what it holds. */
export function freezeContext(context: OidcUserContext): OidcUserContext {
  Object.freeze(context.roles);
  Object.freeze(context.permissions);
  Object.freeze(context.scopes);
  Object.freeze(context.features);
  return Object.freeze(context);
}
