/**
 * Live sockets after the handshake: expiry (`oidc:expiring`, then
 * `oidc:expired` and a disconnect), in-band refresh (`oidc:refresh`),
 * revocation (`oidc:revoked`), and re-arming sockets restored by Socket.IO's
 * connection-state recovery (which skips middlewares).
 */
import type { Namespace, Socket } from "socket.io";
import { authenticate, reportFailure } from "../pipeline/authenticate.js";
import { socketBinding } from "../pipeline/dpopBinding.js";
import { socketProof, socketToken } from "../pipeline/extractToken.js";
import { OidcAuthError, type OidcAuthErrorCode } from "../errors.js";
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { resolveConfig } from "../config/resolve.js";
import { disconnectWith, OIDC_EVENTS, revokeWith } from "./protocol.js";
import { publishSocket, socketChannel } from "./observe.js";
import { DeadlineQueue } from "../util/deadlineQueue.js";
import { connectedSocket, registryOf, registryOfSocket, releaseSocket, trackSocket, type SocketRegistry } from "./registry.js";
import { registerSocketSession } from "./session.js";
import { handshakeChecksOf } from "./handshakeGuards.js";
import { issOf, sameSubject } from "../claims/identity.js";
import { oidcLog } from "../util/log.js";
import { show, describeError } from "../util/text.js";
import { contextOf, EXPIRY, hasFlag, recentRefreshes, recoveredContext, setFlag, tracked, WARNED, type TrackedSocket } from "./socketState.js";
import { disabledUserRevoker } from "../pipeline/provision.js";
import { revokeUser } from "./revocations.js";
import { refuseRevoked } from "../pipeline/refuseRevoked.js";
import { socketSource } from "./refusalSource.js";

export interface LifecycleOptions {
  /** Per-middleware override of `config.socketExpiry`. */
  expiry?: boolean;
}

/**
 * One expiry step of a due socket: `oidc:expiring` once the warning time has
 * come, then `oidc:expired` and a disconnect at `exp` (plus the clock
 * tolerance). A socket warned but not yet expired goes back in the queue.
 */
