/**
 * The live authenticated sockets of one IOServer app (every namespace), the
 * `oidc:*` rooms they are in, and the single release path run when a socket
 * goes away or a later guard refuses it.
 *
 * One file, over the usual size, because these three hold one invariant
 * together: a tracked socket is known to its registry, is in exactly its own
 * `oidc:*` rooms, and is released exactly once. Tracking, room watching and
 * release call each other; split apart they would import each other in a
 * cycle.
 *
 * Memory matters here: an idle socket should cost little more authenticated
 * than open. So the package keeps nothing per socket but its context
 * (`socket.data.auth`) and the three numbers of `socketState.ts`: the app's
 * registry keeps every expiry in one deadline queue, finds a user's or a
 * subject's sockets through the members of their `oidc:*` room (which the
 * adapter keeps anyway) rather than an index of its own, going away is
 * noticed through the rooms the socket leaves (listeners per adapter, none
 * per socket, see `watchAdapter`), and the refresh listener is one function
 * shared by all sockets.
 */
import type { Namespace, Server, Socket } from "socket.io";
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import type { DeadlineQueue } from "../util/deadlineQueue.js";
import { contextOf, hasFlag, isKnown, LEAVING, LISTENING, REGISTERED, setContext, setFlag, TRACKED, tracked, type TrackedSocket } from "./socketState.js";
import { oidcLog } from "../util/log.js";
import { hasUsersManager, issOf } from "../claims/identity.js";
import { inUserRoom, oidcRoom, roomsOf, subRoom } from "./rooms.js";
import { decorateSocket } from "./decorations.js";
import { show, describeError } from "../util/text.js";
import { appPart } from "../util/appState.js";
import { countLiveSocket } from "../diagnostics.js";

/** A session tracker that wants to hear when a socket goes away. */
export interface ReleaseTracker {
  unregisterSocket(socketId: string): unknown;
}

/** The room prefix reserved for this package: revocation reaches a socket only through these rooms. */
const PREFIX = "oidc:";

/** The registry of the app whose namespace the socket is in, once one tracked a socket there. */
const byNamespace = new WeakMap<Namespace, SocketRegistry>();

export function registryOfSocket(socket: Socket): SocketRegistry | undefined {
  return socket.nsp === undefined ? undefined : byNamespace.get(socket.nsp);
}

/**
 * Sockets tracked while their handshake is still running (our middleware
 * passed, later ones may not have): not yet in their namespace's `sockets`.
 * Every app's, by socket id (ids are unique across namespaces).
 */
const handshaking = new Map<string, Socket>();

/** A room's members, as the namespace's adapter holds them (Socket.IO's in-memory adapter and those built on it). */
type AdapterRooms = Map<string, Set<string>>;

function adapterRooms(nsp: Namespace): AdapterRooms | undefined {
  const rooms = (nsp.adapter as unknown as { rooms?: unknown } | undefined)?.rooms;
  return rooms instanceof Map ? (rooms as AdapterRooms) : undefined;
}

/**
 * One app's sockets. They are found by id in their namespaces (or among
 * the sockets still in their handshake), and by user or subject in the
 * `oidc:*` rooms they are in anyway (see `rooms.ts`): the namespace
 * adapter's own index of a room's members, so the registry keeps no index
 * of its own per socket. A tracked socket is in its rooms (the package puts
 * it back when it leaves one, see `watchAdapter`); the few that could not
 * be put in them (a failing adapter) are kept aside in `unroomed`.
 */
export class SocketRegistry {
  /** How many tracked sockets each issuer has ("" for a context without one), for lookups by `sub` from any issuer. */
  private readonly issuers = new Map<string, number>();
  /** Tracked sockets that are not in their rooms: their adapter refused a join. Normally empty. */
  private readonly unroomed = new Set<Socket>();
  /** The namespaces this app's sockets were tracked in. */
  private readonly namespaces = new Set<Namespace>();
  /** Every tracked socket's next expiry step; created by `lifecycle.ts` when it first arms one. */
  expiries: DeadlineQueue<TrackedSocket> | undefined;
  /** The clock tolerance the expiry queue's current run uses (see `lifecycle.ts`). */
  expiryTolerance: { at: number; ms: number } | undefined;

