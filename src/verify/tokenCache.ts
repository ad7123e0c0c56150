/**
 * The verified-token cache: a token string that passed every check is
 * remembered, so presenting the same string again skips the signature
 * check. A hit requires the whole token string to be equal to the one
 * verified (it proves the very same bytes were checked), bounded by entries and bytes, valid until the token's
 * `exp` (and `iat + maxTokenAge`, and `maxTtl`), and never used once the key
 * that verified it is no longer published. Failures are not cached.
 *
 * Admission (`admitAfter`, default 2): a token is kept the second time it
 * is verified, not the first. Most tokens a socket server sees are presented
 * once (each socket's handshake), and keeping each of them would cost memory
 * for every live socket and push out the tokens that do come back; a token
 * that does come back (an HTTP client, a reconnecting socket) pays one more
 * verification and is then cached. First verifications are remembered in a
 * fixed table of lookup keys, allocated with the cache (4 bytes a slot, no
 * allocation per token): a slot taken over by another token only delays
 * that token's admission, and never affects what a hit proves.
 */
import type { OidcIssuerConfig } from "../types.js";
import type { TokenCacheOptions } from "../config/tokenCacheOptions.js";
import type { RemoteKeySet, StoredKey } from "../keys/remoteKeySet.js";

/** Slots in the table of first verifications: twice `maxEntries`, a power of two, between 1 Ki and 1 Mi (4 MiB). */
function sightingSlots(maxEntries: number): number {
  let slots = 1024;
  while (slots < 2 * maxEntries && slots < 1 << 20) slots *= 2;
  return slots;
}

/** Per-entry bookkeeping overhead, a rough estimate of the Map slot and the entry object. */
const ENTRY_OVERHEAD = 160;

/**
 * The map key: a number made from the token's last characters (signature
 * bytes, as good as random), so a lookup reads KEY_CHARS characters and
 * hashes a small integer instead of a string. The entry keeps the whole
 * string and a hit requires equality with it; two tokens whose keys collide
 * only displace each other (and aiming a collision at an entry takes that
 * token's last characters, which only its holder has).
 */
const KEY_CHARS = 8;

/** Exported for the tests (which need tokens that share a slot). */
export function keyOf(token: string): number {
  let hash = 0x811c9dc5;
  for (let i = Math.max(0, token.length - KEY_CHARS); i < token.length; i++) hash = Math.imul(hash ^ token.charCodeAt(i), 0x01000193);
  // The low 30 bits: a small integer on every platform V8 runs on. (Two tokens
  // differing in just one of these characters always get different keys: each
  // step is a bijection on the low 30 bits.)
  return hash & 0x3fffffff;
}

export interface CachedVerification {
  /** The whole token string: a hit requires equality with it. */
  readonly token: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly issuer: OidcIssuerConfig;
  readonly keySet: RemoteKeySet;
  readonly key: StoredKey;
  /** Epoch ms from which the entry is not used. */
  readonly validUntil: number;
  readonly bytes: number;
}

/** What `getHealth().tokenCache` reports. */
export interface TokenCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Verified tokens not kept because it was their first verification (`admitAfter` 2). */
  deferred: number;
}

export class TokenCache {
  private readonly entries = new Map<number, CachedVerification>();
  /**
   * Where eviction goes on: a live iterator over the Map in insertion order.
   * Everything before it was evicted or deleted, so its next entry is the
   * oldest, and each slot deleted meanwhile is stepped over once. (Starting
   * a new iteration for every eviction would step over every slot deleted
   * since the Map last compacted its table: thousands once the cache is full
   * and turning over.)
   */
  private cursor: Iterator<CachedVerification> | undefined;
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private deferred = 0;
  /** Lookup keys (plus one, 0 is "empty") of tokens verified once and not kept yet; undefined when `admitAfter` is 1. */
  private readonly sightings: Int32Array | undefined;

  constructor(private readonly options: TokenCacheOptions) {
    if (options.admitAfter > 1 && options.maxEntries > 0) this.sightings = new Int32Array(sightingSlots(options.maxEntries));
  }

  /** The cached verification of exactly this token string, if still valid. */
  get(token: string, now: number): CachedVerification | undefined {
    const entry = this.entries.get(keyOf(token));
    if (entry === undefined || entry.token !== token) {
      this.misses++;
      return undefined;
    }
    if (now >= entry.validUntil || !entry.keySet.stillPublished(entry.key, now)) {
      this.delete(entry);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return entry;
  }

  /** Remember a verification. `payloadChars` is the length of the payload segment (for the byte estimate). */
  set(token: string, payload: Readonly<Record<string, unknown>>, issuer: OidcIssuerConfig, keySet: RemoteKeySet, key: StoredKey, payloadChars: number, now: number): void {
    const exp = payload["exp"];
    if (typeof exp !== "number") return;
    let validUntil = Math.min(exp * 1000, now + this.options.maxTtl);
    const iat = payload["iat"];
    if (issuer.maxTokenAge !== undefined) {
      if (typeof iat !== "number") return;
      validUntil = Math.min(validUntil, (iat + issuer.maxTokenAge) * 1000);
    }
    if (validUntil <= now) return;
    const bytes = token.length + payloadChars + ENTRY_OVERHEAD;
    if (bytes > this.options.maxBytes || this.options.maxEntries === 0) return;
    const lookup = keyOf(token);
    if (!this.admit(lookup)) return;
    const previous = this.entries.get(lookup);
    if (previous !== undefined) this.delete(previous);
    this.entries.set(lookup, { token, payload, issuer, keySet, key, validUntil, bytes });
    this.bytes += bytes;
    this.evict(now);
  }

  stats(): TokenCacheStats {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses, evictions: this.evictions, deferred: this.deferred };
  }

  clear(): void {
    this.entries.clear();
    this.sightings?.fill(0);
    this.cursor = undefined;
    this.bytes = 0;
  }

  /** Whether a verified token with this lookup key is kept now: with `admitAfter` 2, only if it was verified before. */
  private admit(lookup: number): boolean {
    const sightings = this.sightings;
    if (sightings === undefined) return true;
    const slot = lookup & (sightings.length - 1);
    if (sightings[slot] === lookup + 1) {
      sightings[slot] = 0;
      return true;
    }
    sightings[slot] = lookup + 1;
    this.deferred++;
    return false;
  }

  private delete(entry: CachedVerification): void {
    this.entries.delete(keyOf(entry.token));
    this.bytes -= entry.bytes;
  }

  /** Oldest first (insertion order) until within both bounds. */
  private evict(now: number): void {
    while (this.entries.size > this.options.maxEntries || this.bytes > this.options.maxBytes) {
      let next = this.cursor?.next();
      if (next === undefined || next.done === true) {
        // The old iterator ran out (or none yet): everything it passed is gone, so starting over is cheap.
        this.cursor = this.entries.values();
        next = this.cursor.next();
        if (next.done === true) return;
      }
      const entry = next.value;
      this.delete(entry);
      if (entry.validUntil > now) this.evictions++;
    }
  }
}
