/**
 * The introspection cache's order: least recently used first, a hit or a set
 * moving its key to the end, so that eviction takes the key unused longest,
 * also when the same key is hit many times in a row (the hit then moves
 * nothing) and after the most recent key was deleted.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IntrospectionCache, tokenHash, type CacheEntry } from "../../src/introspection/introspectionCache.js";

const NOW = 1_000;

function entry(sub: string): CacheEntry {
  return { outcome: { active: true, claims: { active: true, sub, exp: 4_000_000_000 } }, freshUntil: Number.POSITIVE_INFINITY, staleUntil: Number.POSITIVE_INFINITY };
}

/** The keys still cached, among `keys`. */
function kept(cache: IntrospectionCache, keys: string[]): string[] {
  return keys.filter((key) => cache.stale(key, NOW) !== undefined);
}

describe("IntrospectionCache order", () => {
  it("evicts the least recently used key, whatever run of hits came before", () => {
    const cache = new IntrospectionCache(3);
    cache.set("a", entry("a"));
    cache.set("b", entry("b"));
    cache.set("c", entry("c"));
    for (let i = 0; i < 10; i++) assert.ok(cache.hit("c", NOW));
    assert.ok(cache.hit("a", NOW)); // order now b, c, a
    cache.set("d", entry("d"));
    assert.deepEqual(kept(cache, ["a", "b", "c", "d"]), ["a", "c", "d"]);
    assert.equal(cache.stats().evictions, 1);
    assert.equal(cache.stats().hits, 11);
  });

  it("moves a key hit after the most recent one was deleted", () => {
    const cache = new IntrospectionCache(2);
    cache.set("a", entry("a"));
    cache.set("b", entry("b"));
    cache.delete("b");
    cache.set("c", entry("c")); // order a, c
    assert.ok(cache.hit("a", NOW)); // order c, a
    cache.set("d", entry("d"));
    assert.deepEqual(kept(cache, ["a", "b", "c", "d"]), ["a", "d"]);
  });

  it("a key set again keeps its new entry, and its place at the end", () => {
    const cache = new IntrospectionCache(2);
    cache.set("a", entry("a"));
    cache.set("b", entry("b"));
    cache.set("b", entry("b2"));
    const again = cache.hit("b", NOW);
    assert.ok(again?.outcome.active === true && again.outcome.claims.sub === "b2");
    cache.set("a", entry("a2")); // order b, a
    const hit = cache.hit("a", NOW);
    assert.ok(hit?.outcome.active === true && hit.outcome.claims.sub === "a2");
    cache.set("c", entry("c"));
    assert.deepEqual(kept(cache, ["a", "b", "c"]), ["a", "c"]);
  });

  it("after clear(), the first hit on a key set again still counts and orders", () => {
    const cache = new IntrospectionCache(2);
    cache.set("a", entry("a"));
    cache.clear();
    cache.set("b", entry("b"));
    cache.set("a", entry("a")); // order b, a
    assert.ok(cache.hit("b", NOW)); // order a, b
    cache.set("c", entry("c"));
    assert.deepEqual(kept(cache, ["a", "b", "c"]), ["b", "c"]);
  });

  it("keys tokens by the base64url SHA-256 of their UTF-8 bytes", () => {
    assert.equal(tokenHash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    assert.equal(tokenHash("\u00e9"), "SplVfkAzw1Od4utlRyAXytX5VX96BiWgnxw_biumnEw"); // the bytes C3 A9
  });
});
