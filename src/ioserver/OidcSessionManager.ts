import { BaseManager } from "ioserver";
import type { AppHandle } from "ioserver";
import { clusterOf } from "../sockets/cluster.js";
import { resolveConfig } from "../config/resolve.js";
import { OIDC_EVENTS, revokedPayload } from "../sockets/protocol.js";
import { revokeInRooms, revokeSocket, revokeUserSockets } from "../sockets/revoke.js";
import { oidcRoom, sidOf, subRoom } from "../sockets/rooms.js";
import { issOf, subjectsOfDerivedUserId } from "../claims/identity.js";
import { connectRevocationStore, recordRevocations, revocationNow, type OidcRevocationStore } from "../stores/revocationStore.js";
import { contextOf, registryOf } from "../sockets/registry.js";
import { withTimeout } from "../util/withTimeout.js";
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { oidcLog } from "../util/log.js";
import { show, describeError } from "../util/text.js";

/** One live authenticated socket. */
export interface OidcSessionRecord {
  socketId: string;
  userId: string;
  sub: string;
  /** Socket.IO namespace, e.g. `/chat`. */
  namespace: string;
  /** Epoch ms. */
  connectedAt: number;
  /** The current token's expiry, epoch ms (moves forward on refresh). */
  expiresAt: number;
  /** The token's `sid` claim (the session at the identity provider), when it carries one. */
  sid?: string;
  /** The token's `iss` claim. */
  iss?: string;
  /** The node holding the socket (the store's `nodeId`), with a shared store such as `redisSessionStore`. */
  node?: string;
}

/**
 * Where session records live. The default keeps them in memory, which is
 * right for one process; `redisSessionStore()` shares them between nodes.
 * `add`, `remove` and `list` are required, the rest optional.
 */
export interface OidcSessionStore {
  add(record: OidcSessionRecord): void | Promise<void>;
  remove(socketId: string): void | Promise<void>;
  /** Every session (of every node, for a shared store). */
  list(): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
  /** The sessions whose `userId` is the given value; default: `list()` filtered. */
  listByUser?(userId: string): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
  /** The sessions whose token's issuer is `iss` and `sub` is `sub`; default: `list()` filtered. */
  listBySubject?(iss: string, sub: string): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
  /** One session by socket id. */
  get?(socketId: string): OidcSessionRecord | undefined | Promise<OidcSessionRecord | undefined>;
  /**
   * Re-write this node's live sessions (refreshing their TTLs). The manager
   * calls it every `heartbeatInterval` ms and, after an outage, to heal the
   * store. Must reach the backend even with no records (it doubles as a probe).
   * `records` are live when it is called; a session `remove`d while it runs
   * must not be written afterwards (check before each batch that awaits).
   */
  touch?(records: OidcSessionRecord[]): void | Promise<void>;
  /** How often `touch` runs, in ms. */
  readonly heartbeatInterval?: number;
  /** This node's id, stamped on its records as `node`. */
  readonly nodeId?: string;
  /** Release what the store holds (not the Redis client: the app owns it). */
  close?(): void | Promise<void>;
}

/** The default store: a Map in this process. */
export class MemorySessionStore implements OidcSessionStore {
  private readonly records = new Map<string, OidcSessionRecord>();
  add(record: OidcSessionRecord): void {
    this.records.set(record.socketId, record);
  }
  remove(socketId: string): void {
    this.records.delete(socketId);
  }
  list(): OidcSessionRecord[] {
    return [...this.records.values()];
  }
  listByUser(userId: string): OidcSessionRecord[] {
    return this.list().filter((record) => record.userId === userId);
  }
  listBySubject(iss: string, sub: string): OidcSessionRecord[] {
    return this.list().filter((record) => record.sub === sub && record.iss === iss);
  }
  get(socketId: string): OidcSessionRecord | undefined {
    return this.records.get(socketId);
  }
}

/** Options of `OidcSessionManager#disconnectSubject`. */
export interface OidcDisconnectSubjectOptions {
  /**
   * Only tokens from this issuer (their `iss` claim, compared exactly). Without
   * it, every socket whose token's `sub` is the given value, whichever issuer
   * minted it.
   */
  iss?: string;
  /** Sent to the clients with `oidc:revoked`. */
  reason?: string;
  /**
   * Only the sockets whose current token carries no `sid` claim (a back-channel
   * logout naming a `sid` reaches those too: nothing tells their session
   * apart). Needs `iss`.
   */
  withoutSid?: boolean;
}

