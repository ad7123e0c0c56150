/**
 * Where revocations are shared: the same shape as the session and replay
 * stores. The default keeps them in this process (the app's deny-list is
 * enough for one node); `redisRevocationStore()` shares them between nodes,
 * so a revocation on one node holds on every node, including nodes that
 * start later.
 *
 * Each node keeps its own in-memory mirror (`denyList.ts`) and checks only
 * that: a request never waits for the store. The store is written when a
 * revocation is made, read when a node starts (or reconnects), and tells the
 * other nodes through `subscribe`.
 */
import type { OidcAppHandle } from "../types.js";
import { clusterOf } from "./cluster.js";
import { denyListOf, type OidcRevocation } from "./denyList.js";
import { describeError, oidcLog } from "./log.js";

export interface OidcRevocationStore {
  /** Record a revocation (and tell the other nodes). */
  add(entry: OidcRevocation): void | Promise<void>;
  /** Every revocation still in force. */
  list(): OidcRevocation[] | Promise<OidcRevocation[]>;
  /**
   * Hear revocations added by any node, and `resync()` when the store's
   * connection came back (entries may have been missed meanwhile). Returns
   * how to stop listening.
   */
  subscribe?(listener: { added(entry: OidcRevocation): void; resync(): void }): () => void | Promise<void>;
  /** Release what the store holds (not a Redis client the app passed in). */
  close?(): void | Promise<void>;
}

/** The default store: this process only (the app's deny-list is the store). */
export class MemoryRevocationStore implements OidcRevocationStore {
  private readonly entries: OidcRevocation[] = [];
  add(entry: OidcRevocation): void {
    const now = Date.now();
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]!.until <= now) this.entries.splice(i, 1);
    this.entries.push({ ...entry });
  }
  list(): OidcRevocation[] {
    const now = Date.now();
    return this.entries.filter((entry) => entry.until > now).map((entry) => ({ ...entry }));
  }
}

/** While the store fails, revocations made here are kept and written again this often (ms). */
const RETRY_MS = 1_000;
/** Revocations kept for a store that is down, at most (the oldest go first; each still holds on this node). */
const MAX_PENDING = 10_000;

/** What ties an app's deny-list to its revocation store. */
interface Link {
  store: OidcRevocationStore;
  pending: OidcRevocation[];
  timer: ReturnType<typeof setTimeout> | undefined;
  unsubscribe: (() => void | Promise<void>) | undefined;
  closed: boolean;
}

const links = new WeakMap<object, Link>();

/**
 * Connect the app's deny-list to a shared store: load what it holds, follow
 * what other nodes add. Returns how to disconnect. One store per app.
 */
export function connectRevocationStore(appHandle: OidcAppHandle, store: OidcRevocationStore): () => Promise<void> {
  const list = denyListOf(appHandle);
  const link: Link = { store, pending: [], timer: undefined, unsubscribe: undefined, closed: false };
  links.set(appHandle, link);
  const load = async (): Promise<void> => {
    try {
      for (const entry of await store.list()) list.add(entry);
      clusterOf(appHandle).health.ok("revocation store");
    } catch (error) {
      clusterOf(appHandle).health.failed("revocation store", error, "list()");
      schedule(appHandle, link);
    }
  };
  if (typeof store.subscribe === "function") {
    link.unsubscribe = store.subscribe({
      added: (entry) => list.add(entry),
      resync: () => void load(),
    });
  }
  void load();
  return async () => {
    link.closed = true;
    if (link.timer !== undefined) clearTimeout(link.timer);
    if (links.get(appHandle) === link) links.delete(appHandle);
    try {
      await link.unsubscribe?.();
      await store.close?.();
    } catch (error) {
      oidcLog(appHandle, 4, `revocation store close() failed: ${describeError(error)}`);
    }
  };
}

/**
 * Record revocations: in this app's deny-list at once (so this node refuses
 * them from now on, whatever the store does), then in its store when it has
 * one. A store that fails keeps them pending and retries.
 */
export function recordRevocations(appHandle: OidcAppHandle, entries: OidcRevocation[]): void {
  const list = denyListOf(appHandle);
  for (const entry of entries) list.add(entry);
  const link = links.get(appHandle);
  if (link === undefined || link.closed) return;
  link.pending.push(...entries);
  if (link.pending.length > MAX_PENDING) link.pending.splice(0, link.pending.length - MAX_PENDING);
  void flush(appHandle, link);
}

async function flush(appHandle: OidcAppHandle, link: Link): Promise<void> {
  while (link.pending.length > 0 && !link.closed) {
    const entry = link.pending[0]!;
    if (entry.until <= Date.now()) {
      link.pending.shift();
      continue;
    }
    try {
      await link.store.add(entry);
      if (link.pending[0] === entry) link.pending.shift();
      clusterOf(appHandle).health.ok("revocation store", "revocations made meanwhile were written");
    } catch (error) {
      clusterOf(appHandle).health.failed("revocation store", error, "add()");
      schedule(appHandle, link);
      return;
    }
  }
}

function schedule(appHandle: OidcAppHandle, link: Link): void {
  if (link.timer !== undefined || link.closed) return;
  link.timer = setTimeout(() => {
    link.timer = undefined;
    void (async () => {
      await flush(appHandle, link);
      if (link.pending.length === 0 && !link.closed) {
        // Back: catch up with what other nodes revoked while this one could not hear.
        try {
          for (const entry of await link.store.list()) denyListOf(appHandle).add(entry);
          clusterOf(appHandle).health.ok("revocation store");
        } catch (error) {
          clusterOf(appHandle).health.failed("revocation store", error, "list()");
          schedule(appHandle, link);
        }
      }
    })();
  }, RETRY_MS);
  link.timer.unref?.();
}

/** A revocation made now, holding for the config's `revocationTtl`. */
export function revocationNow(
  kind: OidcRevocation["kind"],
  iss: string,
  value: string,
  config: { revocationTtl: number } | undefined,
  withoutSid = false,
): OidcRevocation {
  const now = Date.now();
  const ttl = config?.revocationTtl ?? 86_400;
  const entry: OidcRevocation = { kind, iss, value, at: Math.floor(now / 1000), until: now + ttl * 1000 };
  if (withoutSid) entry.withoutSid = true;
  return entry;
}