  constructor(readonly appHandle: OidcAppHandle) {}

  /**
   * Track the socket and put it in its `oidc:*` rooms. Called again on an
   * in-band refresh: the rooms follow the new context (the `sid` may
   * change), and rooms that stay are not left in between.
   */
  track(plain: Socket, context: OidcUserContext): boolean {
    const socket = tracked(plain);
    const previous = contextOf(socket);
    const localIds = hasUsersManager(this.appHandle);
    const wasTracked = hasFlag(socket, TRACKED) && previous !== undefined;
    const previousRooms = wasTracked ? roomsOf(previous, localIds) : [];
    // Computed before any state changes, so a context that cannot be named in a room changes nothing.
    const rooms = roomsOf(context, localIds);
    this.forget(socket);
    setContext(socket, context);
    setFlag(socket, TRACKED, true);
    this.count(context, 1);
    // Once per tracked socket (a refresh tracks it again), undone once in `untrack`.
    if (!wasTracked) countLiveSocket(namespaceName(socket), 1);
    if (socket.nsp !== undefined && !this.namespaces.has(socket.nsp)) {
      this.namespaces.add(socket.nsp);
      byNamespace.set(socket.nsp, this);
    }
    if (!socket.connected) watchHandshake(socket);
    // Put in another socket's `oidc:` room before it was ours (an earlier middleware): nothing watched that join.
    if (!wasTracked) leaveForeignRooms(socket, rooms);
    for (const room of previousRooms) if (!rooms.includes(room)) leave(socket, room);
    const added = previousRooms.length === 0 ? rooms : rooms.filter((room) => !previousRooms.includes(room));
    if (added.length === 0 || join(socket, added)) return true;
    this.unroomed.add(socket);
    return false;
  }

  untrack(plain: Socket): void {
    const socket = tracked(plain);
    const context = contextOf(socket);
    const wasTracked = hasFlag(socket, TRACKED) && context !== undefined;
    // Out of the registry before anything else: whatever the adapter does below, no entry is left behind.
    this.forget(socket);
    setFlag(socket, TRACKED, false);
    if (wasTracked) countLiveSocket(namespaceName(socket), -1);
    // A disconnected socket has left every room already (Socket.IO leaves them before its disconnect event).
    if (!wasTracked || socket.disconnected) return;
    for (const room of roomsOf(context, hasUsersManager(this.appHandle))) leave(socket, room);
  }

  /** A tracked socket whose adapter would not put it back in its rooms: found without them from now on. */
  outOfRooms(socket: Socket): void {
    if (this.owns(socket)) this.unroomed.add(socket);
  }

  /** Undo `track`'s bookkeeping (not the rooms). */
  private forget(socket: TrackedSocket): void {
    if (handshaking.get(socket.id) === socket) handshaking.delete(socket.id);
    this.unroomed.delete(socket);
    const context = contextOf(socket);
    if (hasFlag(socket, TRACKED) && context !== undefined) this.count(context, -1);
  }

  private count(context: OidcUserContext, delta: number): void {
    const iss = issOf(context) ?? "";
    const count = (this.issuers.get(iss) ?? 0) + delta;
    if (count > 0) this.issuers.set(iss, count);
    else this.issuers.delete(iss);
  }

  /** Whether this registry tracks the socket now. */
  private owns(socket: Socket): boolean {
    return hasFlag(socket, TRACKED) && registryOfSocket(socket) === this;
  }

  get(socketId: string): Socket | undefined {
    const early = handshaking.get(socketId);
    if (early !== undefined && this.owns(early)) return early;
    for (const nsp of this.namespaces) {
      const socket = nsp.sockets.get(socketId);
      if (socket !== undefined && this.owns(socket)) return socket;
    }
    return undefined;
  }

  /** Sockets in the user room of `userId` (see `roomsOf`). */
  ofUserId(userId: string): Socket[] {
    return this.inRoom(() => oidcRoom.user(userId), (context) => context.userId === userId && inUserRoom(context, hasUsersManager(this.appHandle)));
  }

