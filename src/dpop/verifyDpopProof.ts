/**
 * Checking a DPoP proof (RFC 9449 section 4.3) against the request it came
 * with, whatever the transport: an HTTP request (the `DPoP` header) or a
 * Socket.IO handshake (the proof in `auth`). What each check stops:
 *
 * - One compact JWS, bounded in size: a second proof (two `DPoP` headers,
 *   joined by a comma) or a JSON-serialised JWS cannot smuggle a part that
 *   is checked and another that is used; the size bounds the parsing work.
 * - `typ` is `dpop+jwt`: another JWT the client signed with the same key (an
 *   ID token request object, a client assertion) is not accepted as a proof.
 * - `alg` from an allow-list of asymmetric algorithms: `none` would prove
 *   nothing; an HMAC would make the "public" key a shared secret anyone who
 *   sees a proof can sign with.
 * - `jwk` carries no private member: a client that leaks its private key in
 *   the header has no key to prove possession of (and such a key is refused
 *   before anyone treats it as a public one).
 * - The signature verifies with `jwk`: the sender holds the private key.
 * - `htm` and `htu` equal the request's method and URL (query and fragment
 *   aside): a proof captured on one endpoint cannot be used on another.
 * - `iat` within a window (`maxAgeSeconds` back, `clockToleranceSeconds`
 *   either side): a captured proof is usable for a short time only.
 * - `jti` unseen within that window (the replay store, keyed by key
 *   thumbprint and `jti`): a captured proof is not usable even within it.
 *   The key is not the proof's bytes, so a copy re-encoded (base64url
 *   padding bits) or with a malleated ECDSA signature is the same proof.
 *   The `jti` is claimed last, after every other check, so only proofs that
 *   are fully valid for a real token take room in the store.
 * - `nonce`, when the app requires one: a proof made in advance, by a script
 *   that held the key for a moment, expires with the server's nonce rather
 *   than with the client's clock (sections 8, 9, 11.2).
 * - `ath` equals base64url(SHA-256(access token)): the proof is for this
 *   token, not for another one held by the same key (section 7).
 * - The key's RFC 7638 thumbprint equals the token's `cnf.jkt`: the token
 *   was issued to this key, so a stolen token without the key is useless.
 *
 * What it does not stop (section 11): a script running in the client that
 * uses the key in place (a non-extractable key still signs for it), nor a
 * proof used within its window by someone who intercepted it before the
 * client sent it (TLS is still needed). A proof is not a token: the access
 * token is verified on its own, before this, by the usual pipeline.
 *
 * The header, key and signature of the usual proof are checked synchronously
 * with node:crypto (fastProof.ts); anything that path is not sure of goes
 * to jose (joseProof below), the reference it is proven against and the
 * source of every refusal reason. The checks after the signature are the
 * same for both.
 */
import { hash } from "node:crypto";
import type { JWK, JWTPayload } from "jose";
import { loadJose } from "../jwt/jose.js";
import { normalizeTyp } from "../jwt/typ.js";
import { describeError, isObject, show } from "../util/text.js";
import type { DpopSettings } from "./dpopOptions.js";
import { DpopProofError } from "./DpopProofError.js";
import { fastProof, type CheckedProof } from "./fastProof.js";
import { normalizeHtu } from "./normalizeHtu.js";

/** What the request says the proof must match. */
export interface DpopExpectations {
  /** The request's method (`"GET"` for a Socket.IO handshake), compared exactly with `htm`. */
  method: string;
  /** The absolute URL the client addressed (query allowed; ignored), compared with `htu` after `normalizeHtu`. */
  url: string;
  /** The access token presented with the proof: `ath` must be its hash. */
  accessToken?: string;
  /** The token's `cnf.jkt`: the proof key's SHA-256 thumbprint must equal it. */
  expectedJkt?: string;
}

/** An accepted proof. */
export interface DpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key (what `cnf.jkt` names). */
  jkt: string;
  jti: string;
  iat: number;
  /** The proof's public key, as the client sent it. */
  publicJwk: Readonly<JWK>;
  /** A fresh nonce for the `DPoP-Nonce` response header, when the proof used one that is about to expire. */
  nonce: string | undefined;
}

/** Longest proof considered: an RSA-4096 key with every optional member stays well below. */
export const MAX_PROOF_LENGTH = 8192;
/** Longest `jti` accepted. */
export const MAX_JTI_LENGTH = 256;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** JWK members of private or symmetric keys (RFC 7518 section 6). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;
const PUBLIC_KEY_TYPES = new Set(["EC", "RSA", "OKP"]);

