/**
 * Everything the package keeps for one socket, in one place.
 *
 * - The authenticated context is `socket.data.auth`, and only there: it is
 *   what the app reads, what `fetchSockets()` returns from other nodes, what
 *   connection-state recovery restores, and what the decorations
 *   (`socket.userId`, ...), the guards, the refresh and the expiry read. The
 *   package writes it in one place (`setContext`); an app must not replace it.
 * - A few booleans packed into one number, and the socket's place in the
 *   app's expiry queue (`DUE`, `SLOT`, see `deadlineQueue.ts`): symbol-keyed
 *   fields on the socket itself, added in one order so every socket keeps one
 *   shape. Every idle socket carries them, so they are numbers, not an object.
 * - The times of its recent in-band refreshes, only for sockets that refresh.
 */
import type { Socket } from "socket.io";
import type { OidcUserContext } from "../types.js";
import { DUE, SLOT } from "../util/deadlineQueue.js";

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

const FLAGS = Symbol("ioserver-oidc.flags");

export type TrackedSocket = Socket & {
  [FLAGS]: number;
  [DUE]: number;
  [SLOT]: number;
};

/** The socket with its fields, added on first use. */
export function tracked(socket: Socket): TrackedSocket {
  const carrier = socket as TrackedSocket;
  if (carrier[FLAGS] === undefined) {
    carrier[FLAGS] = 0;
    carrier[DUE] = 0;
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

/** The socket's authenticated context: `socket.data.auth`. */
export function contextOf(socket: Socket): OidcUserContext | undefined {
  const data = socket.data as { auth?: OidcUserContext } | undefined;
  return data?.auth ?? undefined;
}

/** Make `context` the socket's authenticated context. */
export function setContext(socket: Socket, context: OidcUserContext): void {
  socket.data ??= {};
  (socket.data as { auth?: OidcUserContext }).auth = context;
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
