/**
 * The verified-token cache's own bookkeeping (src/verify/tokenCache.ts), driven
 * directly: which entries a bounded cache keeps as tokens turn over, lookups
 * that require the whole token string, and the byte count. The end-to-end
 * behaviour (hits through verifyOidcToken and the middlewares, expiry, key
 * rotation) is in test/perf/tokenCache.test.ts.
 *
 * The key set is a stand-in that reports every key as still published: what
 * happens when a key is withdrawn is tested end to end with a real JWKS.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RemoteKeySet, StoredKey } from "../../src/keys/remoteKeySet.js";
import { keyOf, TokenCache } from "../../src/verify/tokenCache.js";
import type { OidcIssuerConfig } from "../../src/types.js";

const NOW = 1_800_000_000_000;
const EXP = NOW / 1000 + 3600;
const issuer = { issuer: "https://idp.cache-unit.test", maxTokenAge: undefined } as unknown as OidcIssuerConfig;
const keySet = { stillPublished: () => true } as unknown as RemoteKeySet;
const key = { jwk: { kty: "EC" }, key: undefined } as unknown as StoredKey;

/** A token-like string, distinct per n, with a signature-like tail (the part the cache hashes). */
function token(n: number, tail = `sig${n.toString(36).padStart(8, "0")}`): string {
  return `eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLSR7bn0ifQ.${"x".repeat(40)}${n.toString(36)}-${tail}`;
}

/** Keeps every verified token (admitAfter 1), unless told otherwise: admission has its own tests below. */
function cacheOf(maxEntries: number, maxBytes = 1 << 30, admitAfter: 1 | 2 = 1): TokenCache {
  return new TokenCache({ maxEntries, maxBytes, maxTtl: 300_000, admitAfter });
}

function put(cache: TokenCache, value: string, exp = EXP, now = NOW): void {
  cache.set(value, Object.freeze({ sub: value, exp }), issuer, keySet, key, 10, now);
}

const has = (cache: TokenCache, value: string, now = NOW) => cache.get(value, now)?.token === value;

describe("token cache bookkeeping", () => {
  it("a full cache turning over keeps exactly the newest maxEntries tokens, counts every eviction and keeps the byte count exact", () => {
    const cache = cacheOf(100);
    const bytesOf = (value: string) => value.length + 10 + 160;
    for (let n = 0; n < 5_000; n++) {
      put(cache, token(n));
      if (n % 997 === 0 || n === 4_999) {
        const stats = cache.stats();
        const live = Math.min(n + 1, 100);
        assert.equal(stats.entries, live);
        let bytes = 0;
        for (let m = n - live + 1; m <= n; m++) bytes += bytesOf(token(m));
        assert.equal(stats.bytes, bytes);
        assert.equal(stats.evictions, n + 1 - live);
      }
    }
    for (let n = 4_900; n < 5_000; n++) assert.ok(has(cache, token(n)), `newest ${n} kept`);
    for (const n of [0, 1, 2_500, 4_899]) assert.ok(!has(cache, token(n)), `older ${n} evicted`);
    cache.clear();
    assert.deepEqual({ entries: cache.stats().entries, bytes: cache.stats().bytes }, { entries: 0, bytes: 0 });
    put(cache, token(1));
    assert.ok(has(cache, token(1)), "usable after clear()");
  });

  it("eviction stays oldest-first around entries removed out of order (expired on lookup) and tokens stored again (they become the newest)", () => {
    const cache = cacheOf(3);
    put(cache, token(1));
    put(cache, token(2), NOW / 1000 + 10); // expires 10 s from NOW
    put(cache, token(3));
    assert.ok(!has(cache, token(2), NOW + 20_000), "expired: removed on lookup");
    assert.equal(cache.stats().entries, 2);
    put(cache, token(4)); // 1, 3, 4: within bounds
    assert.equal(cache.stats().evictions, 0);
    put(cache, token(1)); // stored again: now the newest (3, 4, 1)
    put(cache, token(5)); // evicts 3, the oldest
    assert.ok(!has(cache, token(3)));
    for (const n of [4, 1, 5]) assert.ok(has(cache, token(n)), `${n} kept`);
    put(cache, token(6)); // evicts 4
    assert.ok(!has(cache, token(4)));
    for (const n of [1, 5, 6]) assert.ok(has(cache, token(n)), `${n} kept`);
    assert.equal(cache.stats().evictions, 2);
  });

  it("two tokens with the same tail share a slot: a lookup needs the whole string, and storing one displaces the other", () => {
    const cache = cacheOf(10);
    const tail = `same-tail-${"0123456789".repeat(6)}`; // longer than the part of a token the slot is computed from
    const a = token(1, tail);
    const b = token(2, tail);
    assert.notEqual(a, b);
    put(cache, a);
    assert.ok(!has(cache, b), "b is not a's entry");
    assert.ok(has(cache, a));
    put(cache, b);
    assert.ok(has(cache, b));
    assert.ok(!has(cache, a), "displaced");
    assert.equal(cache.stats().entries, 1);
    assert.equal(cache.stats().bytes, b.length + 10 + 160);
  });

  it("tokens differing in any one of their last eight characters (the ones the slot is computed from) are kept apart", () => {
    const cache = cacheOf(1_000);
    const base = token(7);
    const variants = [base];
    for (let i = 1; i <= 8; i++) {
      for (const c of "AQg-_") {
        const at = base.length - i;
        if (base[at] !== c) variants.push(base.slice(0, at) + c + base.slice(at + 1));
      }
    }
    for (const variant of variants) put(cache, variant);
    assert.equal(cache.stats().entries, variants.length);
    for (const variant of variants) assert.ok(has(cache, variant));
  });

  it("maxBytes evicts oldest first; a token too big on its own is not stored and evicts nothing", () => {
    const one = token(1).length + 10 + 160;
    const cache = cacheOf(1_000, one * 3);
    for (let n = 1; n <= 5; n++) put(cache, token(n));
    assert.equal(cache.stats().entries, 3);
    assert.ok(cache.stats().bytes <= one * 3);
    for (const n of [3, 4, 5]) assert.ok(has(cache, token(n)));
    put(cache, token(9, "y".repeat(one * 3)));
    assert.equal(cache.stats().entries, 3);
    for (const n of [3, 4, 5]) assert.ok(has(cache, token(n)));
  });
});