export interface OidcSessionManagerOptions {
  /** Default: a new `MemorySessionStore`. For several nodes: `redisSessionStore({ client })`. */
  store?: OidcSessionStore;
  /**
   * Where revocations are shared between nodes, so that a revoked session
   * stays revoked on every node (`redisRevocationStore({ client })`).
   * Default: this process only.
   */
  revocationStore?: OidcRevocationStore;
  /** Longest wait, in ms, for one store call before the store counts as unavailable. Default 2000. */
  storeTimeout?: number;
  /** Longest wait, in ms, for the other nodes' answers when counting the sockets a revocation reaches. Default 5000. */
  clusterTimeout?: number;
}

/** While the store is unavailable, it is probed this often (ms) to notice its return. */
const PROBE_INTERVAL = 1_000;
/**
 * Removals remembered during an outage, at most. Beyond that they are
 * dropped: the records expire with their TTL anyway, since no heartbeat
 * writes them again.
 */
const MAX_PENDING_REMOVALS = 10_000;

type Attempt<T> = { ok: true; value: T } | { ok: false };

function positive(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value <= 0)) {
    throw new TypeError(`OidcSessionManager.configure: "${name}" must be a positive number of ms, got ${String(value)}`);
  }
}

/**
 * Register as `session`. The socket middleware reports every authenticated
 * socket to it (`registerSocket` / `unregisterSocket`, the socket middleware's contract);
 * it lists them and disconnects them on demand, across every namespace of the
 * server — and, with `redisSessionStore` and `attachRedisAdapter`, across
 * every node. Disconnected clients receive `oidc:revoked` with
 * `{ code: "ERR_AUTH_REVOKED", reason }` first.
 *
 * Revocations go through Socket.IO's adapter: an authenticated socket is in
 * the room `oidc:iss-sub:<iss>:<sub>`, plus `oidc:user:<userId>` when its
 * local user id differs from its `sub`, plus `oidc:iss-sid:<iss>:<sid>` and
 * the shared `oidc:with-sid` when its token has a `sid` (see `oidcRoom`), and
 * a revocation is a broadcast to a union of those rooms (by `sub` or `sid`
 * alone: one room per configured issuer).
 *
 * When the store fails (Redis down), sessions degrade to this node's (logged
 * once at level 4), handshakes go on, and when the store answers again this
 * node's live sessions are written back (logged at level 6).
 */
export class OidcSessionManager extends BaseManager {
  protected static readonly options: OidcSessionManagerOptions = {};
  private readonly store: OidcSessionStore;
  private readonly storeTimeout: number;
  private readonly clusterTimeout: number;
  /** This node's sessions (the store may hold other nodes' too). */
  private readonly local = new Map<string, OidcSessionRecord>();
  /** Sessions that ended while the store was unavailable: removed from it when it returns. */
  private readonly pendingRemovals = new Set<string>();
  private storeDown = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private beating = false;
  private stopped = false;
  private readonly closer = () => this.stop();
  /** Disconnects the app's deny-list from the shared revocation store, when one was given. */
  private readonly disconnectRevocations: (() => Promise<void>) | undefined;

  /** A manager class with options: `OidcSessionManager.configure({ store })`. */
  static configure(options: OidcSessionManagerOptions): typeof OidcSessionManager {
    if (options === null || typeof options !== "object") throw new TypeError("OidcSessionManager.configure: options must be an object");
    if (options.store !== undefined) {
      for (const method of ["add", "remove", "list"] as const) {
        if (typeof options.store?.[method] !== "function") {
          throw new TypeError(`OidcSessionManager.configure: "store" must implement ${method}()`);
        }
      }
    }
    positive(options.storeTimeout, "storeTimeout");
    positive(options.clusterTimeout, "clusterTimeout");
    if (options.revocationStore !== undefined) {
      for (const method of ["add", "list"] as const) {
        if (typeof options.revocationStore?.[method] !== "function") {
          throw new TypeError(`OidcSessionManager.configure: "revocationStore" must implement ${method}()`);
        }
      }
    }
    const frozen = Object.freeze({ ...options });
    return class ConfiguredOidcSessionManager extends OidcSessionManager {
      protected static override readonly options = frozen;
    };
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
    const options = (this.constructor as typeof OidcSessionManager).options;
    this.store = options.store ?? new MemorySessionStore();
    this.storeTimeout = options.storeTimeout ?? 2_000;
    this.clusterTimeout = options.clusterTimeout ?? 5_000;
    this.disconnectRevocations = options.revocationStore === undefined ? undefined : connectRevocationStore(this.app, options.revocationStore);
    clusterOf(this.app).closers.add(this.closer);
    this.schedule();
  }

