/**
 * Server-provided DPoP nonces (RFC 9449 sections 8 and 9). A nonce bounds
 * how long a proof stays usable by the server's clock, not the client's: a
 * proof made in advance (by a script that had the key for a moment, section
 * 11.2) dies with the nonce it carries.
 *
 * The default issuer keeps no list: a nonce is the HMAC-SHA-256 of the
 * current time slice under a random secret, so it is unpredictable without
 * the secret, costs nothing to check, and is the same on every node that
 * shares the secret. The current and the previous slice are accepted, so a
 * nonce lives between one and two slices.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** What the verifier asks of a nonce source. Either method may answer asynchronously (a shared store). */
export interface DpopNonceIssuer {
  /** The nonce clients must use now (sent in `DPoP-Nonce`). */
  current(): string | Promise<string>;
  /**
   * How `nonce` stands: `"current"`; `"previous"` (still accepted, but the
   * client should move to `current()`); `"invalid"` (unknown or expired).
   */
  check(nonce: string): DpopNonceStatus | Promise<DpopNonceStatus>;
}

export type DpopNonceStatus = "current" | "previous" | "invalid";

export interface NonceIssuerOptions {
  /** The HMAC key, at least 32 bytes; give every node of a cluster the same one. Default: 32 random bytes for this process. */
  secret?: Uint8Array;
  /** Seconds a slice lasts; a nonce is accepted for one to two slices. Default 60. */
  sliceSeconds?: number;
  /** The clock, in epoch milliseconds. Default `Date.now`. */
  now?: () => number;
}

/** A `DpopNonceIssuer` of time-sliced HMAC nonces (43 base64url characters). */
export function createNonceIssuer(options: NonceIssuerOptions = {}): DpopNonceIssuer {
  const secret = options.secret ?? randomBytes(32);
  if (!(secret instanceof Uint8Array) || secret.length < 32) throw new TypeError("createNonceIssuer: secret must be a Uint8Array of at least 32 bytes");
  const sliceSeconds = options.sliceSeconds ?? 60;
  if (!Number.isInteger(sliceSeconds) || sliceSeconds <= 0) throw new TypeError(`createNonceIssuer: sliceSeconds must be a positive integer, got ${String(sliceSeconds)}`);
  const now = options.now ?? Date.now;
  if (typeof now !== "function") throw new TypeError("createNonceIssuer: now must be a function");
  const sliceMs = sliceSeconds * 1000;

  // The last two slices computed: a check costs one comparison, not an HMAC.
  let cachedSlice = Number.NaN;
  let cachedNonce = Buffer.alloc(0);
  const nonceOf = (slice: number): Buffer => {
    if (slice === cachedSlice) return cachedNonce;
    const nonce = Buffer.from(createHmac("sha256", secret).update(`ioserver-oidc dpop nonce ${slice}`).digest("base64url"), "utf8");
    if (slice > cachedSlice || Number.isNaN(cachedSlice)) {
      cachedSlice = slice;
      cachedNonce = nonce;
    }
    return nonce;
  };
  const sliceNow = (): number => Math.floor(now() / sliceMs);
  const same = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

  return {
    current: () => nonceOf(sliceNow()).toString("utf8"),
    check(nonce: string): DpopNonceStatus {
      if (typeof nonce !== "string" || nonce.length > 128) return "invalid";
      const given = Buffer.from(nonce, "utf8");
      const slice = sliceNow();
      if (same(given, nonceOf(slice))) return "current";
      if (same(given, nonceOf(slice - 1))) return "previous";
      return "invalid";
    },
  };
}
