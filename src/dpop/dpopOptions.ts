/**
 * The settings of DPoP proof checking, validated and frozen once per app
 * (the replay store and the nonce issuer are state the app keeps, not a
 * route or a request).
 */
import type { CryptoKey } from "jose";
import { specOf } from "../jwt/algorithms.js";
import { LruMap } from "../keys/lruMap.js";
import { MemoryReplayStore, type OidcReplayStore } from "../stores/replayStore.js";
import { createNonceIssuer, type DpopNonceIssuer } from "./nonceIssuer.js";
import { parseOrigin } from "./normalizeHtu.js";

/** Every asymmetric JWS algorithm a proof may use unless the app narrows the list (never `none`, never an HMAC). */
export const DEFAULT_DPOP_ALGORITHMS: readonly string[] = Object.freeze(["ES256", "ES384", "ES512", "EdDSA", "Ed25519", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"]);

export interface DpopOptions {
  /** Proof algorithms accepted, each an asymmetric JWS algorithm. Default `DEFAULT_DPOP_ALGORITHMS`. */
  algorithms?: readonly string[];
  /** How old a proof's `iat` may be, in seconds. Default 60. */
  maxAgeSeconds?: number;
  /** Clock difference allowed between client and server, in seconds, on both sides of the window. Default 5. */
  clockToleranceSeconds?: number;
  /**
   * Where the `jti` of accepted proofs are remembered for the window. Default
   * a `MemoryReplayStore` of 50000 entries (right for one node; a cluster
   * needs a shared store, e.g. `redisDpopReplayStore(client)`).
   */
  replayStore?: OidcReplayStore;
  /** `true`: require a server nonce, from a `createNonceIssuer()` of this app; an issuer: require its nonces. Default none. */
  nonces?: boolean | DpopNonceIssuer;
  /**
   * The origin clients address (`"https://api.example.com"`), or the list of
   * them when the app answers under several names. Needed behind a proxy
   * that rewrites the scheme or `Host`; without it, the request's own scheme
   * and `Host` are used (see `dpopRequestUrl`).
   */
  publicOrigin?: string | readonly string[];
  /** The clock, in epoch milliseconds. Default `Date.now`. */
  now?: () => number;
}

export interface DpopSettings {
  readonly algorithms: readonly string[];
  readonly maxAgeSeconds: number;
  readonly clockToleranceSeconds: number;
  readonly replayStore: OidcReplayStore;
  /** When set, every proof must carry one of its nonces. */
  readonly nonces: DpopNonceIssuer | undefined;
  /** The normalised public origins, when declared. */
  readonly publicOrigins: readonly string[] | undefined;
  readonly now: () => number;
  /** Proof keys already imported, by alg and thumbprint (bounded; this app's own). */
  readonly keys: LruMap<string, CryptoKey>;
}

const DEFAULT_MAX_AGE_SECONDS = 60;
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
const DEFAULT_REPLAY_ENTRIES = 50_000;
/** Proof keys kept imported: the clients active at once, roughly. */
const PROOF_KEY_CACHE_ENTRIES = 1000;

/** Validated, defaulted, frozen settings; a `TypeError` naming the option otherwise. */
export function resolveDpopOptions(options: DpopOptions = {}): DpopSettings {
  const given: unknown = options.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
  if (!Array.isArray(given) || given.length === 0) throw new TypeError("dpop: algorithms must be a non-empty array of asymmetric JWS algorithms");
  const algorithms: string[] = [];
  for (const alg of given as unknown[]) {
    if (typeof alg !== "string" || specOf(alg) === undefined) {
      throw new TypeError(`dpop: algorithms: ${JSON.stringify(alg)} is not an asymmetric JWS algorithm this package verifies (${DEFAULT_DPOP_ALGORITHMS.join(", ")})`);
    }
    algorithms.push(alg);
  }
  const maxAgeSeconds = options.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  if (!Number.isInteger(maxAgeSeconds) || maxAgeSeconds <= 0 || maxAgeSeconds > 3600) throw new TypeError(`dpop: maxAgeSeconds must be an integer from 1 to 3600, got ${String(maxAgeSeconds)}`);
  const clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!Number.isInteger(clockToleranceSeconds) || clockToleranceSeconds < 0 || clockToleranceSeconds > 300) {
    throw new TypeError(`dpop: clockToleranceSeconds must be an integer from 0 to 300, got ${String(clockToleranceSeconds)}`);
  }
  const replayStore = options.replayStore ?? new MemoryReplayStore({ maxEntries: DEFAULT_REPLAY_ENTRIES });
  if (replayStore === null || typeof replayStore !== "object" || typeof replayStore.claim !== "function") throw new TypeError("dpop: replayStore must have a claim(key, ttlMs) method");
  const nonces = resolveNonces(options.nonces);
  const publicOrigins = resolveOrigins(options.publicOrigin);
  const now = options.now ?? Date.now;
  if (typeof now !== "function") throw new TypeError("dpop: now must be a function returning epoch milliseconds");
  return Object.freeze({ algorithms: Object.freeze(algorithms), maxAgeSeconds, clockToleranceSeconds, replayStore, nonces, publicOrigins, now, keys: new LruMap<string, CryptoKey>(PROOF_KEY_CACHE_ENTRIES) });
}

function resolveNonces(nonces: DpopOptions["nonces"]): DpopNonceIssuer | undefined {
  if (nonces === undefined || nonces === false) return undefined;
  if (nonces === true) return createNonceIssuer();
  if (nonces !== null && typeof nonces === "object" && typeof nonces.current === "function" && typeof nonces.check === "function") return nonces;
  throw new TypeError("dpop: nonces must be a boolean or an object with current() and check(nonce)");
}

function resolveOrigins(publicOrigin: DpopOptions["publicOrigin"]): readonly string[] | undefined {
  if (publicOrigin === undefined) return undefined;
  const list: readonly unknown[] = typeof publicOrigin === "string" ? [publicOrigin] : Array.isArray(publicOrigin) ? publicOrigin : [publicOrigin];
  if (list.length === 0) throw new TypeError("dpop: publicOrigin must be an origin or a non-empty array of origins");
  return Object.freeze(list.map((origin) => parseOrigin(origin as string)));
}