  private get app(): OidcAppHandle {
    return this.appHandle as OidcAppHandle;
  }

  /** Whether the store is currently unavailable (sessions are this node's only). */
  get degraded(): boolean {
    return this.storeDown;
  }

  /** Called by `OidcSocketMiddleware` after a successful handshake. Never fails because of the store. */
  async registerSocket(userId: string, socketId: string, sub: string): Promise<void> {
    const socket = registryOf(this.app).get(socketId);
    const context = socket === undefined ? undefined : contextOf(socket);
    const record: OidcSessionRecord = {
      socketId,
      userId,
      sub,
      namespace: socket?.nsp.name ?? "/",
      connectedAt: Date.now(),
      expiresAt: context?.expiresAt ?? 0,
    };
    const sid = context === undefined ? undefined : sidOf(context);
    const iss = context === undefined ? undefined : issOf(context);
    if (sid !== undefined) record.sid = sid;
    if (iss !== undefined) record.iss = iss;
    if (typeof this.store.nodeId === "string") record.node = this.store.nodeId;
    this.local.set(socketId, record);
    if (this.storeDown) return; // written back when the store returns
    await this.attempt("add", () => this.store.add(record));
  }

  /** Called by `OidcSocketMiddleware` when the socket goes away. */
  async unregisterSocket(socketId: string): Promise<void> {
    this.local.delete(socketId);
    if (this.storeDown) {
      this.rememberRemoval(socketId);
      return;
    }
    const done = await this.attempt("remove", () => this.store.remove(socketId));
    if (!done.ok) this.rememberRemoval(socketId);
  }

  private rememberRemoval(socketId: string): void {
    if (this.pendingRemovals.size < MAX_PENDING_REMOVALS) this.pendingRemovals.add(socketId);
  }

  /** Every live session: of every node with a shared store; this node's only while the store is unavailable. */
  async list(): Promise<OidcSessionRecord[]> {
    const stored = this.storeDown ? undefined : await this.attempt("list", () => this.store.list());
    return this.merge(stored?.ok ? stored.value : [], () => true);
  }

  /**
   * The live sessions of a user, by `userId` (same scope as `list()`): the
   * users manager's id, else the id derived from the subject (the `sub` with
   * one trusted issuer, `<iss>#<sub>` with several). A `sub` is not a user
   * id: use `listBySubject` for that.
   */
  async listByUser(userId: string): Promise<OidcSessionRecord[]> {
    if (typeof userId !== "string" || userId === "") throw new TypeError("listByUser: a user id is required");
    const matches = (record: OidcSessionRecord) => record.userId === userId;
    let stored: Attempt<OidcSessionRecord[]> | undefined;
    if (!this.storeDown) {
      const byUser = this.store.listByUser;
      stored = await this.attempt("listByUser", async () =>
        typeof byUser === "function" ? byUser.call(this.store, userId) : (await this.store.list()).filter(matches),
      );
    }
    return this.merge(stored?.ok ? stored.value.filter(matches) : [], matches);
  }

  /**
   * The live sessions of a subject: tokens whose `sub` is `sub`, from the
   * issuer `options.iss` — or from any trusted issuer without it (several
   * issuers may use the same `sub` for different people: pass `iss`).
   */
  async listBySubject(sub: string, options: { iss?: string } = {}): Promise<OidcSessionRecord[]> {
    if (typeof sub !== "string" || sub === "") throw new TypeError("listBySubject: a sub is required");
    if (options === null || typeof options !== "object") throw new TypeError("listBySubject: options must be an object");
    const { iss } = options;
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("listBySubject: iss must be a non-empty string");
    const issuers = iss !== undefined ? [iss] : this.issuers("listBySubject", this.subjectContexts(sub));
    const matches = (record: OidcSessionRecord) => record.sub === sub && record.iss !== undefined && issuers.includes(record.iss);
    let stored: Attempt<OidcSessionRecord[]> | undefined;
    if (!this.storeDown) {
      const bySubject = this.store.listBySubject;
      stored = await this.attempt("listBySubject", async () =>
        typeof bySubject === "function"
          ? (await Promise.all(issuers.map((each) => bySubject.call(this.store, each, sub)))).flat()
          : (await this.store.list()).filter(matches),
      );
    }
    return this.merge(stored?.ok ? stored.value.filter(matches) : [], matches);
  }

