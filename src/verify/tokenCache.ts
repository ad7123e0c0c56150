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
 * allocation per token), in buckets of four slots: a token's sighting stays
 * while its bucket has room, so tokens that happen to share a bucket and are
 * presented in turn are all admitted (with one slot each, two such tokens
 * would overwrite each other's sighting forever, and neither would ever be
 * cached). When a bucket is full, a sighting is overwritten, which only
 * delays that token's admission, and never affects what a hit proves.
 */
import type { JWTPayload } from "jose";
import type { OidcIssuerConfig, OidcUserContext } from "../types.js";
import type { TokenCacheOptions } from "../config/tokenCacheOptions.js";
import type { RemoteKeySet, StoredKey } from "../keys/remoteKeySet.js";

/** Slots in the table of first verifications: twice `maxEntries`, a power of two, between 1 Ki and 1 Mi (4 MiB). */
function sightingSlots(maxEntries: number): number {
  let slots = 1024;
  while (slots < 2 * maxEntries && slots < 1 << 20) slots *= 2;
  return slots;
}

/** Slots per bucket of the first-sighting table (a power of two). */
const BUCKET = 4;

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

/** One cached verification: it is also the `VerifiedToken` a hit answers with. */
export class CachedVerification {
  /**
   * The user context the pipeline built from this verification (frozen),
   * kept with it so a cached token is mapped once; undefined until then.
   */
  context: OidcUserContext | undefined = undefined;
  /** The key set's generation in which `key` was last found published (see `RemoteKeySet.stillPublished`); -1 until the first hit. */
  seen = -1;

  constructor(
    /** The whole token string: a hit requires equality with it. */
    readonly token: string,
    readonly payload: JWTPayload,
    readonly issuer: OidcIssuerConfig,
    readonly keySet: RemoteKeySet,
    readonly key: StoredKey,
    /** Epoch ms from which the entry is not used. */
    readonly validUntil: number,
    readonly bytes: number,
  ) {}
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
  /** Lookup keys (plus one, 0 is "empty") of tokens verified once and not kept yet, in buckets of BUCKET slots; undefined when `admitAfter` is 1. */
  private readonly sightings: Int32Array | undefined;
  /** The token of the last miss and its lookup key: a miss is usually followed by `set` for the same token, once it is verified. */
  private missedToken: string | undefined;
  private missedLookup = 0;
  /** State of the generator that picks which slot of a full bucket a sighting takes. */
  private victim = 0x2545f491;

  constructor(private readonly options: TokenCacheOptions) {
    if (options.admitAfter > 1 && options.maxEntries > 0) this.sightings = new Int32Array(sightingSlots(options.maxEntries));
  }

  /** The cached verification of exactly this token string, if still valid. */
  get(token: string, now: number): CachedVerification | undefined {
    const lookup = keyOf(token);
    const entry = this.entries.get(lookup);
    if (entry === undefined || entry.token !== token) {
      this.misses++;
      this.missedToken = token;
      this.missedLookup = lookup;
      return undefined;
    }
    if (now >= entry.validUntil || !entry.keySet.stillPublished(entry, now)) {
      this.delete(entry);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return entry;
  }

  /**
   * Remember a verification. `payloadChars` is the length of the payload
   * segment (for the byte estimate). Returns the entry kept, or undefined
   * when it was not kept (first sighting, too large, already expired).
   */
  set(token: string, payload: JWTPayload, issuer: OidcIssuerConfig, keySet: RemoteKeySet, key: StoredKey, payloadChars: number, now: number): CachedVerification | undefined {
    const exp = payload["exp"];
    if (typeof exp !== "number") return undefined;
    let validUntil = Math.min(exp * 1000, now + this.options.maxTtl);
    const iat = payload["iat"];
    if (issuer.maxTokenAge !== undefined) {
      if (typeof iat !== "number") return undefined;
      validUntil = Math.min(validUntil, (iat + issuer.maxTokenAge) * 1000);
    }
    if (validUntil <= now) return undefined;
    const bytes = token.length + payloadChars + ENTRY_OVERHEAD;
    if (bytes > this.options.maxBytes || this.options.maxEntries === 0) return undefined;
    const lookup = token === this.missedToken ? this.missedLookup : keyOf(token);
    if (!this.admit(lookup)) return undefined;
    const previous = this.entries.get(lookup);
    if (previous !== undefined) this.delete(previous);
    const entry = new CachedVerification(token, payload, issuer, keySet, key, validUntil, bytes);
    this.entries.set(lookup, entry);
    this.bytes += bytes;
    this.evict(now);
    return entry;
  }

  stats(): TokenCacheStats {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses, evictions: this.evictions, deferred: this.deferred };
  }

  clear(): void {
    this.entries.clear();
    this.sightings?.fill(0);
    this.cursor = undefined;
    this.bytes = 0;
    this.missedToken = undefined;
  }

  /** Whether a verified token with this lookup key is kept now: with `admitAfter` 2, only if it was verified before. */
  private admit(lookup: number): boolean {
    const sightings = this.sightings;
    if (sightings === undefined) return true;
    const mark = lookup + 1;
    const bucket = lookup & (sightings.length - BUCKET);
    let free = -1;
    for (let slot = bucket; slot < bucket + BUCKET; slot++) {
      const held = sightings[slot];
      if (held === mark) {
        sightings[slot] = 0;
        return true;
      }
      if (held === 0 && free < 0) free = slot;
    }
    if (free < 0) {
      // A full bucket gives up a slot picked at random (xorshift): with a fixed order, more tokens than
      // slots presented in turn would each be overwritten before they came back, forever.
      let x = this.victim;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.victim = x;
      free = bucket + (x & (BUCKET - 1));
    }
    sightings[free] = mark;
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
