/**
 * The live authenticated sockets of one IOServer app (every namespace), with
 * per-socket state (expiry timer, refresh attempts) and the single release
 * path run when a socket goes away or a later guard refuses it.
 */
import type { Socket } from "socket.io";
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import { roomsOf } from "./rooms.js";

export interface SocketState {
  /** The expiry timer (one per socket at most). */
  timer?: ReturnType<typeof setTimeout>;
  /** Times (ms) of recent refresh attempts, for the rate limit. */
  refreshes: number[];
  /** Undo everything done for this socket; idempotent. */
  cleanups: Array<() => void>;
  /** The ids this socket is indexed under. */
  indexed?: { sub: string; userId: string };
  /** The context it was last tracked with. */
  context?: OidcUserContext;
  /** The `oidc:*` rooms it joined (issuer + sub, user, issuer + sid, with-sid), see `rooms.ts`. */
  rooms?: string[];
}

const STATE = Symbol("ioserver-oidc.socketState");
type WithState = Socket & { [STATE]?: SocketState };

export function stateOf(socket: Socket): SocketState {
  const carrier = socket as WithState;
  return (carrier[STATE] ??= { refreshes: [], cleanups: [] });
}

/** One app's sockets, by id and by user. */
export class SocketRegistry {
  private readonly byId = new Map<string, Socket>();
  private readonly byUser = new Map<string, Set<Socket>>();

  /**
   * Index the socket under its ids and put it in its `oidc:*` rooms. Called
   * again on an in-band refresh: the rooms follow the new context (the `sid`
   * may change), and rooms that stay are not left in between.
   */
  track(socket: Socket, context: OidcUserContext): void {
    const state = stateOf(socket);
    const previousRooms = state.rooms ?? [];
    this.unindexSocket(socket);
    this.byId.set(socket.id, socket);
    state.indexed = { sub: context.sub, userId: context.userId };
    state.context = context;
    this.index(context.sub, socket);
    if (context.userId !== context.sub) this.index(context.userId, socket);
    const rooms = roomsOf(context);
    state.rooms = rooms;
    for (const room of previousRooms) if (!rooms.includes(room)) leave(socket, room);
    const added = rooms.filter((room) => !previousRooms.includes(room));
    if (added.length > 0) join(socket, added);
  }

  untrack(socket: Socket): void {
    const state = stateOf(socket);
    this.unindexSocket(socket);
    const rooms = state.rooms ?? [];
    state.rooms = undefined;
    for (const room of rooms) leave(socket, room);
  }

  private unindexSocket(socket: Socket): void {
    const state = stateOf(socket);
    if (this.byId.get(socket.id) === socket) this.byId.delete(socket.id);
    if (state.indexed === undefined) return;
    this.unindex(state.indexed.sub, socket);
    this.unindex(state.indexed.userId, socket);
    state.indexed = undefined;
  }

  get(socketId: string): Socket | undefined {
    return this.byId.get(socketId);
  }

  /** Sockets whose `userId` or `sub` is the given value. */
  ofUser(userIdOrSub: string): Socket[] {
    return [...(this.byUser.get(userIdOrSub) ?? [])];
  }

  all(): Socket[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  private index(key: string, socket: Socket): void {
    let set = this.byUser.get(key);
    if (set === undefined) this.byUser.set(key, (set = new Set()));
    set.add(socket);
  }

  private unindex(key: string, socket: Socket): void {
    const set = this.byUser.get(key);
    if (set === undefined) return;
    set.delete(socket);
    if (set.size === 0) this.byUser.delete(key);
  }
}

/** `socket.join` / `socket.leave` may return a promise with some adapters: never let it reject unhandled. */
function join(socket: Socket, rooms: string[]): void {
  try {
    Promise.resolve(socket.join(rooms)).catch(() => undefined);
  } catch {
    // a closed socket: nothing to join
  }
}

function leave(socket: Socket, room: string): void {
  try {
    Promise.resolve(socket.leave(room)).catch(() => undefined);
  } catch {
    // a closed socket has left every room already
  }
}

const registries = new WeakMap<object, SocketRegistry>();

/** The registry of the app behind this `appHandle`. */
export function registryOf(appHandle: OidcAppHandle): SocketRegistry {
  let registry = registries.get(appHandle);
  if (registry === undefined) registries.set(appHandle, (registry = new SocketRegistry()));
  return registry;
}

/** Run `cleanup` when the socket is released (disconnect, or refusal by a later guard). */
export function onRelease(socket: Socket, cleanup: () => void): void {
  const state = stateOf(socket);
  if (state.cleanups.length === 0) socket.once("disconnect", () => releaseSocket(socket));
  state.cleanups.push(cleanup);
}

/** Clear the timer and run every cleanup once. Idempotent. */
export function releaseSocket(socket: Socket): void {
  const state = (socket as WithState)[STATE];
  if (state === undefined) return;
  if (state.timer !== undefined) clearTimeout(state.timer);
  state.timer = undefined;
  const cleanups = state.cleanups.splice(0);
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // A cleanup must not stop the others.
    }
  }
}