describe("token cache admission (admitAfter 2)", () => {
  it("a token is kept at its second store, not its first (counted as deferred); clear() forgets first sightings too", () => {
    const cache = cacheOf(100, 1 << 30, 2);
    put(cache, token(1));
    assert.ok(!has(cache, token(1)));
    assert.deepEqual({ entries: cache.stats().entries, deferred: cache.stats().deferred }, { entries: 0, deferred: 1 });
    put(cache, token(1));
    assert.ok(has(cache, token(1)), "kept the second time");
    put(cache, token(2));
    cache.clear();
    put(cache, token(2));
    assert.ok(!has(cache, token(2)), "its first sighting was forgotten by clear()");
    put(cache, token(2));
    assert.ok(has(cache, token(2)));
  });

  /** `count` tokens other than `a` whose sightings fall in a's bucket of four slots (1,024 slots: 256 buckets). */
  function sameBucket(a: string, count: number): string[] {
    const found: string[] = [];
    for (let other = 2; found.length < count; other++) {
      const candidate = token(other);
      if ((keyOf(candidate) & 1020) === (keyOf(a) & 1020) && keyOf(candidate) !== keyOf(a)) found.push(candidate);
    }
    return found;
  }

  it("tokens sharing a bucket of the first-sighting table and presented in turn are all kept at their second store", () => {
    const cache = cacheOf(100, 1 << 30, 2); // 1,024 slots
    const a = token(1);
    const others = sameBucket(a, 3);
    const all = [a, ...others];
    for (const each of all) put(cache, each);
    for (const each of all) put(cache, each);
    for (const each of all) assert.ok(has(cache, each), "kept at its second store");
    assert.equal(cache.stats().deferred, 4);
  });

  it("when more tokens share a full bucket, an overwritten sighting only delays admission, and tokens presented in turn are all kept", () => {
    const cache = cacheOf(100, 1 << 30, 2);
    const a = token(1);
    const all = [a, ...sameBucket(a, 5)]; // six tokens, four slots
    for (let pass = 0; pass < 40 && !all.every((each) => has(cache, each)); pass++) for (const each of all) if (!has(cache, each)) put(cache, each);
    for (const each of all) assert.ok(has(cache, each), "every token was kept after some passes");
    assert.ok(cache.stats().deferred > all.length, "some sightings were overwritten and counted again");
  });

  it("100,000 tokens stored once each: none is kept", () => {
    const cache = cacheOf(100, 1 << 30, 2);
    for (let n = 0; n < 100_000; n++) put(cache, token(n));
    assert.deepEqual({ entries: cache.stats().entries, bytes: cache.stats().bytes }, { entries: 0, bytes: 0 });
    assert.ok(cache.stats().deferred > 99_000);
  });
});
