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
    assert.throws(() => createNonceIssuer({ secret: new Uint8Array(16) }), /secret/);
    assert.throws(() => createNonceIssuer({ sliceSeconds: 0 }), /sliceSeconds/);
    assert.throws(() => createNonceIssuer({ sliceSeconds: 2.5 }), /sliceSeconds/);
    assert.throws(() => createNonceIssuer({ now: 5 as unknown as () => number }), /now/);
  });
});
