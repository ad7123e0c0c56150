/**
 * The introspection cache: what the endpoint answered about a token, kept
 * under the SHA-256 of the token (never the token itself), bounded by entry
 * count with the least recently used entry going first. Expiry is checked on
 * read: no timers.
 */
import { createHash } from "node:crypto";
import type { IntrospectionOutcome } from "./introspectionClaims.js";

/** The cache key of a token: its SHA-256, base64url. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export interface CacheEntry {
  readonly outcome: IntrospectionOutcome;
  /** Epoch ms until which the entry answers without asking the endpoint. */
  readonly freshUntil: number;
  /** Epoch ms until which an active entry may still answer while the endpoint fails (`staleIfError`); never past the token's `exp`. */
  readonly staleUntil: number;
}

/** What `health().cache` reports. */
export interface IntrospectionCacheStats {
  entries: number;
  hits: number;
  misses: number;
  evictions: number;
}

export class IntrospectionCache {
  private readonly map = new Map<string, CacheEntry>();
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxEntries: number) {}

  /** The fresh entry for `key`, counted as a hit (and made the most recent); nothing is counted when there is none. */
  hit(key: string, now: number): CacheEntry | undefined {
    const entry = this.map.get(key);
    if (entry === undefined || now >= entry.freshUntil) return undefined;
    this.hits++;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry;
  }

  /** A fresh entry for this key, which becomes the most recently used; counts a hit or a miss. */
  fresh(key: string, now: number): CacheEntry | undefined {
    const hit = this.hit(key, now);
    if (hit !== undefined) return hit;
    const entry = this.map.get(key);
    this.misses++;
    if (entry !== undefined && now >= entry.staleUntil) this.map.delete(key);
    return undefined;
  }

  /** An active entry past its freshness that may still answer while the endpoint fails. */
  stale(key: string, now: number): CacheEntry | undefined {
    const entry = this.map.get(key);
    return entry !== undefined && entry.outcome.active && now < entry.staleUntil ? entry : undefined;
  }

  set(key: string, entry: CacheEntry): void {
    if (this.maxEntries <= 0) return;
    this.map.delete(key);
    this.map.set(key, entry);
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
      this.evictions++;
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  stats(): IntrospectionCacheStats {
    return { entries: this.map.size, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }
}