  /**
   * Disconnect every socket of a user, by `userId` (see `listByUser`), on
   * every namespace — and every node, with the Redis adapter. Never a socket
   * of another user: a `sub` that happens to equal the id is not matched (use
   * `disconnectSubject` for subjects). Resolves to the number of sockets
   * found: this node's, plus those the other nodes reported within
   * `clusterTimeout` (the revocation is broadcast either way).
   */
  async disconnectUser(userId: string, reason?: string): Promise<number> {
    if (typeof userId !== "string" || userId === "") throw new TypeError("disconnectUser: a user id is required");
    const config = this.config("disconnectUser");
    const subjects = subjectsOfDerivedUserId(this.app, userId, config);
    const rooms = [oidcRoom.user(userId), ...subjects.map(([iss, sub]) => oidcRoom.issuerSub(iss, sub))];
    const publish = recordRevocations(this.app, [revocationNow("user", "", userId, config), ...subjects.map(([iss, sub]) => revocationNow("subject", iss, sub, config))]);
    const count = await this.revoke(rooms, reason, () => revokeUserSockets(this.app, userId, config, reason));
    publish(); // after the broadcast: the other nodes hear it (with its reason) first
    this.log(6, `disconnected ${count} socket(s) of user ${show(userId)}${reason ? `: ${show(reason)}` : ""}`);
    return count;
  }

  /**
   * Disconnect every socket whose token carries the OIDC session id `sid`
   * (the `sid` claim), e.g. on a back-channel logout; with `iss`, only tokens
   * from that issuer. Same reach and count as `disconnectUser`.
   */
  async disconnectSessionId(sid: string, reason?: string, iss?: string): Promise<number> {
    if (typeof sid !== "string" || sid === "") throw new TypeError("disconnectSessionId: a sid is required");
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("disconnectSessionId: iss must be a non-empty string");
    const issuers = iss !== undefined ? [iss] : this.issuers("disconnectSessionId", this.allContexts((context) => sidOf(context) === sid));
    const rooms = issuers.map((each) => oidcRoom.issuerSid(each, sid));
    const config = this.config("disconnectSessionId");
    const publish = recordRevocations(this.app, issuers.map((each) => revocationNow("session", each, sid, config)));
    const count = rooms.length === 0 ? 0 : await this.revoke(rooms, reason, () => 0);
    publish(); // after the broadcast: the other nodes hear it (with its reason) first
    this.log(6, `disconnected ${count} socket(s) of session ${show(sid)}${iss === undefined ? "" : ` (${show(iss)})`}${reason ? `: ${show(reason)}` : ""}`);
    return count;
  }

  /**
   * Disconnect every socket whose token's `sub` is `sub` — from the issuer
   * `iss` only, when given (several trusted issuers may use the same `sub`
   * value for different users); with `withoutSid`, only those whose token
   * carries no `sid`. Unlike `disconnectUser`, the local user id is not
   * matched. Same reach and count as `disconnectUser`: every namespace, every
   * node with the Redis adapter (room `oidc:iss-sub:…`, or one per configured
   * issuer without `iss`; `withoutSid` excludes `oidc:with-sid`, see `oidcRoom`).
   */
  async disconnectSubject(sub: string, options: OidcDisconnectSubjectOptions = {}): Promise<number> {
    if (typeof sub !== "string" || sub === "") throw new TypeError("disconnectSubject: a sub is required");
    if (options === null || typeof options !== "object") throw new TypeError("disconnectSubject: options must be an object");
    const { iss, reason, withoutSid } = options;
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("disconnectSubject: iss must be a non-empty string");
    if (reason !== undefined && typeof reason !== "string") throw new TypeError("disconnectSubject: reason must be a string");
    if (withoutSid !== undefined && typeof withoutSid !== "boolean") throw new TypeError("disconnectSubject: withoutSid must be a boolean");
    if (withoutSid === true && iss === undefined) throw new TypeError("disconnectSubject: withoutSid needs iss (a sid only means something at its issuer)");
    const issuers = iss !== undefined ? [iss] : this.issuers("disconnectSubject", this.subjectContexts(sub));
    const rooms = iss !== undefined ? [oidcRoom.issuerSub(iss, sub)] : [subRoom(sub), ...issuers.map((each) => oidcRoom.issuerSub(each, sub))];
    const config = this.config("disconnectSubject");
    const publish = recordRevocations(this.app, issuers.map((each) => revocationNow("subject", each, sub, config, withoutSid === true)));
    const count = await this.revoke(rooms, reason, () => 0, withoutSid === true ? [oidcRoom.withSid] : []);
    publish(); // after the broadcast: the other nodes hear it (with its reason) first
    const scope = `${iss === undefined ? "" : ` (${show(iss)})`}${withoutSid === true ? " without sid" : ""}`;
    this.log(6, `disconnected ${count} socket(s) of subject ${show(sub)}${scope}${reason ? `: ${show(reason)}` : ""}`);
    return count;
  }