  /** Sockets whose token's issuer is `iss` and `sub` is `sub` ("" for a context without an issuer). */
  ofSubject(iss: string, sub: string): Socket[] {
    return this.inRoom(() => (iss === "" ? subRoom(sub) : oidcRoom.issuerSub(iss, sub)), (context) => context.sub === sub && (issOf(context) ?? "") === iss);
  }

  /** Sockets whose token's `sub` is `sub`, from any issuer. */
  ofSubjectAnyIssuer(sub: string): Socket[] {
    const sockets: Socket[] = [];
    for (const iss of this.issuers.keys()) sockets.push(...this.ofSubject(iss, sub));
    return sockets;
  }

  all(): Socket[] {
    const sockets: Socket[] = [];
    for (const socket of handshaking.values()) if (this.owns(socket)) sockets.push(socket);
    for (const nsp of this.namespaces) for (const socket of nsp.sockets.values()) if (this.owns(socket)) sockets.push(socket);
    return sockets;
  }

  /**
   * The tracked sockets of `room` whose context `matches` (the room's
   * members as its adapter lists them, in every namespace of the app), and
   * those out of their rooms that match. A name that cannot be a room (a
   * value `encodeURIComponent` refuses) names no socket: such a context is
   * never tracked.
   */
  private inRoom(name: () => string, matches: (context: OidcUserContext) => boolean): Socket[] {
    const found: Socket[] = [];
    const take = (socket: Socket | undefined): void => {
      const context = socket === undefined ? undefined : contextOf(socket);
      if (context !== undefined && this.owns(socket!) && matches(context) && !found.includes(socket!)) found.push(socket!);
    };
    let room: string | undefined;
    try {
      room = name();
    } catch {
      room = undefined;
    }
    if (room !== undefined) {
      for (const nsp of this.namespaces) {
        const rooms = adapterRooms(nsp);
        if (rooms === undefined) {
          // An adapter without the in-memory adapter's index: look at every socket.
          for (const socket of nsp.sockets.values()) take(socket);
          for (const socket of handshaking.values()) if (socket.nsp === nsp) take(socket);
          continue;
        }
        for (const id of rooms.get(room) ?? []) {
          const socket = nsp.sockets.get(id) ?? handshaking.get(id);
          if (socket?.nsp === nsp) take(socket);
        }
      }
    }
    for (const socket of this.unroomed) take(socket);
    return found;
  }
}

const ignore = (): void => undefined;

/** The socket's namespace name, for the process-wide live-socket count ("" for a socket without one). */
function namespaceName(socket: Socket): string {
  return (socket.nsp as Namespace | undefined)?.name ?? "";
}

/** `socket.join` / `socket.leave` return a promise with some adapters: never let it reject unhandled. */
function settleQuietly(result: unknown): void {
  if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
    (result as PromiseLike<unknown>).then(undefined, ignore);
  }
}

/** Above 0 while this package itself puts a socket in its own rooms (nothing to check, see `watchAdapter`). */
let joiningOurselves = 0;

/** `socket.join(rooms)`: undefined when it threw, else what it returned (a promise with some adapters). */
function joinOurselves(socket: Socket, rooms: string[]): { result: unknown } | undefined {
  joiningOurselves++;
  try {
    return { result: socket.join(rooms) };
  } catch {
    // a closed socket (nothing to join), or a failing adapter
    return undefined;
  } finally {
    joiningOurselves--;
  }
}

function join(socket: Socket, rooms: string[]): boolean {
  const joined = joinOurselves(socket, rooms);
  if (joined === undefined) return false;
  settleQuietly(joined.result);
  return true;
}

/** Above 0 while this package itself takes a socket out of a room (not a sign that it is going away). */
let leavingOurselves = 0;

function leave(socket: Socket, room: string): void {
  leavingOurselves++;
  try {
    settleQuietly(socket.leave(room));
  } catch {
    // a closed socket has left every room already
  } finally {
    leavingOurselves--;
  }
}

const registry = appPart("socket registry", (appHandle) => new SocketRegistry(appHandle));

