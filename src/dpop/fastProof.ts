/**
 * A synchronous node:crypto path for DPoP proofs, beside the jose one in
 * verifyDpopProof.ts (the reference).
 *
 * jose checks a proof through WebCrypto: a thumbprint digest, a key import
 * and a signature check, each a round trip to the thread pool. For the
 * proofs clients actually send (a small header `{typ, alg, jwk}` with a plain
 * public key, a JSON object payload) this module makes the same decision
 * with `crypto.verify` and a `KeyObject` kept per algorithm and thumbprint.
 *
 * The rule is the one of src/jwt/fastVerify.ts: it only ACCEPTS or DEFERS.
 * `undefined` means "not sure, or refused: ask jose", so every refusal and
 * its reason stay the reference path's. It reuses the access-token path's
 * pieces (decodeJws for the segments, specOf for the algorithms,
 * importsAsVerifyKey for what jose's key import would refuse) and adds what
 * a proof has of its own: the `jwk` header member, which jose imports with
 * `importJWK(jwk, alg)`, and the claim checks `jwtVerify` makes with only
 * `typ`, `clockTolerance` and `currentDate` set. What it defers on:
 *
 * - anything decodeJws defers on (non-ASCII, a segment Buffer and jose might
 *   read differently, a header or payload that is not a JSON object);
 * - a header member other than `typ`, `alg`, `jwk`, `kid` (so `crit`, `b64`
 *   and the rest are jose's to judge);
 * - a `jwk` member other than the key's own (`kty`, `crv`, `x`, `y`, `n`,
 *   `e`) and `kid`, `alg`, `use: "sig"`, `ext`, `key_ops: ["verify"]`;
 *   key material not in its canonical base64url form or of the wrong size;
 * - a claim jose would look at (`iat`, `nbf`, `exp`) outside what it
 *   accepts, a signature of the wrong length, a signature that fails.
 *
 * Proven against the reference by test/differential/dpopProof.test.ts.
 */
import { createPublicKey, hash, type KeyObject } from "node:crypto";
import { EC, ED, PSS, RSA, specOf, type AlgSpec } from "../jwt/algorithms.js";
import { decodeJws } from "../jwt/decode.js";
import { factsOf, importsAsVerifyKey } from "../jwt/fastKey.js";
import { signatureVerifies } from "../jwt/fastVerify.js";
import { normalizeTyp } from "../jwt/typ.js";
import { LruMap } from "../keys/lruMap.js";
import type { DpopSettings } from "./dpopOptions.js";

/** What the signature check of a proof established: the same as the reference path's. */
export interface CheckedProof {
  /** The proof's `jwk` header member, as sent. */
  jwk: Record<string, unknown>;
  /** Its RFC 7638 SHA-256 thumbprint. */
  jkt: string;
  payload: Record<string, unknown>;
}

/** Proof keys that verified a proof, by `alg` and thumbprint; one bounded map per app (per settings object). */
const verifiedKeys = new WeakMap<DpopSettings, LruMap<string, KeyObject>>();
const VERIFIED_KEYS = 1000;

function keysOf(settings: DpopSettings): LruMap<string, KeyObject> {
  let keys = verifiedKeys.get(settings);
  if (keys === undefined) {
    keys = new LruMap<string, KeyObject>(VERIFIED_KEYS);
    verifiedKeys.set(settings, keys);
  }
  return keys;
}

/** How many proof keys this path keeps for the app of `settings` (for tests and diagnosis). */
export function fastProofKeyCount(settings: DpopSettings): number {
  return verifiedKeys.get(settings)?.size ?? 0;
}

/**
 * The key's own members, in the lexicographic order RFC 7638 prescribes,
 * per key type; each must be a non-empty string (jose's
 * calculateJwkThumbprint refuses anything else).
 */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  EC: Object.freeze(["crv", "kty", "x", "y"]),
  OKP: Object.freeze(["crv", "kty", "x"]),
  RSA: Object.freeze(["e", "kty", "n"]),
});

/**
 * The RFC 7638 SHA-256 thumbprint of a public EC, OKP or RSA JWK: the
 * base64url SHA-256 of the JSON object of its required members in
 * lexicographic order, without whitespace (JSON.stringify writes exactly
 * that, escapes included). `undefined` for any other key type or a required
 * member that is not a non-empty string (jose then decides).
 */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string | undefined {
  const kty = jwk["kty"];
  if (kty !== "EC" && kty !== "OKP" && kty !== "RSA") return undefined;
  const members = REQUIRED_MEMBERS[kty]!;
  const required: Record<string, string> = {};
  for (const name of members) {
    const value = jwk[name];
    if (typeof value !== "string" || value === "") return undefined;
    required[name] = value;
  }
  return hash("sha256", JSON.stringify(required), "base64url");
}

/** Whether the header holds only members this path understands. */
function headerIsProofPlain(header: Record<string, unknown>): boolean {
  for (const name in header) {
    if (name !== "typ" && name !== "alg" && name !== "jwk" && name !== "kid") return false;
  }
  return true;
}

