/**
 * The one authentication pipeline. Transports extract the token and apply the
 * result; everything between (config, verification, provisioning, the
 * disabled check, claim mapping, logging) happens here.
 */
import { isOidcAuthError, OidcAuthError } from "../errors.js";
import { resolveConfig } from "../config/resolve.js";
import { buildUserContext, withProvisionedUser } from "./userContext.js";
import { revokeUserSockets } from "../sockets/revoke.js";
import { derivedUserId, hasUsersManager, issOf, subjectKey } from "../claims/identity.js";
import { denyListOf, type OidcRevocation } from "../stores/denyList.js";
import { recordRevocations, revocationNow } from "../stores/revocationStore.js";
import { verifyAccessToken } from "../verify/verifyAccessToken.js";
import { TimeoutError, withTimeout } from "../util/withTimeout.js";
import type { OidcAppHandle, OidcConfig, OidcProvisionedUser, OidcUserContext } from "../types.js";
import { oidcLog, safeLog } from "../util/log.js";
import { show } from "../util/text.js";

/** Syslog level used to log each failure. */
const LOG_LEVEL: Readonly<Record<OidcAuthError["code"], number>> = {
  ERR_AUTH_TOKEN_REQUIRED: 7,
  ERR_AUTH_TOKEN_INVALID: 4,
  ERR_USER_DISABLED: 4,
  ERR_FORBIDDEN: 4,
  ERR_USER_PROVISION_FAILED: 3,
  ERR_AUTH_MISCONFIGURED: 3,
  ERR_AUTH_UNAVAILABLE: 3,
  ERR_AUTH_TOKEN_EXPIRED: 6,
  ERR_AUTH_SUBJECT_MISMATCH: 4,
  ERR_AUTH_RATE_LIMITED: 4,
  ERR_AUTH_REVOKED: 6,
};

export interface AuthenticateResult {
  context: OidcUserContext;
  config: OidcConfig;
}

const loggers = new WeakMap<OidcAppHandle, (level: number, text: string) => void>();

/** One logger function per app (key sets remember the loggers they report to). */
export function loggerOf(appHandle: OidcAppHandle): ((level: number, text: string) => void) | undefined {
  if (typeof appHandle.log !== "function") return undefined;
  let logger = loggers.get(appHandle);
  if (logger === undefined) loggers.set(appHandle, (logger = (level, text) => safeLog(appHandle, level, text)));
  return logger;
}

/** Log an auth failure (never the token) and return it as an `OidcAuthError`. */
export function reportFailure(appHandle: OidcAppHandle, where: string, error: unknown): OidcAuthError {
  const failure = isOidcAuthError(error)
    ? error
    : new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: `unexpected error: ${String(error)}`, cause: error });
  oidcLog(appHandle, LOG_LEVEL[failure.code] ?? 3, `${where}: ${failure.code}: ${failure.reason}`);
  return failure;
}

/** One users manager's in-flight and (optionally) recent `findOrCreate` results, by subject (`subjectKey(iss, sub)`). */
interface ProvisionState {
  inFlight: Map<string, Promise<OidcProvisionedUser>>;
  recent: Map<string, { user: OidcProvisionedUser; until: number }>;
}

const provisionStates = new WeakMap<object, ProvisionState>();

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
  let state = provisionStates.get(users);
  if (state === undefined) provisionStates.set(users, (state = { inFlight: new Map(), recent: new Map() }));
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
        oidcLog(appHandle, 3, `session.disconnectUser failed: ${String(error)}`),
      );
    } else {
      const publish = recordRevocations(appHandle, [revocationNow("user", "", userId, config)]);
      revokeUserSockets(appHandle, userId, config, reason);
      publish();
    }
  } catch (error) {
    oidcLog(appHandle, 3, `disconnecting disabled user failed: ${String(error)}`);
  }
}

const lastRevoked = new WeakMap<object, Map<string, number>>();

/** Whether the user was revoked as disabled in the last few seconds (and note that it is now). Bounded per app. */
function recentlyRevoked(appHandle: OidcAppHandle, userId: string): boolean {
  let times = lastRevoked.get(appHandle);
  if (times === undefined) lastRevoked.set(appHandle, (times = new Map()));
  const now = Date.now();
  const last = times.get(userId);
  if (last !== undefined && now - last < DISABLED_COOLDOWN_S * 1000) return true;
  if (times.size >= 10_000) times.clear();
  times.set(userId, now);
  return false;
}

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

/**
 * Authenticate a token for an IOServer app: resolve the config, verify,
 * provision through `appHandle.users.findOrCreate` when present, refuse
 * disabled users. Rejects with `OidcAuthError` only.
 */
export async function authenticate(token: string | undefined, appHandle: OidcAppHandle): Promise<AuthenticateResult> {
  if (token === undefined || token === "") {
    throw new OidcAuthError("ERR_AUTH_TOKEN_REQUIRED", { reason: "no bearer token was presented" });
  }
  const config = resolveConfig(appHandle);
  const { payload, issuer } = await verifyAccessToken(token, config, loggerOf(appHandle));
  const context = buildUserContext(payload, issuer.mapClaims, derivedUserId(issuer.issuer, payload.sub as string, config));
  refuseRevoked(appHandle, context, config);
  // Without a users manager nothing else is asked: no further wait.
  if (!hasUsersManager(appHandle)) return { context, config };
  return { context: await provisioned(appHandle, context, config), config };
}

/**
 * What follows verification, for a fresh token and for a socket restored by
 * connection-state recovery alike: the deny-list, then (with a users manager)
 * provisioning, the disabled check and the deny-list again for the local
 * user id. Resolves to the context with the users manager's id and role.
 */
export async function admit(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig): Promise<OidcUserContext> {
  refuseRevoked(appHandle, context, config);
  return hasUsersManager(appHandle) ? provisioned(appHandle, context, config) : context;
}

/** The users manager's record applied to a verified context, or `ERR_USER_DISABLED` / `ERR_AUTH_REVOKED`. */
async function provisioned(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig): Promise<OidcUserContext> {
  const iss = issOf(context) ?? config.issuer;
  const user = await provision(appHandle, context, iss, config);
  if (user === undefined) return context;
  const provisioned = withProvisionedUser(context, user);
  if (user.isDisabled === true) {
    disconnectDisabledUser(appHandle, provisioned, config);
    throw new OidcAuthError("ERR_USER_DISABLED", { reason: `user ${show(String(user.id))} (iss ${show(iss)}, sub ${show(context.sub)}) is disabled` });
  }
  refuseRevoked(appHandle, provisioned, config, true);
  return provisioned;
}
