import { BaseManager } from "ioserver";
import type { AppHandle } from "ioserver";
import { clusterOf } from "../sockets/cluster.js";
import { healthOf } from "../stores/health.js";
import { OIDC_EVENTS, revokedPayload } from "../sockets/protocol.js";
import { endRevokedSockets, revokeSocket } from "../sockets/revoke.js";
import { sidOf } from "../sockets/rooms.js";
import { issOf } from "../claims/identity.js";
import { connectRevocationStore, type OidcRevocationStore } from "../stores/revocationStore.js";
import { registryOf } from "../sockets/registry.js";
import { withTimeout } from "../util/withTimeout.js";
import type { OidcAppHandle } from "../types.js";
import { oidcLog } from "../util/log.js";
import { describeError } from "../util/text.js";
import { contextOf } from "../sockets/socketState.js";
import { MemorySessionStore, type OidcSessionRecord, type OidcSessionStore } from "../stores/sessionStore.js";
import { issuersFor, revokeSessionId, revokeSubject, revokeUser, subjectContexts } from "../sockets/revocations.js";
import { configuredClass } from "./configure.js";
import { isPositive } from "../util/validate.js";

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
  if (value !== undefined && !isPositive(value)) {
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
    return configuredClass(OidcSessionManager, options);
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
    const options = (this.constructor as typeof OidcSessionManager).options;
    this.store = options.store ?? new MemorySessionStore();
    this.storeTimeout = options.storeTimeout ?? 2_000;
    this.clusterTimeout = options.clusterTimeout ?? 5_000;
    this.disconnectRevocations = options.revocationStore === undefined ? undefined : connectRevocationStore(this.app, options.revocationStore, (entry) => endRevokedSockets(this.app, entry));
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
    const issuers = iss !== undefined ? [iss] : issuersFor(this.app, "listBySubject", subjectContexts(this.app, sub));
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
    return revokeUser(this.app, userId, { reason, clusterTimeout: this.clusterTimeout });
  }

  /**
   * Disconnect every socket whose token carries the OIDC session id `sid`
   * (the `sid` claim), e.g. on a back-channel logout; with `iss`, only tokens
   * from that issuer. Same reach and count as `disconnectUser`.
   */
  async disconnectSessionId(sid: string, reason?: string, iss?: string): Promise<number> {
    if (typeof sid !== "string" || sid === "") throw new TypeError("disconnectSessionId: a sid is required");
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("disconnectSessionId: iss must be a non-empty string");
    return revokeSessionId(this.app, sid, iss, { reason, clusterTimeout: this.clusterTimeout });
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
    return revokeSubject(this.app, sub, iss, withoutSid === true, { reason, clusterTimeout: this.clusterTimeout });
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
    healthOf(this.app).failed("session store", error, `${what}()`);
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
      healthOf(this.app).ok("session store", `${records.length} session(s) of this node written back to the session store`);
    } finally {
      this.beating = false;
    }
  }
}