/** base64url(SHA-256(token)): the `ath` of a proof made for `accessToken`. */
export function accessTokenHash(accessToken: string): string {
  return hash("sha256", accessToken, "base64url");
}

/**
 * The last two strings normalizeHtu answered for, and its answers: a route
 * is requested at the same URL, and a client puts the same htu in every
 * proof for it, so this parses no URL for most proofs. normalizeHtu is a
 * function of its argument alone.
 */
let htuA: string | undefined;
let normalA: string | undefined;
let htuB: string | undefined;
let normalB: string | undefined;

function normalizedHtu(value: unknown): string | undefined {
  if (typeof value !== "string") return normalizeHtu(value);
  if (value === htuA) return normalA;
  if (value === htuB) return normalB;
  const normal = normalizeHtu(value);
  htuB = htuA;
  normalB = normalA;
  htuA = value;
  normalA = normal;
  return normal;
}

function invalid(reason: string, cause?: unknown): DpopProofError {
  return new DpopProofError("invalid_dpop_proof", reason, { cause });
}

/**
 * Check `proof` (the `DPoP` header value, or the proof of a handshake) for
 * the request described by `expected`. Resolves to the proof's key
 * thumbprint and claims; rejects with a `DpopProofError` naming the RFC 9449
 * error, or with another error when the replay store or nonce issuer cannot
 * answer (the transport then answers 503, not 401).
 */
export async function verifyDpopProof(proof: unknown, expected: DpopExpectations, settings: DpopSettings): Promise<DpopProof> {
  if (proof === undefined || proof === null || proof === "") throw invalid("no DPoP proof");
  if (Array.isArray(proof)) throw invalid(`${proof.length} DPoP proofs where one is allowed`);
  if (typeof proof !== "string") throw invalid(`the DPoP proof is a ${typeof proof}, not a string`);
  if (proof.length > MAX_PROOF_LENGTH) throw invalid(`the DPoP proof is ${proof.length} characters long (at most ${MAX_PROOF_LENGTH})`);
  if (!COMPACT_JWS.test(proof)) throw invalid(`the DPoP proof is not one compact JWS: ${show(proof, 40)}`);

  const nowMs = settings.now();
  // The synchronous node:crypto path decides the usual proof; whatever it is not sure of goes to jose, whose reasons are the ones reported.
  const { jwk, jkt, payload } = fastProof(proof, settings, nowMs) ?? (await joseProof(proof, settings, nowMs));

  const { htm, htu, iat, jti } = payload;
  if (htm !== expected.method) throw invalid(`the DPoP proof htm ${show(htm, 20)} is not the request method ${show(expected.method, 20)}`);
  const requestUrl = normalizedHtu(expected.url);
  if (requestUrl === undefined) throw invalid(`the request URL ${show(expected.url)} cannot be compared with an htu`);
  if (normalizedHtu(htu) !== requestUrl) throw invalid(`the DPoP proof htu ${show(htu)} is not the request URL ${show(requestUrl)}`);

  if (typeof iat !== "number" || !Number.isFinite(iat)) throw invalid("the DPoP proof has no numeric iat");
  const now = nowMs / 1000;
  const { maxAgeSeconds, clockToleranceSeconds } = settings;
  if (iat > now + clockToleranceSeconds) throw invalid(`the DPoP proof iat is ${Math.round(iat - now)} s in the future`);
  if (iat < now - maxAgeSeconds - clockToleranceSeconds) throw invalid(`the DPoP proof iat is ${Math.round(now - iat)} s old (at most ${maxAgeSeconds} s)`);
  if (typeof jti !== "string" || jti.length === 0) throw invalid("the DPoP proof has no jti");
  if (jti.length > MAX_JTI_LENGTH) throw invalid(`the DPoP proof jti is ${jti.length} characters long (at most ${MAX_JTI_LENGTH})`);

  let nextNonce: string | undefined;
  if (settings.nonces !== undefined) {
    const { nonce } = payload;
    if (typeof nonce !== "string") {
      throw new DpopProofError("use_dpop_nonce", "the DPoP proof has no nonce, and one is required", { nonce: await settings.nonces.current() });
    }
    const status = await settings.nonces.check(nonce);
    if (status === "invalid") throw new DpopProofError("use_dpop_nonce", `the DPoP proof nonce ${show(nonce, 20)} is unknown or expired`, { nonce: await settings.nonces.current() });
    if (status === "previous") nextNonce = await settings.nonces.current();
  }

  if (expected.accessToken !== undefined) {
    const { ath } = payload;
    if (typeof ath !== "string") throw invalid("the DPoP proof has no ath, and an access token came with it");
    if (ath !== accessTokenHash(expected.accessToken)) throw invalid(`the DPoP proof ath ${show(ath, 20)} is not the hash of the access token`);
  }

  if (expected.expectedJkt !== undefined && jkt !== expected.expectedJkt) {
    throw new DpopProofError("invalid_token", `the DPoP proof key ${show(jkt, 20)} is not the one the token is bound to (cnf.jkt ${show(expected.expectedJkt, 20)})`);
  }

  // Remembered as long as a proof with this iat could still be accepted, here or on another node sharing
  // the store whose clock runs up to clockTolerance behind this one's: the tolerance once more.
  const ttlMs = Math.max(1000, Math.ceil((iat + maxAgeSeconds + 2 * clockToleranceSeconds) * 1000 - nowMs));
  const replayKey = hash("sha256", `${jkt}.${jti}`, "base64url");
  let first: boolean;
  try {
    first = await settings.replayStore.claim(replayKey, ttlMs);
  } catch (error) {
    throw new Error(`the DPoP replay store did not answer: ${describeError(error)}`, { cause: error });
  }
  if (!first) throw invalid(`the DPoP proof jti ${show(jti, 40)} was already used`);

  return { jkt, jti, iat, publicJwk: Object.freeze({ ...(jwk as JWK) }), nonce: nextNonce };
}