/** The registry of the app behind this `appHandle`. */
export function registryOf(appHandle: OidcAppHandle): SocketRegistry {
  return registry.of(appHandle);
}

/**
 * A socket tracked during its handshake normally connects (then the
 * lifecycle's connection handler calls `connectedSocket`), or is refused by a
 * later guard (then released). When the client goes away meanwhile,
 * Socket.IO drops the socket without a `disconnect` event once the
 * middlewares have finished, taking it out of its rooms (see `watchAdapter`).
 * A sweep, once a second while handshakes are pending, releases those whose
 * connection closed before that happens (and tells the session tracker), so
 * nothing is left behind.
 */
let sweeper: ReturnType<typeof setInterval> | undefined;
const SWEEP_MS = 1_000;

function watchHandshake(socket: Socket): void {
  handshaking.set(socket.id, socket);
  if (sweeper === undefined) {
    sweeper = setInterval(sweepHandshakes, SWEEP_MS);
    sweeper.unref();
  }
}

function sweepHandshakes(): void {
  for (const [id, socket] of handshaking) {
    if (socket.connected) {
      handshaking.delete(id);
    } else if (socket.client?.conn?.readyState !== "open") {
      handshaking.delete(id);
      releaseSocket(socket);
    }
  }
  if (handshaking.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** The socket finished its handshake: it is found in its namespace from now on. */
export function connectedSocket(socket: Socket): void {
  if (handshaking.get(socket.id) === socket) handshaking.delete(socket.id);
}

/** Shared by every socket (Socket.IO calls listeners with the socket as `this`): no closure per socket. */
function releaseOnDisconnect(this: Socket): void {
  releaseSocket(this);
}

function listenForDisconnect(socket: TrackedSocket): void {
  if (hasFlag(socket, LISTENING)) return;
  setFlag(socket, LISTENING, true);
  socket.on("disconnect", releaseOnDisconnect);
}

/**
 * How a socket that goes away is noticed, and how its rooms stay its own,
 * without a listener per socket. Every tracked socket is in at least one
 * `oidc:*` room, and a socket that disconnects, or whose handshake fails or
 * is abandoned, leaves all its rooms: its namespace's adapter then emits
 * `leave-room` (a documented adapter event, emitted by the in-memory adapter
 * and the ones built on it, Redis included). One listener per adapter hears
 * it; once Socket.IO has finished closing the socket (a microtask later), a
 * socket no longer connected is released.
 *
 * The `oidc:` prefix is reserved: revocation finds sockets only through
 * these rooms, so a socket out of its own is out of reach, and a socket in
 * another's would be reached with it (and hear what is sent there). A socket
 * still connected (or still in its handshake) that left one of its rooms
 * any other way than through this package is put back, and a socket put in
 * an `oidc:` room that is not one of its own (`join-room`, a second listener
 * per adapter) is taken out again; both are logged at level 4. Sockets whose
 * adapter cannot be listened to, or whose rooms could not be joined, get the
 * per-socket `disconnect` listener instead.
 */
const watchedAdapters = new WeakSet<object>();

type RoomListener = (room: unknown, id: unknown) => void;

function watchAdapter(nsp: Namespace | undefined): boolean {
  const adapter = nsp?.adapter as unknown as { on?: unknown } | undefined;
  if (nsp === undefined || adapter === null || typeof adapter !== "object") return false;
  if (watchedAdapters.has(adapter)) return true;
  if (typeof adapter.on !== "function") return false;
  const on = adapter.on as (event: string, listener: RoomListener) => void;
  on.call(adapter, "leave-room", (room, id) => {
    if (leavingOurselves === 0 && typeof room === "string" && room.startsWith(PREFIX) && typeof id === "string") leftRoom(nsp, id);
  });
  on.call(adapter, "join-room", (room, id) => {
    if (joiningOurselves === 0 && typeof room === "string" && room.startsWith(PREFIX) && typeof id === "string") joinedRoom(nsp, room, id);
  });
  watchedAdapters.add(adapter);
  return true;
}

/** The rooms the socket's current context puts it in, when this package tracks it. */
function ownRooms(socket: Socket): string[] | undefined {
  const context = contextOf(socket);
  const registry = registryOfSocket(socket);
  if (!hasFlag(socket, TRACKED) || context === undefined || registry === undefined) return undefined;
  return roomsOf(context, hasUsersManager(registry.appHandle));
}

function leftRoom(nsp: Namespace, id: string): void {
  const found = nsp.sockets.get(id) ?? handshaking.get(id);
  if (found === undefined || !hasFlag(found, TRACKED) || hasFlag(found, LEAVING)) return;
  const socket = tracked(found);
  setFlag(socket, LEAVING, true);
  // One look per socket, however many rooms it left at once (all of them, when it disconnects).
  queueMicrotask(() => {
    setFlag(socket, LEAVING, false);
    if (!hasFlag(socket, TRACKED)) return;
    // A socket that disconnected is not in `handshaking` (it connected first): it is released, never put back.
    if (socket.connected || handshaking.get(socket.id) === socket) putBack(socket);
    else releaseSocket(socket);
  });
}

/**
 * Put the socket back in the rooms of its own it is missing. Socket.IO makes
 * `join` do nothing once it has cleaned a socket up (a handshake that failed
 * or was abandoned): a socket that did not get back in is going away, and is
 * released.
 */
function putBack(socket: TrackedSocket): void {
  let missing: string[];
  try {
    const current = socket.rooms;
    missing = (ownRooms(socket) ?? []).filter((room) => !current.has(room));
  } catch {
    missing = []; // a failing adapter: leave it to the release on disconnect
  }
  // Nothing missing: the room left was not (or no longer, after an in-band refresh) one of its own.
  if (missing.length === 0) return;
  const joined = joinOurselves(socket, missing);
  const settle = (): void => {
    if (!hasFlag(socket, TRACKED)) return;
    if (isIn(socket, missing)) {
      const registry = registryOfSocket(socket);
      if (registry !== undefined) {
        oidcLog(registry.appHandle, 4, `socket ${socket.nsp.name} ${socket.id} left ${show(missing.join(", "))}: put back (the "${PREFIX}" room prefix is reserved for ioserver-oidc)`);
      }
    } else if (!socket.connected) {
      releaseSocket(socket);
    } else {
      // The adapter would not take it back: found without its rooms, and at least released when it goes.
      registryOfSocket(socket)?.outOfRooms(socket);
      listenForDisconnect(socket);
    }
  };
  const result = joined?.result;
  if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
    (result as PromiseLike<unknown>).then(settle, settle);
  } else {
    settle();
  }
}

function isIn(socket: Socket, rooms: string[]): boolean {
  try {
    const current = socket.rooms;
    return rooms.every((room) => current.has(room));
  } catch {
    return false;
  }
}

/** A socket of this namespace was put in an `oidc:` room by someone other than this package. */
function joinedRoom(nsp: Namespace, room: string, id: string): void {
  const connected = nsp.sockets.get(id);
  // Connected and not authenticated by this package (a namespace without its middleware): no `oidc:` room is its own.
  if (connected !== undefined && connected.nsp === nsp && !hasFlag(connected, TRACKED)) {
    leave(connected, room);
    logForeign(connected, room);
    return;
  }
  const found = connected ?? handshaking.get(id);
  // Not tracked (yet): `track` takes it out of foreign rooms when it first tracks it.
  if (found === undefined || found.nsp !== nsp || !hasFlag(found, TRACKED)) return;
  let own: string[] | undefined;
  try {
    own = ownRooms(found);
  } catch {
    own = undefined;
  }
  if (own?.includes(room) === true) return;
  leave(found, room);
  logForeign(found, room);
}

/** Take a socket being tracked for the first time out of `oidc:` rooms that are not in `rooms`. */
function leaveForeignRooms(socket: Socket, rooms: string[]): void {
  const foreign: string[] = [];
  try {
    // The adapter's own set (`socket.rooms` makes an empty one for a socket in none, the usual case here).
    const current = socket.nsp.adapter.socketRooms(socket.id) ?? [];
    for (const room of current) if (room.startsWith(PREFIX) && !rooms.includes(room)) foreign.push(room);
  } catch {
    return; // a failing adapter: nothing can be read, nothing can be left
  }
  for (const room of foreign) {
    leave(socket, room);
    logForeign(socket, room);
  }
}

function logForeign(socket: Socket, room: string): void {
  const appHandle = registryOfSocket(socket)?.appHandle ?? serverApps.get(socket.nsp.server);
  if (appHandle === undefined) return;
  oidcLog(appHandle, 4, `socket ${socket.nsp.name} ${socket.id} was put in ${show(room)}, not one of its rooms: taken out (the "${PREFIX}" room prefix is reserved for ioserver-oidc)`);
}

/** The app of each Socket.IO server whose namespaces are all watched (see `watchNamespaces`). */
const serverApps = new WeakMap<object, OidcAppHandle>();

/**
 * Watch every namespace of the app's Socket.IO server, also those without
 * the package's middleware: a socket this package did not authenticate has
 * no `oidc:` room of its own, so one put in any (an app's `join` of a
 * client-chosen room name) is taken out, and never hears, nor is counted
 * and disconnected with, another user's revocation. Once per server: the
 * sockets already connected are checked now, later namespaces when created.
 */
export function watchNamespaces(appHandle: OidcAppHandle, io: Server): void {
  if (serverApps.has(io)) return;
  serverApps.set(io, appHandle);
  const watch = (nsp: Namespace): void => {
    if (!watchAdapter(nsp)) return;
    for (const socket of nsp.sockets.values()) if (!hasFlag(socket, TRACKED)) leaveForeignRooms(socket, []);
  };
  try {
    for (const nsp of io._nsps.values()) watch(nsp);
    io.on("new_namespace", watch);
  } catch {
    // A server that cannot be read: the package's own namespaces are still watched through their sockets.
  }
}

/**
 * Make `context` the socket's authenticated context: tracked in the app's
 * registry (and its rooms), readable as `socket.data.auth` and the socket
 * decorations, and released when the socket goes away. At the handshake, on
 * an in-band refresh, and for a socket restored by connection-state recovery.
 */
export function trackSocket(appHandle: OidcAppHandle, plain: Socket, context: OidcUserContext): TrackedSocket {
  const socket = tracked(plain);
  const inRooms = registryOf(appHandle).track(socket, context);
  if (!inRooms || !watchAdapter(socket.nsp)) listenForDisconnect(socket);
  decorateSocket(socket, context);
  return socket;
}

/**
 * Undo everything done for this socket: cancel its expiry, leave the
 * registry and the rooms, tell the session tracker (asynchronously; a
 * failure is logged). Idempotent.
 */
export function releaseSocket(plain: Socket): void {
  const registry = registryOfSocket(plain);
  if (registry === undefined || !isKnown(plain)) return;
  const socket = tracked(plain);
  registry.expiries?.cancel(socket);
  try {
    registry.untrack(socket);
  } catch {
    // a failing adapter must not stop the rest of the release
  }
  if (!hasFlag(socket, REGISTERED)) return;
  setFlag(socket, REGISTERED, false);
  unregisterLater(registry.appHandle, socket.id);
}

/**
 * The session tracker finished registering the socket. A socket released
 * meanwhile (its client left during the registration, and the release found
 * nothing registered yet) is unregistered at once, so the tracker keeps no
 * record of it; otherwise the release to come will tell the tracker.
 */
export function registeredSocket(appHandle: OidcAppHandle, socket: TrackedSocket): void {
  if (hasFlag(socket, TRACKED)) setFlag(socket, REGISTERED, true);
  else unregisterLater(appHandle, socket.id);
}

/** Tell the app's session tracker (one per app) that the socket is gone: asynchronously, a failure logged. */
function unregisterLater(appHandle: OidcAppHandle, id: string): void {
  const tracker = appHandle.session as ReleaseTracker | null | undefined;
  if (tracker === null || typeof tracker !== "object" || typeof tracker.unregisterSocket !== "function") return;
  Promise.resolve()
    .then(() => tracker.unregisterSocket(id))
    .catch((error: unknown) => {
      oidcLog(appHandle, 3, `session.unregisterSocket(${id}) failed: ${describeError(error)}`);
    });
}
