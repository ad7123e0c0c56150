/**
 * Provisioning: the users manager's `findOrCreate(sub, { email, name, iss })`
 * for a verified token, its disabled flag, and the deny-list checked again
 * for the local user id. Concurrent authentications of one subject share one
 * call; with `provisionCacheTtl` its result is reused for that long.
 */
import { OidcAuthError } from "../errors.js";
import { hasUsersManager, issOf, subjectKey } from "../claims/identity.js";
import { denyListOf } from "../stores/denyList.js";
import { recordRevocations, revocationNow } from "../stores/revocationStore.js";
import type { OidcAppHandle, OidcConfig, OidcProvisionedUser, OidcUserContext } from "../types.js";
import { appPart } from "../util/appState.js";
import { oidcLog } from "../util/log.js";
import { describeError, show } from "../util/text.js";
import { TimeoutError, withTimeout } from "../util/withTimeout.js";
import { refuseRevoked } from "./refuseRevoked.js";
import { withProvisionedUser } from "./userContext.js";
import { freezeContext } from "./sharedContext.js";

/**
 * How a disabled user's live connections end when the app has no session
 * tracker: set by the layer that holds them (`sockets/`), so this layer does
 * not reach up for them. Without it, the revocation is recorded only (an app
 * without sockets has no live connections to end).
 */
export const disabledUserRevoker = appPart<{ revoke?: (userId: string, reason: string) => void }>("disabled-user revoker", () => ({}));

/** One users manager's in-flight and (optionally) recent `findOrCreate` results, by subject (`subjectKey(iss, sub)`). */
interface ProvisionState {
  inFlight: Map<string, Promise<OidcProvisionedUser>>;
  recent: Map<string, { user: OidcProvisionedUser; until: number }>;
}

/** The app's provisioning state, for the users manager it was made for (a replaced manager starts afresh). */
const provisioning = appPart<{ users?: object; state?: ProvisionState }>("provisioning", () => ({}));

/** Bound on remembered results (`provisionCacheTtl`); the oldest go first. */
const PROVISION_CACHE_MAX = 10_000;

