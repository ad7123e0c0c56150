import { hasUsersManager, issOf } from "../claims/identity.js";
import { OidcAuthError } from "../errors.js";
import { denyListOf, type OidcRevocation } from "../stores/denyList.js";
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { show } from "../util/text.js";

/**
 * Refuse a token the app's deny-list covers (`ERR_AUTH_REVOKED`).
 * `userIds`: whether `context.userId` is already the users manager's id (see
 * `DenyList.check`); by default, whether the app has no users manager (then
 * every `userId` is derived and final).
 */
export function refuseRevoked(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig, userIds?: boolean): void {
  const list = denyListOf(appHandle);
  if (list.size === 0) return; // the usual case: nothing is built or allocated
  const revoked: OidcRevocation | undefined = list.check(context, { clockTolerance: config.clockTolerance, userIds: userIds ?? !hasUsersManager(appHandle) });
  if (revoked === undefined) return;
  throw new OidcAuthError("ERR_AUTH_REVOKED", {
    reason: `token of iss ${show(issOf(context))} sub ${show(context.sub)} (iat ${show(context.claims["iat"])}) was revoked at ${revoked.at} (${revoked.kind} ${show(revoked.value)})`,
  });
}
