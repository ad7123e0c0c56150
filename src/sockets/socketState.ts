/**
 * Everything the package keeps for one socket, in one place.
 *
 * - The authenticated context. The package reads it from one place,
 *   `contextOf`: the decorations (`socket.userId`, ...), the guards, the
 *   refresh, the expiry, the registry's indexes and every revocation. It
 *   writes it in one place, `setContext`, which also publishes it as
 *   `socket.data.auth`: what the app reads, what `fetchSockets()` returns
 *   from other nodes, and what connection-state recovery restores (read back
 *   once, by `recoveredContext`, before the socket is admitted again). The
 *   package's reference is a field of its own rather than `socket.data.auth`
 *   itself because `socket.data` belongs to the app: an app that replaces it
 *   (`socket.data = { room }`) must not take the socket out of its expiry,
 *   its rooms' bookkeeping or the reach of a revocation.
 * - A few booleans packed into one number, and the socket's place in the
 *   app's expiry queue (`SLOT`, see `deadlineQueue.ts`, which keeps the
 *   deadline itself). These and the context are symbol-keyed fields on the
 *   socket itself, added in one order so every socket keeps one shape; every
 *   idle socket carries them, so they are plain values, not an object of
 *   their own. Three, because V8 gives an object whose own slots are full
 *   (a Socket.IO socket's are) room for three more fields at a time: a
 *   fourth would cost as much again.
 * - The times of its recent in-band refreshes, only for sockets that refresh.
 */
import type { Socket } from "socket.io";
import type { OidcUserContext } from "../types.js";
import { SLOT } from "../util/deadlineQueue.js";

/** Tracked by its app's registry (indexed, in its rooms). */
export const TRACKED = 1;
/** The shared disconnect listener is attached (only where leaving the rooms cannot tell, see `registry.ts`). */
export const LISTENING = 2;
/** Expiry is enforced for this socket (kept for re-arming after a refresh). */
export const EXPIRY = 4;
/** `oidc:expiring` was sent for the current token. */
export const WARNED = 8;
/** The app's session tracker registered it (and wants `unregisterSocket` on release). */
export const REGISTERED = 16;
/** A `leave-room` of one of its rooms is being looked into (see `registry.ts`). */
export const LEAVING = 32;

const CONTEXT = Symbol("ioserver-oidc.context");
const FLAGS = Symbol("ioserver-oidc.flags");

export type TrackedSocket = Socket & {
  [CONTEXT]: OidcUserContext | undefined;
  [FLAGS]: number;
  [SLOT]: number;
};

/** The socket with its fields, added on first use. */
export function tracked(socket: Socket): TrackedSocket {
  const carrier = socket as TrackedSocket;
  if (carrier[FLAGS] === undefined) {
    carrier[CONTEXT] = undefined;
    carrier[FLAGS] = 0;
    carrier[SLOT] = -1;
  }
  return carrier;
}

/** Whether the package ever gave this socket its fields. */
export function isKnown(socket: Socket): socket is TrackedSocket {
  return (socket as unknown as Partial<TrackedSocket>)[FLAGS] !== undefined;
}

export function hasFlag(socket: Socket, bit: number): boolean {
  return (((socket as unknown as Partial<TrackedSocket>)[FLAGS] ?? 0) & bit) !== 0;
}

export function setFlag(socket: TrackedSocket, bit: number, value: boolean): void {
  socket[FLAGS] = value ? socket[FLAGS] | bit : socket[FLAGS] & ~bit;
}

/** The socket's authenticated context, as the package last set it. */
export function contextOf(socket: object): OidcUserContext | undefined {
  return (socket as Partial<TrackedSocket>)[CONTEXT];
}

/** Make `context` the socket's authenticated context, and publish it as `socket.data.auth`. */
export function setContext(socket: Socket, context: OidcUserContext): void {
  tracked(socket)[CONTEXT] = context;
  socket.data ??= {};
  (socket.data as { auth?: OidcUserContext }).auth = context;
}

/**
 * The context a socket restored by connection-state recovery brings back in
 * `socket.data.auth` (untrusted until admitted again: it comes from the
 * session store, not from this process).
 */
export function recoveredContext(socket: Socket): unknown {
  return (socket.data as { auth?: unknown } | undefined)?.auth;
}

const refreshTimes = new WeakMap<Socket, number[]>();

/**
 * The times (ms) of the socket's refresh attempts within the last `window`
 * ms, as a list the caller may add the current attempt to.
 */
export function recentRefreshes(socket: Socket, now: number, window: number): number[] {
  const recent = (refreshTimes.get(socket) ?? []).filter((at) => now - at < window);
  refreshTimes.set(socket, recent);
  return recent;
}
