/**
 * Server-provided DPoP nonces (RFC 9449 sections 8 and 9). A nonce bounds
 * how long a proof stays usable by the server's clock, not the client's: a
 * proof made in advance (by a script that had the key for a moment, section
 * 11.2) dies with the nonce it carries.
 *
 * The default issuer keeps no list: time is cut into windows of half the
 * nonce lifetime, and the nonce of a window is the HMAC-SHA-256, under the
 * app's secret, of a message naming the window's length and number. It is
 * unpredictable without the secret, costs one comparison to check (the two
 * windows that count are computed once each), and is the same on every node
 * that shares the secret (and the lifetime). The current and the previous
 * window are accepted, so a nonce lives between half the lifetime and the
 * whole of it; a nonce of a later window than the server's is never
 * accepted (a node whose clock runs ahead gets the slower node's nonce back).
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
  /**
   * The HMAC key: at least 32 bytes (a string counts its UTF-8 bytes). Give
   * every node of a cluster the same one. Default: 32 random bytes for this
   * process (nonces then hold on this process only).
   */
  secret?: string | Uint8Array;
  /**
   * The longest a nonce is accepted, in seconds (an integer from 2 to 86400):
   * it is handed out for the first half and still accepted in the second.
   * Default 120.
   */
  lifetime?: number;
  /** The clock, in epoch milliseconds. Default `Date.now`. */
  now?: () => number;
  /**
   * An issuer this function made before (e.g. for the app's previous
   * configuration): returned as it is when it was made with the same secret
   * (or both with a random one) and lifetime, so a reconfiguration keeps the
   * nonces already handed out valid.
   */
  previous?: DpopNonceIssuer | undefined;
}

/** The shortest secret accepted, in bytes (the HMAC-SHA-256 output size). */
export const MIN_NONCE_SECRET_BYTES = 32;
const DEFAULT_LIFETIME_SECONDS = 120;
const MAX_LIFETIME_SECONDS = 86_400;
/** Longer strings are not nonces this issuer made (43 characters); no HMAC or copy is spent on them. */
const MAX_NONCE_LENGTH = 128;

/** The secret as bytes (a copy), or a `TypeError` saying what is wrong with it. */
export function nonceSecretBytes(secret: unknown, who = "createNonceIssuer"): Buffer {
  let bytes: Buffer;
  if (typeof secret === "string") bytes = Buffer.from(secret, "utf8");
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret);
  else throw new TypeError(`${who}: secret must be a string or a Uint8Array of at least ${MIN_NONCE_SECRET_BYTES} bytes`);
  if (bytes.length < MIN_NONCE_SECRET_BYTES) {
    throw new TypeError(`${who}: secret is ${bytes.length} bytes long; it must be at least ${MIN_NONCE_SECRET_BYTES} bytes (e.g. crypto.randomBytes(32), or 64 hex characters)`);
  }
  return bytes;
}

/** `lifetime` validated, or a `TypeError`. */
export function nonceLifetime(lifetime: unknown, who = "createNonceIssuer"): number {
  if (lifetime === undefined) return DEFAULT_LIFETIME_SECONDS;
  if (typeof lifetime !== "number" || !Number.isInteger(lifetime) || lifetime < 2 || lifetime > MAX_LIFETIME_SECONDS) {
    throw new TypeError(`${who}: lifetime must be an integer number of seconds from 2 to ${MAX_LIFETIME_SECONDS}, got ${JSON.stringify(lifetime) ?? typeof lifetime}`);
  }
  return lifetime;
}

/** What each issuer was made from (a random secret: `undefined`), for `previous`. */
const madeFrom = new WeakMap<DpopNonceIssuer, { secret: Buffer | undefined; lifetime: number; now: () => number }>();

/** A `DpopNonceIssuer` of time-windowed HMAC nonces (43 base64url characters). */
export function createNonceIssuer(options: NonceIssuerOptions = {}): DpopNonceIssuer {
  if (options === null || typeof options !== "object") throw new TypeError("createNonceIssuer: options must be an object");
  const ownSecret = options.secret === undefined ? undefined : nonceSecretBytes(options.secret);
  const lifetime = nonceLifetime(options.lifetime);
  const now = options.now ?? Date.now;
  if (typeof now !== "function") throw new TypeError("createNonceIssuer: now must be a function");
  const earlier = options.previous;
  const before = earlier === undefined ? undefined : madeFrom.get(earlier);
  if (earlier !== undefined && before !== undefined && before.lifetime === lifetime && before.now === now && (ownSecret === undefined ? before.secret === undefined : before.secret?.equals(ownSecret) === true)) {
    return earlier;
  }
  const secret = ownSecret ?? randomBytes(MIN_NONCE_SECRET_BYTES);
  const windowMs = lifetime * 500;

  // The two windows that count, computed once each: a check costs
  // comparisons, not an HMAC, whatever the client sends.
  const cache = new Map<number, Buffer>();
  const nonceOf = (slot: number): Buffer => {
    let nonce = cache.get(slot);
    if (nonce === undefined) {
      // The window's length is in the message: issuers with other lifetimes never share a nonce.
      nonce = Buffer.from(createHmac("sha256", secret).update(`ioserver-oidc DPoP nonce/${windowMs}/${slot}`, "utf8").digest("base64url"), "utf8");
      // At most three windows are kept (this one and its neighbours): the cache never grows.
      for (const known of cache.keys()) if (known !== slot - 1 && known !== slot + 1) cache.delete(known);
      cache.set(slot, nonce);
    }
    return nonce;
  };
  const windowNow = (): number => {
    const ms = now();
    if (typeof ms !== "number" || !Number.isFinite(ms)) throw new Error(`createNonceIssuer: the clock returned ${String(ms)}`);
    return Math.floor(ms / windowMs);
  };
  const same = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

  const issuer: DpopNonceIssuer = {
    current: () => nonceOf(windowNow()).toString("utf8"),
    check(nonce: string): DpopNonceStatus {
      if (typeof nonce !== "string" || nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH) return "invalid";
      const given = Buffer.from(nonce, "utf8");
      const slot = windowNow();
      // Both compared every time: how long a check takes says nothing of which matched.
      const current = same(given, nonceOf(slot));
      const previous = same(given, nonceOf(slot - 1));
      return current ? "current" : previous ? "previous" : "invalid";
    },
  };
  madeFrom.set(issuer, { secret: ownSecret, lifetime, now });
  return issuer;
}
