/**
 * This node's record of its live sessions, kept in the app's session store
 * (memory, or Redis to share them between nodes). A store that fails or
 * hangs never fails a handshake: sessions degrade to this node's (logged
 * once at level 4), a probe runs every second, and when the store answers
 * again this node's live sessions are written back (logged at level 6).
 */
import type { OidcAppHandle } from "../types.js";
import { issOf } from "../claims/identity.js";
import { healthOf } from "../stores/health.js";
import type { OidcSessionRecord, OidcSessionStore } from "../stores/sessionStore.js";
import { withTimeout } from "../util/withTimeout.js";
import { registryOf } from "./registry.js";
import { sidOf } from "./rooms.js";
import { contextOf } from "./socketState.js";
import { PROBE_INTERVAL } from "../util/backoff.js";

/**
 * Removals remembered during an outage, at most. Beyond that they are
 * dropped: the records expire with their TTL anyway, since no heartbeat
 * writes them again.
 */
const MAX_PENDING_REMOVALS = 10_000;

export type Attempt<T> = { ok: true; value: T } | { ok: false };

export class SessionBook {
  /** This node's sessions (the store may hold other nodes' too). */
  private readonly local = new Map<string, OidcSessionRecord>();
  /** Sessions that ended while the store was unavailable: removed from it when it returns. */
  private readonly pendingRemovals = new Set<string>();
  private storeDown = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private beating = false;
  private stopped = false;

  /** Stops the store's reconnection calls (see `OidcSessionStore.onReconnect`). */
  private readonly stopListening: (() => void) | undefined;

  constructor(
    private readonly app: OidcAppHandle,
    readonly store: OidcSessionStore,
    private readonly storeTimeout: number,
  ) {
    this.schedule();
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with `.call(store, …)`: read once so that `typeof` and the call see the same function
    const onReconnect = store.onReconnect;
    this.stopListening = typeof onReconnect === "function" ? onReconnect.call(store, () => this.reconnected()) : undefined;
  }

  /** The store's backend is back after a loss, perhaps empty: write this node's sessions back now. */
  private reconnected(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // beat() does not reject: every store call goes through attempt(), which catches.
    void this.beat().finally(() => this.schedule());
  }

  /** Whether the store is currently unavailable (sessions are this node's only). */
  get degraded(): boolean {
    return this.storeDown;
  }

  /** Record a socket that completed its handshake. Never fails because of the store. */
  async register(userId: string, socketId: string, sub: string): Promise<void> {
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

  /** Forget a socket that went away. */
  async unregister(socketId: string): Promise<void> {
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

  /** The live sessions whose `userId` is `userId`. */
  async listByUser(userId: string): Promise<OidcSessionRecord[]> {
    const matches = (record: OidcSessionRecord) => record.userId === userId;
    let stored: Attempt<OidcSessionRecord[]> | undefined;
    if (!this.storeDown) {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- the method is called with `.call(this.store, …)`: read once so that `typeof` and the call see the same function
      const byUser = this.store.listByUser;
      stored = await this.attempt("listByUser", async () =>
        typeof byUser === "function" ? byUser.call(this.store, userId) : (await this.store.list()).filter(matches),
      );
    }
    return this.merge(stored?.ok ? stored.value.filter(matches) : [], matches);
  }

  /** The live sessions whose token's `sub` is `sub`, from one of `issuers`. */
  async listBySubject(sub: string, issuers: readonly string[]): Promise<OidcSessionRecord[]> {
    const matches = (record: OidcSessionRecord) => record.sub === sub && record.iss !== undefined && issuers.includes(record.iss);
    let stored: Attempt<OidcSessionRecord[]> | undefined;
    if (!this.storeDown) {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- the method is called with `.call(this.store, …)`: read once so that `typeof` and the call see the same function
      const bySubject = this.store.listBySubject;
      stored = await this.attempt("listBySubject", async () =>
        typeof bySubject === "function"
          // eslint-disable-next-line @typescript-eslint/await-thenable -- listBySubject may return a promise or an array (OidcSessionStore); Promise.all takes both
          ? (await Promise.all(issuers.map((each) => bySubject.call(this.store, each, sub)))).flat()
          : (await this.store.list()).filter(matches),
      );
    }
    return this.merge(stored?.ok ? stored.value.filter(matches) : [], matches);
  }

  /** One session by socket id, from the store (undefined while it is unavailable or when absent). */
  async get(socketId: string): Promise<OidcSessionRecord | undefined> {
    if (this.storeDown) return undefined;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the method is called with `.call(this.store, …)`: read once so that `typeof` and the call see the same function
    const get = this.store.get;
    const found = await this.attempt("get", async () =>
      typeof get === "function" ? get.call(this.store, socketId) : (await this.store.list()).find((record) => record.socketId === socketId),
    );
    return found.ok ? found.value : undefined;
  }

  /** Stop the heartbeat and close the store (a Redis client stays open: the app owns it). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.stopListening?.();
    await this.store.close?.();
  }

  /** The store's records plus this node's (fresher, and present even when the store is not), live fields applied. */
  private merge(stored: OidcSessionRecord[], keep: (record: OidcSessionRecord) => boolean): OidcSessionRecord[] {
    const byId = new Map<string, OidcSessionRecord>();
    for (const record of stored) if (!this.pendingRemovals.has(record.socketId)) byId.set(record.socketId, { ...record });
    for (const record of this.snapshot(keep)) byId.set(record.socketId, record);
    return [...byId.values()];
  }

  /**
   * This node's sessions that `keep` accepts, with the live context's fields
   * (a refresh moves `expiresAt`, may change `sid`). `keep` is given the
   * record as written (the filters read `userId`, `sub` and `iss`, which the
   * live fields leave alone), so looking up one user costs a comparison per
   * session of this node, not a copy of each.
   */
  private snapshot(keep: (record: OidcSessionRecord) => boolean = () => true): OidcSessionRecord[] {
    const registry = registryOf(this.app);
    const records: OidcSessionRecord[] = [];
    for (const record of this.local.values()) {
      if (!keep(record)) continue;
      const socket = registry.get(record.socketId);
      const live = socket === undefined ? undefined : contextOf(socket);
      if (live === undefined) {
        records.push({ ...record });
        continue;
      }
      const next: OidcSessionRecord = { ...record, expiresAt: live.expiresAt };
      const sid = sidOf(live);
      if (sid === undefined) delete next.sid;
      else next.sid = sid;
      records.push(next);
    }
    return records;
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
      // beat() does not reject: every store call goes through attempt(), which catches.
      void this.beat().finally(() => this.schedule());
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
      // eslint-disable-next-line @typescript-eslint/unbound-method -- the method is called with `.call(this.store, …)`: read once so that `typeof` and the call see the same function
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