/**
 * The reference check of a proof's header, key and signature, through jose
 * (decodeProtectedHeader, calculateJwkThumbprint, importJWK, jwtVerify):
 * what fastProof must agree with, and what decides, with its reasons,
 * every proof fastProof is not sure of. `proof` is a compact JWS within the
 * size bound; rejects with a `DpopProofError`.
 */
export async function joseProof(proof: string, settings: DpopSettings, nowMs: number): Promise<CheckedProof> {
  const jose = await loadJose();
  let header: Record<string, unknown>;
  try {
    header = jose.decodeProtectedHeader(proof);
  } catch (error) {
    throw invalid(`the DPoP proof header cannot be read: ${describeError(error)}`, error);
  }
  const { typ, alg, jwk } = header;
  if (typeof typ !== "string" || normalizeTyp(typ) !== "application/dpop+jwt") throw invalid(`the DPoP proof typ is ${show(typ, 40)}, not "dpop+jwt"`);
  if (typeof alg !== "string" || !settings.algorithms.includes(alg)) throw invalid(`the DPoP proof alg ${show(alg, 40)} is not accepted (${settings.algorithms.join(", ")})`);
  if (!isObject(jwk)) throw invalid("the DPoP proof header has no jwk object");
  const leaked = PRIVATE_MEMBERS.filter((member) => Object.hasOwn(jwk, member));
  if (leaked.length > 0) throw invalid(`the DPoP proof jwk is not a public key (it has ${leaked.join(", ")})`);
  if (typeof jwk.kty !== "string" || !PUBLIC_KEY_TYPES.has(jwk.kty)) throw invalid(`the DPoP proof jwk kty ${show(jwk.kty, 20)} is not an asymmetric key type`);

  let jkt: string;
  try {
    jkt = await jose.calculateJwkThumbprint(jwk, "sha256");
  } catch (error) {
    throw invalid(`the DPoP proof jwk has no thumbprint: ${describeError(error)}`, error);
  }
  // A client signs many proofs with one key: the imported key is kept (per alg, as jose binds a key to its alg).
  const cacheKey = `${alg} ${jkt}`;
  let key = settings.keys.get(cacheKey);
  let imported = false;
  if (key === undefined) {
    let candidate: Awaited<ReturnType<typeof jose.importJWK>>;
    try {
      candidate = await jose.importJWK(jwk, alg);
    } catch (error) {
      throw invalid(`the DPoP proof jwk cannot be used with ${alg}: ${describeError(error)}`, error);
    }
    if (candidate instanceof Uint8Array || candidate.type !== "public") throw invalid("the DPoP proof jwk is not a public key");
    key = candidate;
    imported = true;
  }

  let payload: JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(proof, key, {
      algorithms: [...settings.algorithms],
      typ: "dpop+jwt",
      clockTolerance: settings.clockToleranceSeconds,
      currentDate: new Date(nowMs),
    }));
  } catch (error) {
    throw invalid(`the DPoP proof does not verify with its own key: ${describeError(error)}`, error);
  }
  // Only a key that verified a proof is kept: forged proofs do not churn the cache.
  if (imported) settings.keys.set(cacheKey, key);

  return { jwk, jkt, payload };
}