  /**
   * Disconnect one socket; resolves to whether it was found — on this node,
   * or (with a shared store) in the store, in which case the revocation is
   * broadcast to its namespace on every node.
   */
  async disconnectSocket(socketId: string, reason?: string): Promise<boolean> {
    if (typeof socketId !== "string" || socketId === "") throw new TypeError("disconnectSocket: a socket id is required");
    if (revokeSocket(this.app, socketId, reason)) return true;
    const io = clusterOf(this.app).io;
    if (io === undefined || this.storeDown) return false;
    const get = this.store.get;
    const found = await this.attempt("get", async () =>
      typeof get === "function" ? get.call(this.store, socketId) : (await this.store.list()).find((record) => record.socketId === socketId),
    );
    if (!found.ok || found.value === undefined) return false;
    const nsp = io._nsps.get(found.value.namespace);
    if (nsp === undefined) return false;
    const payload = revokedPayload(reason);
    try {
      nsp.to(socketId).emit(OIDC_EVENTS.revoked, payload);
      nsp.to(socketId).disconnectSockets(true);
    } catch (error) {
      this.log(4, `disconnectSocket(${socketId}) broadcast failed: ${describeError(error)}`);
    }
    return true;
  }

  /** Stop the heartbeat and close the store (the Redis client stays open: the app owns it). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clusterOf(this.app).closers.delete(this.closer);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      await this.store.close?.();
    } catch (error) {
      this.log(4, `session store close() failed: ${describeError(error)}`);
    }
    await this.disconnectRevocations?.(); // logs its own failures
  }

  // --- internals -----------------------------------------------------------

  private log(level: number, text: string): void {
    oidcLog(this.app, level, text);
  }

  /**
   * The issuers a query by `sub` or `sid` alone must address: every configured
   * one, plus those of this node's matching sockets (a socket may outlive a
   * configuration change). When the configuration cannot be read, logged at
   * level 4: other nodes' sockets from issuers absent here are missed.
   */
  private issuers(what: string, local: Iterable<OidcUserContext>): string[] {
    const issuers = new Set<string>();
    const config = this.config(what);
    if (config !== undefined) for (const entry of config.issuers) issuers.add(entry.issuer);
    for (const context of local) {
      const iss = issOf(context);
      if (iss !== undefined) issuers.add(iss);
    }
    return [...issuers];
  }

  /** The app's configuration, or undefined (logged at level 4) when it cannot be read. */
  private config(what: string): OidcConfig | undefined {
    try {
      return resolveConfig(this.app);
    } catch (error) {
      this.log(4, `${what}: the configuration could not be read (${describeError(error)}); only this node's sockets tell which issuers to address`);
      return undefined;
    }
  }

  /** The contexts of this node's sockets whose token's `sub` is `sub`, from any issuer. */
  private *subjectContexts(sub: string): Generator<OidcUserContext> {
    for (const socket of registryOf(this.app).ofSubjectAnyIssuer(sub)) {
      const context = contextOf(socket);
      if (context !== undefined) yield context;
    }
  }

  /** The contexts of every socket of this node that pass `keep`. */
  private *allContexts(keep: (context: OidcUserContext) => boolean): Generator<OidcUserContext> {
    for (const socket of registryOf(this.app).all()) {
      const context = contextOf(socket);
      if (context !== undefined && keep(context)) yield context;
    }
  }

