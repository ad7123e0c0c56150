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
import { healthOf } from "./health.js";
import { DEFAULTS } from "../config/defaults.js";
import { tryResolveConfig } from "../config/resolve.js";
import { PROBE_INTERVAL } from "../util/backoff.js";
import { denyListOf, type OidcRevocation } from "./denyList.js";
import { oidcLog } from "../util/log.js";
import { describeError } from "../util/text.js";
import { appPart } from "../util/appState.js";

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

/**
 * A store in this process only, of the shared store's shape: for tests, or to
 * run the shared-store path on one node. Without any store, the app's
 * in-memory deny-list alone holds its revocations.
 */
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

/** Revocations kept for a store that is down, at most (the oldest go first; each still holds on this node). */
const MAX_PENDING = 10_000;
/** How far in the future an entry read from the store may start (s), at most: a clock a little ahead, no more. */
const MAX_AT_AHEAD_S = 300;

/** What ties an app's deny-list to its revocation store. */
interface Link {
  store: OidcRevocationStore;
  onRevoked: OnRevoked;
  pending: OidcRevocation[];
  flushing: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  unsubscribe: (() => void | Promise<void>) | undefined;
  closed: boolean;
}

/** The app's link to its revocation store, when it has one. */
const links = appPart<{ current?: Link }>("revocation store link", () => ({}));

/**
 * An entry read from a shared store is not trusted blindly (anyone who can
 * write the key or publish on the channel could send one): it may start at
 * most a little ahead of this clock and hold no longer than `revocationTtl`.
 */
function clamped(appHandle: OidcAppHandle, entry: OidcRevocation): OidcRevocation {
  const now = Date.now();
  const ttl = tryResolveConfig(appHandle)?.revocationTtl ?? DEFAULTS.revocationTtl;
  return { ...entry, at: Math.min(entry.at, Math.floor(now / 1000) + MAX_AT_AHEAD_S), until: Math.min(entry.until, now + ttl * 1000) };
}

/** Add entries to the app's deny-list; log (once per call) any it had to drop to stay bounded. */
function addAll(appHandle: OidcAppHandle, entries: readonly OidcRevocation[]): OidcRevocation[] {
  const list = denyListOf(appHandle);
  const before = list.evicted;
  const changed = entries.filter((entry) => list.add(entry));
  if (list.evicted > before) oidcLog(appHandle, 3, `deny-list full: ${list.evicted - before} revocation(s) closest to their end dropped`);
  return changed;
}

/**
 * What to do with entries heard from the store: end this node's live
 * connections they cover (`entry`), or those the whole list covers (no
 * entry: after loading it). Given by the layer that holds the connections.
 */
export type OnRevoked = (entry?: OidcRevocation) => void;

/**
 * Connect the app's deny-list to a shared store: load what it holds, follow
 * what other nodes add (`onRevoked` ends the live connections it covers).
 * Returns how to disconnect. One store per app: connecting another closes
 * the first.
 */
export function connectRevocationStore(appHandle: OidcAppHandle, store: OidcRevocationStore, onRevoked: OnRevoked): () => Promise<void> {
  const previous = links.of(appHandle).current;
  const link: Link = { store, onRevoked, pending: [], flushing: false, timer: undefined, unsubscribe: undefined, closed: false };
  links.of(appHandle).current = link;
  if (previous !== undefined) void close(appHandle, previous);
  const load = async (): Promise<void> => {
    try {
      addAll(appHandle, (await store.list()).map((entry) => clamped(appHandle, entry)));
      onRevoked();
      healthOf(appHandle).ok("revocation store");
    } catch (error) {
      healthOf(appHandle).failed("revocation store", error, "list()");
      schedule(appHandle, link);
    }
  };
  if (typeof store.subscribe === "function") {
    link.unsubscribe = store.subscribe({
      added: (entry) => {
        const changed = addAll(appHandle, [clamped(appHandle, entry)]);
        if (changed.length > 0) onRevoked(changed[0]);
      },
      resync: () => void load(),
    });
  }
  void load();
  return () => close(appHandle, link);
}

async function close(appHandle: OidcAppHandle, link: Link): Promise<void> {
  if (link.closed) return;
  link.closed = true;
  if (link.timer !== undefined) clearTimeout(link.timer);
  if (links.of(appHandle).current === link) links.of(appHandle).current = undefined;
  try {
    await link.unsubscribe?.();
  } catch (error) {
    oidcLog(appHandle, 4, `revocation store unsubscribe failed: ${describeError(error)}`);
  }
  try {
    await link.store.close?.();
  } catch (error) {
    oidcLog(appHandle, 4, `revocation store close() failed: ${describeError(error)}`);
  }
}

/**
 * Record revocations: in this app's deny-list at once (so this node refuses
 * them from now on, whatever the store does). Returns the function that
 * writes them to the app's store, when it has one (a store that fails keeps
 * them pending and retries): callers that broadcast the revocation through
 * the adapter call it after the broadcast, so other nodes hear the broadcast
 * (with its reason) first.
 */
export function recordRevocations(appHandle: OidcAppHandle, entries: OidcRevocation[]): () => void {
  addAll(appHandle, entries);
  return () => {
    const link = links.of(appHandle).current;
    if (link === undefined || link.closed) return;
    link.pending.push(...entries);
    if (link.pending.length > MAX_PENDING) link.pending.splice(0, link.pending.length - MAX_PENDING);
    void flush(appHandle, link);
  };
}

/** Write the pending revocations, one writer per link. */
async function flush(appHandle: OidcAppHandle, link: Link): Promise<void> {
  if (link.flushing) return;
  link.flushing = true;
  try {
    while (link.pending.length > 0 && !link.closed) {
      const entry = link.pending[0]!;
      if (entry.until <= Date.now()) {
        link.pending.shift();
        continue;
      }
      try {
        await link.store.add(entry);
        if (link.pending[0] === entry) link.pending.shift();
        healthOf(appHandle).ok("revocation store", "revocations made meanwhile were written");
      } catch (error) {
        healthOf(appHandle).failed("revocation store", error, "add()");
        schedule(appHandle, link);
        return;
      }
    }
  } finally {
    link.flushing = false;
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
          addAll(appHandle, (await link.store.list()).map((entry) => clamped(appHandle, entry)));
          link.onRevoked();
          healthOf(appHandle).ok("revocation store");
        } catch (error) {
          healthOf(appHandle).failed("revocation store", error, "list()");
          schedule(appHandle, link);
        }
      }
    })();
  }, PROBE_INTERVAL);
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
  const ttl = config?.revocationTtl ?? DEFAULTS.revocationTtl;
  const entry: OidcRevocation = { kind, iss, value, at: Math.floor(now / 1000), until: now + ttl * 1000 };
  if (withoutSid) entry.withoutSid = true;
  return entry;
}
