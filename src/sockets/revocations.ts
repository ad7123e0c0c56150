/**
 * The one revocation path: ending a user's, a subject's or an OP session's
 * live connections, and keeping their tokens refused until they expire.
 * The session manager's `disconnect*` methods, the back-channel logout and a
 * disabled user all come here.
 *
 * Each revocation is recorded in the app's deny-list at once (this node
 * refuses the tokens from now on), broadcast through Socket.IO's adapter to
 * the `oidc:*` rooms of the sockets it covers (every node, with the Redis
 * adapter; see `rooms.ts`), then written to the shared revocation store, if
 * any, so that nodes hear the broadcast (with its reason) first.
 */
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { issOf, subjectsOfDerivedUserId } from "../claims/identity.js";
import { resolveConfig } from "../config/resolve.js";
import type { OidcRevocation } from "../stores/denyList.js";
import { healthOf } from "../stores/health.js";
import { recordRevocations, revocationNow } from "../stores/revocationStore.js";
import { oidcLog } from "../util/log.js";
import { describeError, show } from "../util/text.js";
import { clusterOf } from "./cluster.js";
import { revokedPayload } from "./protocol.js";
import { registryOf } from "./registry.js";
import { revokeInRooms, revokeUserSockets } from "./revoke.js";
import { oidcRoom, sidOf, subRoom } from "./rooms.js";
import { contextOf } from "./socketState.js";
import { revocationChannel, type OidcRevocationMessage } from "../diagnostics.js";

/** How long to wait for the other nodes' answers when counting the sockets a revocation reaches, by default (ms). */
export const DEFAULT_CLUSTER_TIMEOUT = 5_000;

export interface RevokeOptions {
  /** Sent to the clients with `oidc:revoked`. */
  reason?: string | undefined;
  /** Longest wait for the other nodes' counts (ms). */
  clusterTimeout?: number | undefined;
  /**
   * The tokens the revocation covers were issued at or before this time
   * (epoch s); default now. A back-channel logout passes its own `iat`, so
   * that recording it again changes nothing.
   */
  issuedBy?: number | undefined;
}

/** The `issuedBy` of the revocations made while `asOf` runs its work (a back-channel logout through the app's session tracker). */
let issuedByScope: number | undefined;

/**
 * Run `work` (a session tracker's `disconnect*` call) so that the
 * revocations it makes through the package cover the tokens issued up to
 * `issuedBy` (epoch s) rather than up to now: a logout delivered late must
 * not refuse a sign-in made after it. The scope holds while `work` runs
 * synchronously, which is where `OidcSessionManager`'s methods revoke (the
 * first part of an async function runs at once); a tracker that revokes
 * only after an await of its own revokes as of then. A synchronous scope,
 * not an `AsyncLocalStorage`: on Node 20 and 22 the latter turns on a hook
 * for every promise of the process, for good.
 */
export function asOf<T>(issuedBy: number, work: () => T): T {
  const outer = issuedByScope;
  issuedByScope = issuedBy;
  try {
    return work();
  } finally {
    issuedByScope = outer;
  }
}

function stamped(options: RevokeOptions, entries: OidcRevocation[]): OidcRevocation[] {
  const at = options.issuedBy ?? issuedByScope;
  return at === undefined ? entries : entries.map((entry) => ({ ...entry, at }));
}

/**
 * Every socket of a user, by `userId`: the users manager's id, else the id
 * derived from the subject. Resolves to the number of sockets found (this
 * node's, plus those the other nodes reported in time).
 */
export async function revokeUser(app: OidcAppHandle, userId: string, options: RevokeOptions = {}): Promise<number> {
  const config = configOf(app, "disconnectUser");
  const subjects = subjectsOfDerivedUserId(app, userId, config);
  const rooms = [oidcRoom.user(userId), ...subjects.map(([iss, sub]) => oidcRoom.issuerSub(iss, sub))];
  const started = revocationChannel.hasSubscribers ? performance.now() : undefined;
  const publish = recordRevocations(app, stamped(options, [revocationNow("user", "", userId, config), ...subjects.map(([iss, sub]) => revocationNow("subject", iss, sub, config))]));
  const reach = await broadcast(app, "user", rooms, options, () => revokeUserSockets(app, userId, config, options.reason));
  publish();
  observed("user", started, reach);
  const { count } = reach;
  log(app, count, `user ${show(userId)}`, options.reason);
  return count;
}

/** Every socket whose token carries the OP session id `sid` (from `iss`, or from any trusted issuer). */
export async function revokeSessionId(app: OidcAppHandle, sid: string, iss: string | undefined, options: RevokeOptions = {}): Promise<number> {
  const issuers = iss !== undefined ? [iss] : issuersFor(app, "disconnectSessionId", allContexts(app, (context) => sidOf(context) === sid));
  const config = configOf(app, "disconnectSessionId");
  const started = revocationChannel.hasSubscribers ? performance.now() : undefined;
  const publish = recordRevocations(app, stamped(options, issuers.map((each) => revocationNow("session", each, sid, config))));
  const rooms = issuers.map((each) => oidcRoom.issuerSid(each, sid));
  const reach = rooms.length === 0 ? NOWHERE : await broadcast(app, "session", rooms, options, () => 0);
  publish();
  observed("session", started, reach);
  const { count } = reach;
  log(app, count, `session ${show(sid)}${iss === undefined ? "" : ` (${show(iss)})`}`, options.reason);
  return count;
}