  private async revoke(rooms: string[], reason: string | undefined, fallback: () => number, except: string[] = []): Promise<number> {
    const io = clusterOf(this.app).io;
    // No Socket.IO server known yet: no socket ever authenticated here and no adapter was attached.
    if (io === undefined) return fallback();
    const payload = revokedPayload(reason);
    const { count, clusterError } = await revokeInRooms(io, rooms, payload, this.clusterTimeout, except);
    if (clusterError !== undefined) {
      const why = describeError(clusterError);
      if (clusterOf(this.app).health.down) this.log(6, `revocation reached this node only: Redis is unavailable (${why})`);
      else this.log(4, `revocation broadcast, but the other nodes' sockets could not all be counted (${why})`);
    }
    return count;
  }

  /** The store's records plus this node's (fresher, and present even when the store is not), live fields applied. */
  private merge(stored: OidcSessionRecord[], keep: (record: OidcSessionRecord) => boolean): OidcSessionRecord[] {
    const byId = new Map<string, OidcSessionRecord>();
    for (const record of stored) if (!this.pendingRemovals.has(record.socketId)) byId.set(record.socketId, { ...record });
    for (const record of this.snapshot()) if (keep(record)) byId.set(record.socketId, record);
    return [...byId.values()];
  }

  /** This node's sessions with the live context's fields (a refresh moves `expiresAt`, may change `sid`). */
  private snapshot(): OidcSessionRecord[] {
    const registry = registryOf(this.app);
    return [...this.local.values()].map((record) => {
      const socket = registry.get(record.socketId);
      const live = socket === undefined ? undefined : contextOf(socket);
      if (live === undefined) return { ...record };
      const next: OidcSessionRecord = { ...record, expiresAt: live.expiresAt };
      const sid = sidOf(live);
      if (sid === undefined) delete next.sid;
      else next.sid = sid;
      return next;
    });
  }

  /** One bounded store call; a failure marks the store down (logged once per outage). */
  private async attempt<T>(what: string, work: () => T | Promise<T>): Promise<Attempt<T>> {
    try {
      return { ok: true, value: await withTimeout(work, this.storeTimeout, `session store ${what}()`) };
    } catch (error) {
      this.markDown(what, error);
      return { ok: false };
    }
  }

  private markDown(what: string, error: unknown): void {
    clusterOf(this.app).health.failed("session store", error, `${what}()`);
    if (this.storeDown) return;
    this.storeDown = true;
    // Probe soon rather than at the next heartbeat.
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.schedule();
  }

  /** The next heartbeat (every `heartbeatInterval`) or, while the store is down, the next probe. */
  private schedule(): void {
    if (this.stopped || this.timer !== undefined) return;
    const every = this.store.heartbeatInterval;
    const periodic = typeof this.store.touch === "function" && typeof every === "number" && every > 0;
    if (!this.storeDown && !periodic) return;
    const delay = this.storeDown ? Math.min(PROBE_INTERVAL, periodic ? every : PROBE_INTERVAL) : (every as number);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.beat().finally(() => this.schedule());
    }, delay);
    this.timer.unref?.();
  }

  /** Heartbeat: re-write this node's sessions. After an outage this heals the store. */
  private async beat(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = true;
    try {
      const wasDown = this.storeDown;
      let records: OidcSessionRecord[] = [];
      const touch = this.store.touch;
      const written = await this.attempt("touch", async () => {
        // Taken as the store is called, not before: a session removed in between is not written back.
        records = this.snapshot();
        if (typeof touch === "function") await touch.call(this.store, records);
        // One add per record; one removed meanwhile (unregisterSocket) is skipped, not written back.
        else for (const record of records) if (this.local.has(record.socketId)) await this.store.add(record);
      });
      if (!written.ok || !wasDown) return;
      for (const socketId of [...this.pendingRemovals]) {
        if (this.local.has(socketId)) {
          this.pendingRemovals.delete(socketId);
          continue;
        }
        const removed = await this.attempt("remove", () => this.store.remove(socketId));
        if (!removed.ok) return;
        this.pendingRemovals.delete(socketId);
      }
      this.storeDown = false;
      // One line per outage: logged by the shared health once nothing is down any more.
      clusterOf(this.app).health.ok("session store", `${records.length} session(s) of this node written back to the session store`);
    } finally {
      this.beating = false;
    }
  }
}