async function callFindOrCreate(users: object, findOrCreate: (...args: unknown[]) => unknown, context: OidcUserContext, iss: string, config: OidcConfig): Promise<OidcProvisionedUser> {
  const call = `users.findOrCreate(${show(context.sub)}, { iss: ${show(iss)} })`;
  let user: unknown;
  try {
    user = await withTimeout(() => findOrCreate.call(users, context.sub, { email: context.email, name: context.name, iss }), config.provisionTimeout, call);
  } catch (error) {
    throw new OidcAuthError("ERR_USER_PROVISION_FAILED", {
      reason: error instanceof TimeoutError ? error.message : `${call} threw: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
  const id = (user as { id?: unknown } | null)?.id;
  if (user === null || typeof user !== "object" || (typeof id !== "string" && typeof id !== "number") || id === "") {
    throw new OidcAuthError("ERR_USER_PROVISION_FAILED", {
      reason: `${call} returned no record with a string or number id`,
    });
  }
  // The id names a room and Redis keys: a lone surrogate cannot be encoded (String.prototype.isWellFormed, ES2024).
  if (typeof id === "string" && !(id as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    throw new OidcAuthError("ERR_USER_PROVISION_FAILED", { reason: `${call} returned an id that is not a well-formed string: ${show(id)}` });
  }
  return user as OidcProvisionedUser;
}

/**
 * `users.findOrCreate(sub, { email, name, iss })`: concurrent authentications
 * of one subject (issuer and `sub`) share a single call; with
 * `provisionCacheTtl` its result is reused for that long (a disabled flag set
 * meanwhile is then seen late).
 */
async function provision(appHandle: OidcAppHandle, context: OidcUserContext, iss: string, config: OidcConfig): Promise<OidcProvisionedUser | undefined> {
  if (!hasUsersManager(appHandle)) return undefined;
  const users = appHandle.users as { findOrCreate: (...args: unknown[]) => unknown };
  const part = provisioning.of(appHandle);
  if (part.users !== users || part.state === undefined) {
    part.users = users;
    part.state = { inFlight: new Map(), recent: new Map() };
  }
  const state = part.state;
  const { inFlight, recent } = state;
  const key = subjectKey(iss, context.sub);
  if (config.provisionCacheTtl > 0) {
    const remembered = recent.get(key);
    if (remembered !== undefined && remembered.until > Date.now()) return remembered.user;
    if (remembered !== undefined) recent.delete(key);
  }
  let pending = inFlight.get(key);
  if (pending === undefined) {
    pending = callFindOrCreate(users, users.findOrCreate, context, iss, config);
    inFlight.set(key, pending);
    const settled = pending;
    settled.then(
      (user) => {
        if (inFlight.get(key) === settled) inFlight.delete(key);
        if (config.provisionCacheTtl > 0) {
          recent.delete(key);
          recent.set(key, { user, until: Date.now() + config.provisionCacheTtl });
          if (recent.size > PROVISION_CACHE_MAX) recent.delete(recent.keys().next().value as string);
        }
      },
      () => {
        if (inFlight.get(key) === settled) inFlight.delete(key);
      },
    );
  }
  return pending;
}

/** A revoked user is not revoked again (and broadcast to every node) for this long after the last time, in seconds. */
const DISABLED_COOLDOWN_S = 5;

/**
 * A disabled user keeps no live socket, and their tokens issued so far stay
 * refused (the deny-list): through the session tracker's
 * `disconnectUser(userId, reason)` when it has one (cluster-wide trackers),
 * else this process's registry of authenticated sockets. Once per user per
 * token: a token the deny-list already covers (or a revocation of the last
 * few seconds) needs no new broadcast.
 */
function disconnectDisabledUser(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig): void {
  const userId = context.userId;
  const known = denyListOf(appHandle).check(context, { clockTolerance: config.clockTolerance });
  if (known !== undefined || recentlyRevoked(appHandle, userId)) return;
  const reason = "user disabled";
  const session = appHandle.session as { disconnectUser?: unknown } | null | undefined;
  try {
    if (session !== null && typeof session === "object" && typeof session.disconnectUser === "function") {
      Promise.resolve((session.disconnectUser as (id: string, reason: string) => unknown).call(session, userId, reason)).catch((error: unknown) =>
        oidcLog(appHandle, 3, `session.disconnectUser failed: ${describeError(error)}`),
      );
    } else {
      const revoke = disabledUserRevoker.of(appHandle).revoke;
      if (revoke !== undefined) revoke(userId, reason);
      else recordRevocations(appHandle, [revocationNow("user", "", userId, config)])();
    }
  } catch (error) {
    oidcLog(appHandle, 3, `disconnecting disabled user failed: ${describeError(error)}`);
  }
}

const lastRevoked = appPart("disabled-user cooldown", () => new Map<string, number>());

/** Whether the user was revoked as disabled in the last few seconds (and note that it is now). Bounded per app. */
function recentlyRevoked(appHandle: OidcAppHandle, userId: string): boolean {
  const times = lastRevoked.of(appHandle);
  const now = Date.now();
  const last = times.get(userId);
  if (last !== undefined && now - last < DISABLED_COOLDOWN_S * 1000) return true;
  if (times.size >= 10_000) times.clear();
  times.set(userId, now);
  return false;
}

/** The users manager's record applied to a verified context, or `ERR_USER_DISABLED` / `ERR_AUTH_REVOKED`. */
export async function provisioned(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig): Promise<OidcUserContext> {
  const iss = issOf(context) ?? config.issuer;
  const user = await provision(appHandle, context, iss, config);
  if (user === undefined) return context;
  const provisioned = freezeContext(withProvisionedUser(context, user));
  if (user.isDisabled === true) {
    disconnectDisabledUser(appHandle, provisioned, config);
    throw new OidcAuthError("ERR_USER_DISABLED", { reason: `user ${show(String(user.id))} (iss ${show(iss)}, sub ${show(context.sub)}) is disabled` });
  }
  refuseRevoked(appHandle, provisioned, config, true);
  return provisioned;
}