/** Whether the JWK holds only its key members and the optional ones whose effect on jose's import is known. */
function jwkIsPlain(jwk: Record<string, unknown>, kty: string, alg: string): boolean {
  const members = REQUIRED_MEMBERS[kty]!;
  for (const name in jwk) {
    if (members.includes(name)) continue;
    const value = jwk[name];
    if (name === "kid" && typeof value === "string") continue;
    if (name === "alg" && value === alg) continue;
    if (name === "use" && value === "sig") continue;
    if (name === "ext" && typeof value === "boolean") continue;
    if (name === "key_ops") continue; // checked by importsAsVerifyKey: exactly ["verify"]
    return false;
  }
  return true;
}

/** `text` is the canonical base64url of `size` bytes (0: any size), without a leading zero byte when `unsigned` (an RSA integer). */
function canonical(text: unknown, size: number, unsigned: boolean): boolean {
  if (typeof text !== "string") return false;
  const bytes = Buffer.from(text, "base64url");
  if (bytes.length === 0 || (size > 0 && bytes.length !== size) || (unsigned && bytes[0] === 0)) return false;
  return bytes.toString("base64url") === text;
}

/** The key material of a JWK that jwkIsPlain accepted, read the same by node:crypto and by WebCrypto's import. */
function materialIsCanonical(jwk: Record<string, unknown>, spec: AlgSpec): boolean {
  switch (spec.family) {
    case RSA:
    case PSS:
      return canonical(jwk["n"], 0, true) && canonical(jwk["e"], 0, true);
    case EC:
      return canonical(jwk["x"], spec.signatureLength / 2, false) && canonical(jwk["y"], spec.signatureLength / 2, false);
    case ED:
      return canonical(jwk["x"], 32, false);
  }
  return false;
}

/** jose's validateNumericDate for a claim that is not required: absent, or a number. */
function numericOrAbsent(value: unknown): boolean {
  return value === undefined || typeof value === "number";
}

/**
 * The proof checked up to and including its signature and jose's claim
 * checks (what verifyDpopProof's reference path does with decodeProtectedHeader,
 * calculateJwkThumbprint, importJWK and jwtVerify), or `undefined`: not
 * sure, or refused, so the caller runs the reference path. `proof` must
 * already be a compact JWS within the size bound. Synchronous, never throws.
 */
export function fastProof(proof: string, settings: DpopSettings, nowMs: number): CheckedProof | undefined {
  try {
    const decoded = decodeJws(proof);
    if (decoded === undefined) return undefined;
    const { header, payload } = decoded;
    if (!headerIsProofPlain(header)) return undefined;
    const { typ, alg, jwk } = header;
    if (typeof typ !== "string" || normalizeTyp(typ) !== "application/dpop+jwt") return undefined;
    if (typeof alg !== "string" || !settings.algorithms.includes(alg)) return undefined;
    const spec = specOf(alg);
    if (spec === undefined) return undefined;
    if (jwk === null || typeof jwk !== "object" || Array.isArray(jwk)) return undefined;
    const key = jwk as Record<string, unknown>;
    if (key["kty"] !== spec.kty || (spec.crv !== undefined && key["crv"] !== spec.crv)) return undefined;
    if (!jwkIsPlain(key, spec.kty, alg)) return undefined;
    const jkt = jwkThumbprint(key);
    if (jkt === undefined) return undefined;

    // jwtVerify's claim checks with { typ, clockTolerance, currentDate } (jose's lib/jwt_claims_set.js).
    const now = Math.floor(nowMs / 1000);
    const tolerance = settings.clockToleranceSeconds;
    if (!numericOrAbsent(payload["iat"])) return undefined;
    const nbf = payload["nbf"];
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + tolerance)) return undefined;
    const exp = payload["exp"];
    if (exp !== undefined && (typeof exp !== "number" || exp <= now - tolerance)) return undefined;

    // The key: a cache hit means these exact key members (the thumbprint covers them) were imported and verified a proof before.
    const cache = keysOf(settings);
    const cacheKey = `${alg} ${jkt}`;
    let publicKey = cache.get(cacheKey);
    const known = publicKey !== undefined;
    if (publicKey === undefined) {
      if (!materialIsCanonical(key, spec)) return undefined;
      const members: Record<string, unknown> = {};
      for (const name of REQUIRED_MEMBERS[spec.kty]!) members[name] = key[name];
      publicKey = createPublicKey({ key: members as never, format: "jwk" });
    }
    const facts = factsOf(publicKey);
    if (!importsAsVerifyKey(spec, key, facts)) return undefined;

    if (!signatureVerifies(decoded, spec, publicKey, facts)) return undefined;
    // Only a key that verified a proof is kept: forged proofs do not churn the cache.
    if (!known) cache.set(cacheKey, publicKey);
    return { jwk: key, jkt, payload };
  } catch {
    return undefined;
  }
}
