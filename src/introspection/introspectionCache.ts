/**
 * The introspection cache: what the endpoint answered about a token, kept
 * under the SHA-256 of the token (never the token itself), bounded by entry
 * count with the least recently used entry going first. Expiry is checked on
 * read: no timers.
 */
import { hash } from "node:crypto";
import type { IntrospectionOutcome } from "./introspectionClaims.js";

/** The cache key of a token: its SHA-256 (of its UTF-8 bytes), base64url. One-shot `hash`: no Hash object per request. */
export function tokenHash(token: string): string {
  return hash("sha256", token, "base64url");
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
  /** Least recently used first: a hit or a set moves its key to the end. */
  private readonly map = new Map<string, CacheEntry>();
  /**
   * The key last inserted. Every insertion goes through `toEnd`, and removing
   * other keys moves none, so while this key is in the map it is at the end:
   * a hit on it moves nothing. (Moving a key is a delete and an insert, and a
   * Map whose keys keep moving rebuilds its table every few moves: with one
   * token presented over and over, that cost more than the rest of its
   * request's verification.)
   */
  private last: string | undefined;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxEntries: number) {}

  /** The fresh entry for `key`, counted as a hit (and made the most recent); nothing is counted when there is none. */
  hit(key: string, now: number): CacheEntry | undefined {
    const entry = this.map.get(key);
    if (entry === undefined || now >= entry.freshUntil) return undefined;
    this.hits++;
    if (key !== this.last) this.toEnd(key, entry);
    return entry;
  }

  /** A fresh entry for this key, which becomes the most recently used; counts a hit or a miss. */
  fresh(key: string, now: number): CacheEntry | undefined {
    const hit = this.hit(key, now);
    if (hit !== undefined) return hit;
    const entry = this.map.get(key);
    this.misses++;
    if (entry !== undefined && now >= entry.staleUntil) this.delete(key);
    return undefined;
  }

  /** An active entry past its freshness that may still answer while the endpoint fails. */
  stale(key: string, now: number): CacheEntry | undefined {
    const entry = this.map.get(key);
    return entry !== undefined && entry.outcome.active && now < entry.staleUntil ? entry : undefined;
  }

  set(key: string, entry: CacheEntry): void {
    if (this.maxEntries <= 0) return;
    this.toEnd(key, entry);
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
      this.evictions++;
    }
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  /** Make `key` the most recently used, holding `entry`. */
  private toEnd(key: string, entry: CacheEntry): void {
    // The last key is at the end already: setting it keeps its place.
    if (key !== this.last) this.map.delete(key);
    this.map.set(key, entry);
    this.last = key;
  }

  stats(): IntrospectionCacheStats {
    return { entries: this.map.size, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }
}
