/**
 * The time-sliced HMAC nonce issuer: which nonces it accepts and when, and
 * that nodes sharing a secret agree while others do not.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { createNonceIssuer } from "../../src/dpop/nonceIssuer.js";

const SLICE_MS = 60_000;

describe("createNonceIssuer", () => {
  test("one nonce per slice: current in its slice, previous in the next, invalid after", () => {
    let now = 100 * SLICE_MS;
    const issuer = createNonceIssuer({ now: () => now });
    const first = issuer.current() as string;
    assert.match(first, /^[A-Za-z0-9_-]{43}$/);
    now += SLICE_MS - 1;
    assert.equal(issuer.current(), first, "stable within its slice");
    assert.equal(issuer.check(first), "current");
    now += 1;
    assert.notEqual(issuer.current(), first);
    assert.equal(issuer.check(first), "previous");
    assert.equal(issuer.check(issuer.current() as string), "current");
    now += SLICE_MS;
    assert.equal(issuer.check(first), "invalid");
  });

  test("a nonce from the future slice is not accepted", () => {
    let now = 100 * SLICE_MS;
    const issuer = createNonceIssuer({ now: () => now, secret: new Uint8Array(32).fill(3) });
    now += SLICE_MS;
    const next = issuer.current() as string;
    now -= SLICE_MS;
    assert.equal(issuer.check(next), "invalid");
  });

  test("nodes sharing a secret accept each other's nonces; another secret does not", () => {
    const secret = randomBytes(32);
    const now = () => 7 * SLICE_MS;
    const a = createNonceIssuer({ secret, now });
    const b = createNonceIssuer({ secret, now });
    const stranger = createNonceIssuer({ now });
    assert.equal(b.check(a.current() as string), "current");
    assert.equal(stranger.check(a.current() as string), "invalid");
  });

  test("lookalikes, truncations and non-strings are invalid", () => {
    const issuer = createNonceIssuer();
    const nonce = issuer.current() as string;
    const lookalike = [...nonce].map((c, i) => (i === 0 ? String.fromCharCode(c.charCodeAt(0) + 0x100) : c)).join("");
    for (const bad of [lookalike, nonce.slice(1), `${nonce}x`, "", nonce.toUpperCase() === nonce ? nonce.toLowerCase() : nonce.toUpperCase(), "x".repeat(1000)]) {
      assert.equal(issuer.check(bad), "invalid", bad);
    }
    assert.equal(issuer.check(42 as unknown as string), "invalid");
  });

  test("options are validated", () => {
    assert.throws(() => createNonceIssuer({ secret: new Uint8Array(16) }), /secret is 16 bytes long; it must be at least 32 bytes/);
    assert.throws(() => createNonceIssuer({ secret: "x".repeat(31) }), /secret is 31 bytes long/);
    assert.throws(() => createNonceIssuer({ secret: 42 as unknown as string }), /secret must be a string or a Uint8Array/);
    assert.throws(() => createNonceIssuer({ lifetime: 0 }), /lifetime/);
    assert.throws(() => createNonceIssuer({ lifetime: 1 }), /lifetime/);
    assert.throws(() => createNonceIssuer({ lifetime: 2.5 }), /lifetime/);
    assert.throws(() => createNonceIssuer({ lifetime: 86_401 }), /lifetime/);
    assert.throws(() => createNonceIssuer({ now: 5 as unknown as () => number }), /now/);
    assert.doesNotThrow(() => createNonceIssuer({ secret: "é".repeat(16) }), "a string counts its UTF-8 bytes");
  });

  test("a string secret and the same bytes as a Uint8Array make the same nonces", () => {
    const text = "a shared secret of the cluster, long enough";
    const now = () => 9 * SLICE_MS;
    const a = createNonceIssuer({ secret: text, now });
    const b = createNonceIssuer({ secret: new TextEncoder().encode(text), now });
    assert.equal(b.check(a.current() as string), "current");
  });

  test("lifetime: a nonce is handed out for half of it and accepted until its end; other lifetimes share no nonce", () => {
    const secret = randomBytes(32);
    let now = 1_000 * 10_000;
    const issuer = createNonceIssuer({ secret, lifetime: 10, now: () => now });
    const nonce = issuer.current() as string;
    now += 4_999;
    assert.equal(issuer.current(), nonce);
    now += 1;
    assert.equal(issuer.check(nonce), "previous");
    now += 4_999;
    assert.equal(issuer.check(nonce), "previous");
    now += 1;
    assert.equal(issuer.check(nonce), "invalid", "gone once the lifetime is over");
    const other = createNonceIssuer({ secret, lifetime: 20, now: () => now });
    assert.equal(other.check(issuer.current() as string), "invalid");
  });

  test("the clock running ahead on one node: its nonce is refused by a node still in the earlier window", () => {
    const secret = randomBytes(32);
    const ahead = createNonceIssuer({ secret, now: () => 50 * SLICE_MS });
    const behind = createNonceIssuer({ secret, now: () => 50 * SLICE_MS - 1 });
    assert.equal(behind.check(ahead.current() as string), "invalid");
    assert.equal(ahead.check(behind.current() as string), "previous");
  });

  test("a broken clock fails loudly instead of agreeing on a nonce", () => {
    const issuer = createNonceIssuer({ now: () => Number.NaN });
    assert.throws(() => issuer.current(), /clock/);
  });

  test("previous: kept when made from the same secret and lifetime, replaced otherwise", () => {
    const secret = randomBytes(32);
    const first = createNonceIssuer({ secret });
    assert.equal(createNonceIssuer({ secret: Buffer.from(secret), previous: first }), first);
    assert.notEqual(createNonceIssuer({ secret: randomBytes(32), previous: first }), first);
    assert.notEqual(createNonceIssuer({ secret, lifetime: 60, previous: first }), first);
    assert.notEqual(createNonceIssuer({ previous: first }), first, "a random secret is not the given one");
    const random = createNonceIssuer();
    assert.equal(createNonceIssuer({ previous: random }), random, "true stays true: the random secret is kept");
    assert.notEqual(createNonceIssuer({ secret, previous: random }), random);
  });
});