/**
 * Every socket whose token's `sub` is `sub` (from `iss`, or from any trusted
 * issuer); with `withoutSid`, only those whose token carries no `sid`.
 */
export async function revokeSubject(app: OidcAppHandle, sub: string, iss: string | undefined, withoutSid: boolean, options: RevokeOptions = {}): Promise<number> {
  const issuers = iss !== undefined ? [iss] : issuersFor(app, "disconnectSubject", subjectContexts(app, sub));
  const rooms = iss !== undefined ? [oidcRoom.issuerSub(iss, sub)] : [subRoom(sub), ...issuers.map((each) => oidcRoom.issuerSub(each, sub))];
  const config = configOf(app, "disconnectSubject");
  const started = revocationChannel.hasSubscribers ? performance.now() : undefined;
  const publish = recordRevocations(app, stamped(options, issuers.map((each) => revocationNow("subject", each, sub, config, withoutSid))));
  const reach = await broadcast(app, "subject", rooms, options, () => 0, withoutSid ? [oidcRoom.withSid] : []);
  publish();
  observed("subject", started, reach);
  const { count } = reach;
  log(app, count, `subject ${show(sub)}${iss === undefined ? "" : ` (${show(iss)})`}${withoutSid ? " without sid" : ""}`, options.reason);
  return count;
}

function log(app: OidcAppHandle, count: number, whose: string, reason: string | undefined): void {
  oidcLog(app, 6, `disconnected ${count} socket(s) of ${whose}${reason ? `: ${show(reason)}` : ""}`);
}

/** The app's configuration, or undefined (logged at level 4) when it cannot be read. */
function configOf(app: OidcAppHandle, what: string): OidcConfig | undefined {
  try {
    return resolveConfig(app);
  } catch (error) {
    oidcLog(app, 4, `${what}: the configuration could not be read (${describeError(error)}); only this node's sockets tell which issuers to address`);
    return undefined;
  }
}

/**
 * The issuers a revocation by `sub` or `sid` alone must address: every
 * configured one, plus those of this node's matching sockets (a socket may
 * outlive a configuration change).
 */
export function issuersFor(app: OidcAppHandle, what: string, local: Iterable<OidcUserContext>): string[] {
  const issuers = new Set<string>();
  const config = configOf(app, what);
  if (config !== undefined) for (const entry of config.issuers) issuers.add(entry.issuer);
  for (const context of local) {
    const iss = issOf(context);
    if (iss !== undefined) issuers.add(iss);
  }
  return [...issuers];
}

/** The contexts of this node's sockets whose token's `sub` is `sub`, from any issuer. */
export function* subjectContexts(app: OidcAppHandle, sub: string): Generator<OidcUserContext> {
  for (const socket of registryOf(app).ofSubjectAnyIssuer(sub)) {
    const context = contextOf(socket);
    if (context !== undefined) yield context;
  }
}

/** The contexts of every socket of this node that pass `keep`. */
export function* allContexts(app: OidcAppHandle, keep: (context: OidcUserContext) => boolean): Generator<OidcUserContext> {
  for (const socket of registryOf(app).all()) {
    const context = contextOf(socket);
    if (context !== undefined && keep(context)) yield context;
  }
}

/** How far a revocation reached: sockets found (this node's plus the others' reported in time), this node's, and whether every node answered. */
interface Reach {
  count: number;
  local: number;
  complete: boolean;
}

const NOWHERE: Reach = Object.freeze({ count: 0, local: 0, complete: true });

async function broadcast(app: OidcAppHandle, kind: OidcRevocationMessage["kind"], rooms: string[], options: RevokeOptions, fallback: () => number, except: string[] = []): Promise<Reach> {
  const io = clusterOf(app).io;
  // No Socket.IO server known yet: no socket ever authenticated here and no adapter was attached.
  if (io === undefined) {
    const count = fallback();
    return { count, local: count, complete: true };
  }
  const { count, local, clusterError } = await revokeInRooms(io, rooms, revokedPayload(options.reason), options.clusterTimeout ?? DEFAULT_CLUSTER_TIMEOUT, except, kind);
  if (clusterError !== undefined) {
    const why = describeError(clusterError);
    if (healthOf(app).down) oidcLog(app, 6, `revocation reached this node only: Redis is unavailable (${why})`);
    else oidcLog(app, 4, `revocation broadcast, but the other nodes' sockets could not all be counted (${why})`);
  }
  return { count, local, complete: clusterError === undefined };
}

/** The `revocation` channel's message, when a subscriber was there at the start (`started`). */
function observed(kind: OidcRevocationMessage["kind"], started: number | undefined, reach: Reach): void {
  if (started === undefined || !revocationChannel.hasSubscribers) return;
  revocationChannel.publish({ kind, local: reach.local, cluster: reach.complete ? reach.count : undefined, durationMs: performance.now() - started });
}