function expiryStep(registry: SocketRegistry, socket: TrackedSocket, now: number): void {
  const context = contextOf(socket);
  if (context === undefined) return;
  // Gone without being released (normally it is, when it leaves its rooms): release it now.
  if (socket.disconnected) return releaseSocket(socket);
  const expiresAt = context.expiresAt;
  const deadline = expiresAt + toleranceMs(registry, now);
  if (!hasFlag(socket, WARNED)) {
    setFlag(socket, WARNED, true);
    if (socketChannel.hasSubscribers) publishSocket(socket, { event: "expiring" });
    socket.emit(OIDC_EVENTS.expiring, { expiresAt });
  }
  if (now >= deadline) {
    oidcLog(registry.appHandle, 6, `socket ${socket.nsp.name} ${socket.id} (user ${show(context.userId)}) disconnected: token expired`);
    disconnectWith(socket, OIDC_EVENTS.expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
    return;
  }
  expiriesOf(registry).schedule(socket, deadline);
}

/** The clock tolerance in ms, read once per run of the expiry queue (every due socket of a run shares `now`). */
function toleranceMs(registry: SocketRegistry, now: number): number {
  const cached = registry.expiryTolerance;
  if (cached !== undefined && cached.at === now) return cached.ms;
  const ms = resolveConfig(registry.appHandle).clockTolerance * 1000;
  registry.expiryTolerance = { at: now, ms };
  return ms;
}

function expiriesOf(registry: SocketRegistry): DeadlineQueue<TrackedSocket> {
  return (registry.expiries ??= new DeadlineQueue<TrackedSocket>(
    (socket, now) => expiryStep(registry, socket, now),
    (error) => oidcLog(registry.appHandle, 3, `socket expiry step failed: ${describeError(error)}`),
  ));
}

/**
 * Schedule `oidc:expiring` and then the expiry disconnect for the socket's
 * current context (`socket.data.auth`, tracked by the registry); replaces
 * any earlier schedule. All of an app's sockets share one timer (see
 * `deadlineQueue.ts`).
 */
export function armExpiry(plain: Socket, appHandle: OidcAppHandle, config: OidcConfig, enabled: boolean): void {
  const socket = tracked(plain);
  const registry = registryOfSocket(socket) ?? registryOf(appHandle);
  const queue = expiriesOf(registry);
  queue.cancel(socket);
  setFlag(socket, EXPIRY, enabled);
  setFlag(socket, WARNED, false);
  const context = contextOf(socket);
  if (!enabled || context === undefined || socket.disconnected) return;
  const now = Date.now();
  const expiresAt = context.expiresAt;
  // Warn expiryLeadTime before exp, or a third of the remaining lifetime for a short-lived token.
  const lead = Math.min(config.expiryLeadTime * 1000, Math.max(0, expiresAt - now) / 3);
  const warnAt = expiresAt - lead;
  if (now < warnAt) queue.schedule(socket, warnAt);
  else expiryStep(registry, socket, now);
}

/** The token of an `oidc:refresh` payload (anything may come). */
const tokenOf = (payload: unknown): unknown => (payload as { token?: unknown } | null | undefined)?.token;
/** The DPoP proof of an `oidc:refresh` payload, `undefined` when none came. */
const proofOf = (payload: unknown): unknown => (payload !== null && typeof payload === "object" ? (payload as { dpop?: unknown }).dpop : undefined);

type Ack = (reply: { ok: true; expiresAt: number } | { ok: false; code: OidcAuthErrorCode; dpopNonce?: string }) => void;

/** A refresh whose new context the namespace's guards refused, with the guard's error. */
interface GuardRefusal {
  refused: unknown;
}

/** Sent with `oidc:revoked` when a refreshed token no longer passes the namespace's guards; says nothing about which guard. */
const GUARD_REFUSAL_REASON = "the refreshed token is not allowed on this namespace";

/** Resolves to the new expiry, or to the guards' refusal; rejects when the refresh itself fails (the connection keeps its context). */
async function refresh(socket: Socket, appHandle: OidcAppHandle, payload: unknown): Promise<number | GuardRefusal> {
  const config = resolveConfig(appHandle);
  const now = Date.now();
  const refreshes = recentRefreshes(socket, now, config.refreshWindow);
  if (refreshes.length >= config.refreshLimit) {
    throw new OidcAuthError("ERR_AUTH_RATE_LIMITED", {
      reason: `more than ${config.refreshLimit} refresh attempts in ${config.refreshWindow} ms`,
    });
  }
  refreshes.push(now);

  const token = tokenOf(payload);
  const current = contextOf(socket) as OidcUserContext;
  // A DPoP proof for the new token comes as `dpop`, by the key the connection is bound to (see socketBinding).
  const target = { handshake: socket.handshake, proof: proofOf(payload), current };
  const { context } = await authenticate(typeof token === "string" ? token : undefined, appHandle, "refresh", target, socketBinding);
  // The same user is the same issuer and the same sub: another issuer's equal sub is someone else.
  if (!sameSubject(context, current)) {
    throw new OidcAuthError("ERR_AUTH_SUBJECT_MISMATCH", {
      reason: `refresh token is for iss ${show(issOf(context))} sub ${show(context.sub)}, not the connection's iss ${show(issOf(current))} sub ${show(current.sub)}`,
    });
  }
  // A refresh is a new handshake for authorization: the namespace's guards
  // judge the new context before it becomes the socket's. Their refusal is
  // returned, not thrown: the caller disconnects the socket.
  const checks = handshakeChecksOf(socket.nsp);
  if (checks !== undefined) {
    try {
      for (const check of checks) check(context);
    } catch (error) {
      return { refused: error };
    }
  }
  if (socket.disconnected) return context.expiresAt;
  trackSocket(appHandle, socket, context); // re-index, new rooms, socket.data.auth; the session tracker keeps its entry
  armExpiry(socket, appHandle, config, hasFlag(socket, EXPIRY)); // the namespace's setting, kept on the socket
  return context.expiresAt;
}

/** The `oidc:refresh` listener, shared by every socket (Socket.IO calls it with the socket as `this`). */
function onRefresh(this: Socket, payload: unknown, ack?: unknown): void {
  // eslint-disable-next-line @typescript-eslint/no-this-alias -- Socket.IO calls the listener with the socket as `this`; the name says what it is in the code below
  const socket = this;
  const reply: Ack = typeof ack === "function" ? (ack as Ack) : () => undefined;
  const appHandle = registryOfSocket(socket)?.appHandle;
  if (appHandle === undefined) return reply({ ok: false, code: "ERR_AUTH_REVOKED" });
  refresh(socket, appHandle, payload).then(
    (outcome) => {
      if (typeof outcome === "number") {
        if (socketChannel.hasSubscribers) publishSocket(socket, { event: "refreshed" });
        return reply({ ok: true, expiresAt: outcome });
      }
      // The connection's authorization no longer holds: it loses the namespace.
      // Refusing the refresh alone would leave it connected with its old, more
      // privileged context until that expires.
      const where = socketSource(socket, "refresh", { note: "disconnected: the namespace's guards refuse the new token", token: tokenOf(payload) });
      const failure = reportFailure(appHandle, where, outcome.refused);
      if (socketChannel.hasSubscribers) publishSocket(socket, { event: "refresh-refused", code: failure.code });
      reply({ ok: false, code: failure.code });
      revokeWith(socket, { code: failure.code, reason: GUARD_REFUSAL_REASON }, "guards");
    },
    (error: unknown) => {
      const failure = reportFailure(appHandle, socketSource(socket, "refresh", { token: tokenOf(payload) }), error);
      const { code } = failure;
      if (socketChannel.hasSubscribers) publishSocket(socket, { event: "refresh-refused", code });
      // A DPoP nonce the client must use (RFC 9449 section 8), as the DPoP-Nonce header would carry it on HTTP.
      const dpopNonce = failure.headers["dpop-nonce"];
      reply(dpopNonce === undefined ? { ok: false, code } : { ok: false, code, dpopNonce });
    },
  ).catch((error: unknown) => reportFailure(appHandle, socketSource(socket, "refresh", { note: "answering", token: tokenOf(payload) }), error)); // a throwing ack or listener
}

/** The context a restored socket brings back in `socket.data.auth`, when it has the shape of one. */
export function restoredContext(socket: Socket): OidcUserContext | undefined {
  const context = recoveredContext(socket) as OidcUserContext | undefined | null;
  if (context === undefined || context === null || typeof context.sub !== "string" || context.claims === null || typeof context.claims !== "object") return undefined;
  return context;
}

/**
 * A restored session belongs to the user it was: `ERR_AUTH_SUBJECT_MISMATCH`
 * unless `admitted` (the token the reconnecting client presents now) is that
 * same user (issuer and `sub`), or when the session names no user at all.
 */
export function refuseAnotherUser(restored: OidcUserContext | undefined, admitted: OidcUserContext): void {
  if (restored !== undefined && sameSubject(admitted, restored)) return;
  throw new OidcAuthError("ERR_AUTH_SUBJECT_MISMATCH", {
    reason:
      restored === undefined
        ? "the restored session has no authenticated context"
        : `the recovering client's token is for iss ${show(issOf(admitted))} sub ${show(admitted.sub)}, not the connection's iss ${show(issOf(restored))} sub ${show(restored.sub)}`,
  });
}

/**
 * A socket restored by connection-state recovery: its context comes back
 * from `socket.data.auth`. Recovery skips the middlewares, so what the
 * handshake would decide now is decided here: expiry, then the token the
 * reconnecting client presents, verified as at a handshake and for the same
 * user (so the session id alone brings nothing back), with, for a connection
 * bound to a DPoP key, a proof by that key in `auth.dpop`; the deny-list (a
 * revocation issued while the socket was away), the users manager (a user
 * disabled meanwhile) and the namespace's guards. Refused: `oidc:revoked` (or `oidc:expired`) and a
 * disconnect.
 */
async function restore(socket: Socket, appHandle: OidcAppHandle): Promise<boolean> {
  const context = restoredContext(socket);
  if (context === undefined) {
    oidcLog(appHandle, 4, `recovered socket ${socket.id} has no authenticated context: disconnected`);
    revokeWith(socket, { code: "ERR_AUTH_REVOKED" }, "recovery");
    return false;
  }
  const config = resolveConfig(appHandle);
  if (Date.now() >= context.expiresAt + config.clockTolerance * 1000) {
    disconnectWith(socket, OIDC_EVENTS.expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
    return false;
  }
  let admitted: OidcUserContext;
  try {
    // The session id alone proves nothing: the token the client brings now (and, for a connection bound to a
    // key, its proof by that key) is verified as at a handshake, and must be the same user's.
    const target = { handshake: socket.handshake, proof: socketProof(socket.handshake), current: context };
    admitted = (await authenticate(socketToken(socket.handshake), appHandle, "handshake", target, socketBinding)).context;
    refuseAnotherUser(context, admitted);
    // And the namespace's guards, as at the handshake (known once a handshake here ran them).
    for (const check of handshakeChecksOf(socket.nsp) ?? []) check(admitted);
  } catch (error) {
    const failure = reportFailure(appHandle, socketSource(socket, "recovery"), error);
    revokeWith(socket, { code: failure.code }, "recovery");
    return false;
  }
  await registerSocketSession(appHandle, socket, admitted, config);
  return true;
}

/**
 * A socket that completed its handshake (or was restored and admitted again):
 * a revocation issued while the handshake was running (after our middleware)
 * reaches it here, then its refresh listener and its expiry are set.
 */
function connected(socket: Socket, appHandle: OidcAppHandle, options: LifecycleOptions): void {
  const context = contextOf(socket);
  if (context === undefined) return; // not authenticated by us
  const config = resolveConfig(appHandle);
  refuseRevoked(appHandle, context, config, true); // the context is final: its userId is the local one
  if (socketChannel.hasSubscribers) publishSocket(socket, { event: "connected", recovered: socket.recovered });
  socket.on(OIDC_EVENTS.refresh, onRefresh);
  armExpiry(socket, appHandle, config, options.expiry ?? config.socketExpiry);
}

const wired = new WeakSet<Namespace>();

/**
 * Once per namespace: arm expiry and listen for refreshes on every socket
 * that connects (after all middlewares passed, or restored by recovery).
 */
export function ensureLifecycle(namespace: Namespace, appHandle: OidcAppHandle, options: LifecycleOptions): void {
  if (wired.has(namespace)) return;
  wired.add(namespace);
  // A user found disabled ends their sockets through the one revocation path.
  disabledUserRevoker.of(appHandle).revoke ??= (userId, reason) => {
    revokeUser(appHandle, userId, { reason }).catch((error: unknown) => oidcLog(appHandle, 3, `disconnecting disabled user failed: ${describeError(error)}`));
  };
  const fail = (socket: Socket, error: unknown): void => {
    const failure = reportFailure(appHandle, socketSource(socket, "connection"), error);
    try {
      releaseSocket(socket);
      revokeWith(socket, { code: failure.code }, "connection");
    } catch (closing) {
      reportFailure(appHandle, socketSource(socket, "connection", { note: "closing" }), closing); // a throwing adapter or listener
    }
  };
  namespace.on("connection", (socket: Socket) => {
    connectedSocket(socket);
    // A socket restored without the middlewares is admitted again first (asynchronously); any other
    // (the middlewares ran, `skipMiddlewares: false` included) is armed at once.
    if (socket.recovered && contextOf(socket) === undefined) {
      restore(socket, appHandle)
        .then((admitted) => {
          if (admitted) connected(socket, appHandle, options);
        })
        .catch((error: unknown) => fail(socket, error));
      return;
    }
    try {
      connected(socket, appHandle, options);
    } catch (error) {
      // Ended once every connection listener has run, as for a restored socket.
      queueMicrotask(() => fail(socket, error));
    }
  });
}
