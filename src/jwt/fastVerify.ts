/**
 * A synchronous node:crypto fast path for compact JWS access tokens.
 *
 * jose verifies through WebCrypto: a thread-pool round trip per call. For the
 * common case (an ordinary RS/PS/ES/EdDSA token signed by a published key)
 * this module makes the same decision with `crypto.verify` and a cached
 * `KeyObject`, synchronously.
 *
 * The rule that keeps it safe: it only ever ACCEPTS or DEFERS. `undefined`
 * means "not sure, or rejected: let jose decide". Anything unusual in the
 * token (header members other than `alg`, `kid`, `typ`; encodings jose's
 * decoder might read differently), in the key (a JWK `alg`, `use`, `key_ops`,
 * `ext`, `kty` or `crv` that does not fit the way jose checks it; RSA under
 * 2048 bits; private members), or any failed claim check defers, so every
 * rejection and every error message stays jose's. The accept direction
 * mirrors jose 6 (`jwtVerify` with a local JWKS): lib/jws_verify.js,
 * lib/validate.js, lib/key.js, lib/jws_algorithms.js, jwks/local.js
 * (isUsableJWK) and lib/jwt_claims_set.js (validateClaimsSet), and is proven
 * against it by test/differential/.
 *
 * Written for the hot path: no regex, one JSON.parse per segment, no
 * closures or per-call allocations beyond the decoded buffers.
 */
import { isUtf8 } from "node:buffer";
import { constants, verify as cryptoVerify, createPublicKey, type KeyObject } from "node:crypto";
import { normalizeTyp } from "./typ.js";

/** A compact JWS split and decoded once. */
export interface DecodedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** `<b64 header>.<b64 payload>` — the signing input. */
  signingInput: string;
  signature: Buffer;
}

export interface FastPolicy {
  /** Exact `iss`. */
  issuer: string;
  /** The token's `aud` (string or array) must contain one of these. */
  audience: readonly string[];
  /** Allow-list. */
  algorithms: readonly string[];
  /** Seconds. */
  clockTolerance: number;
  /** Seconds; implies `iat` required. */
  maxTokenAge?: number;
  /** Always includes "exp" and "sub" from the caller. */
  requiredClaims: readonly string[];
  /** E.g. "at+jwt" in strict mode, compared like jose (normalizeTyp). */
  typ?: string;
}

/** The public key and the JWK it came from (for alg/kty/crv/use/key_ops checks). */
export interface FastKey {
  key: KeyObject;
  jwk: Readonly<Record<string, unknown>>;
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/**
 * Three non-empty base64url segments: the shape the package requires before
 * anything else. decodeJws proves the same shape without running it (see
 * there); the regex is the reference for every token decodeJws declines.
 */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * How many bytes a base64url segment of `chars` characters decodes to, or -1
 * for a length ≡ 1 (mod 4): jose decodes with `atob` (or
 * `Uint8Array.fromBase64`, loose), which throws on it where Buffer silently
 * drops the last character, so such a segment defers.
 *
 * Decoding a segment must produce exactly this many bytes, which proves its
 * alphabet: the caller has made sure it is ASCII without "+" or "/" (the two
 * standard-base64 characters Buffer also decodes), and Buffer skips every
 * other character outside the alphabet (and stops at "="), which yields
 * fewer bytes. Otherwise Buffer and jose produce the same bytes, ignoring the
 * unused low bits of the last character (so a signature whose last character
 * differs only in those bits decodes, and verifies, the same in both: jose
 * accepts it, and so does this path).
 */
function decodedSize(chars: number): number {
  return (chars & 3) === 1 ? -1 : (chars * 3) >>> 2;
}

/** Bytes of one base64url segment, or undefined when jose's decoder might read it differently or it holds a character outside the alphabet (see decodedSize). */
function segmentBytes(segment: string): Buffer | undefined {
  const size = decodedSize(segment.length);
  if (size < 0) return undefined;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.length === size ? bytes : undefined;
}

/** Where header and payload segments are decoded: each is turned into a string at once, before anything else can use it. */
const textScratch = Buffer.allocUnsafe(12 * 1024);

/**
 * The text of a base64url segment read the way jose reads it (the bytes as
 * strict UTF-8), or undefined when that fails or jose might read it
 * differently. Buffer's UTF-8 decoding replaces every invalid sequence with
 * U+FFFD (documented for `buf.toString`), so a text without U+FFFD came from
 * valid UTF-8; one with it may still be valid (an encoded U+FFFD), and the
 * bytes themselves are checked. (jose's decoder also strips a leading BOM,
 * which Buffer keeps: JSON.parse then fails and we defer, which is safe.)
 */
function segmentText(segment: string): string | undefined {
  const size = decodedSize(segment.length);
  if (size < 0) return undefined;
  if (size > textScratch.length) {
    const bytes = segmentBytes(segment);
    return bytes !== undefined && isUtf8(bytes) ? bytes.toString() : undefined;
  }
  if (textScratch.write(segment, 0, "base64url") !== size) return undefined;
  const text = textScratch.toString("utf8", 0, size);
  return !text.includes("\uFFFD") || isUtf8(textScratch.subarray(0, size)) ? text : undefined;
}

/** JSON object from a base64url segment, read the way jose does (fatal UTF-8, plain object), or undefined. */
function segmentObject(segment: string): Record<string, unknown> | undefined {
  const text = segmentText(segment);
  if (text === undefined) return undefined;
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/**
 * Parsed headers by their base64url segment. An issuer signs every token with
 * the same few headers, so this saves a decode and a JSON.parse per token.
 * Only small headers whose members are all `alg`, `kid`, `typ` with primitive
 * values are kept (anything else is decoded afresh, and fastVerify defers on
 * it anyway); they are frozen, since every token with that segment shares the
 * object. A segment is kept only once it has decoded (decodedSize's check
 * included), so finding one proves the same of an equal segment. Bounded:
 * cleared when full, so hostile headers cannot grow it.
 */
const headerCache = new Map<string, Record<string, unknown>>();
const HEADER_CACHE_SIZE = 64;
const HEADER_CACHE_SEGMENT = 256;

function cacheable(header: Record<string, unknown>): boolean {
  for (const name in header) {
    if (name !== "alg" && name !== "kid" && name !== "typ") return false;
    const value = header[name];
    if (value !== null && typeof value === "object") return false;
  }
  return true;
}

/**
 * The cached header found last, and its segment: one issuer usually signs
 * with one header, and comparing two strings costs less than hashing one for
 * the Map.
 */
let lastSegment: string | undefined;
let lastHeader: Record<string, unknown> | undefined;

function decodeHeader(segment: string): Record<string, unknown> | undefined {
  if (segment === lastSegment) return lastHeader;
  let header = headerCache.get(segment);
  if (header === undefined) {
    header = segmentObject(segment);
    if (header === undefined || segment.length > HEADER_CACHE_SEGMENT || !cacheable(header)) return header;
    if (headerCache.size >= HEADER_CACHE_SIZE) headerCache.clear();
    headerCache.set(segment, Object.freeze(header));
  }
  lastSegment = segment;
  lastHeader = header;
  return header;
}

/**
 * Decode a compact JWS the way jose would accept it, or undefined when jose
 * might disagree (caller then uses jose). Never throws.
 *
 * Returns undefined unless the token has the package's shape (COMPACT_JWS:
 * three non-empty base64url segments), so a caller can try this first and
 * run its own checks only when it returns undefined. The shape is proven
 * without the regex: exactly two dots, none at either end or side by side;
 * ASCII only (one UTF-8 byte per character: a character over U+007F takes
 * two or more, and a two-byte string's characters would otherwise reach
 * Buffer's decoder and the latin1 signing input truncated to their low
 * byte); no "+" or "/"; and each segment decoding to the length its
 * character count implies (decodedSize). `header` may be a frozen object
 * shared by every token with the same header segment.
 */
export function decodeJws(token: string): DecodedJws | undefined {
  try {
    if (typeof token !== "string") return undefined;
    const first = token.indexOf(".");
    if (first <= 0) return undefined;
    const second = token.indexOf(".", first + 1);
    if (second <= first + 1 || second >= token.length - 1 || token.indexOf(".", second + 1) !== -1) return undefined;
    if (Buffer.byteLength(token, "utf8") !== token.length || token.indexOf("+") !== -1 || token.indexOf("/") !== -1) return undefined;
    const header = decodeHeader(token.slice(0, first));
    if (header === undefined) return undefined;
    const payload = segmentObject(token.slice(first + 1, second));
    if (payload === undefined) return undefined;
    const signature = segmentBytes(token.slice(second + 1));
    if (signature === undefined) return undefined;
    return { header, payload, signingInput: token.slice(0, second), signature };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Algorithms (jose lib/jws_algorithms.js)
// ---------------------------------------------------------------------------

/** Signature families (plain numbers: no enum in the emitted code). */
const RSA = 0;
const PSS = 1;
const EC = 2;
const ED = 3;
type Family = typeof RSA | typeof PSS | typeof EC | typeof ED;

interface AlgSpec {
  readonly family: Family;
  /** node:crypto digest name; null for Ed25519. */
  readonly hash: string | null;
  /** JWK kty jose requires for this alg. */
  readonly kty: string;
  /** JWK crv jose requires (EC, OKP). */
  readonly crv: string | undefined;
  /** KeyObject asymmetricKeyType. */
  readonly keyType: string;
  /** KeyObject asymmetricKeyDetails.namedCurve (EC). */
  readonly namedCurve: string | undefined;
  /** PSS salt length = digest length. */
  readonly saltLength: number;
  /** Exact signature length (EC: 2 × coordinate, Ed25519: 64); 0 = the RSA modulus length. */
  readonly signatureLength: number;
}

const rsa = (bits: number, pss: boolean): AlgSpec => ({
  family: pss ? PSS : RSA,
  hash: `sha${bits}`,
  kty: "RSA",
  crv: undefined,
  keyType: "rsa",
  namedCurve: undefined,
  saltLength: bits / 8,
  signatureLength: 0,
});
const ec = (bits: number, crv: string, namedCurve: string, coordinate: number): AlgSpec => ({
  family: EC,
  hash: `sha${bits}`,
  kty: "EC",
  crv,
  keyType: "ec",
  namedCurve,
  saltLength: 0,
  signatureLength: 2 * coordinate,
});
const ed: AlgSpec = {
  family: ED,
  hash: null,
  kty: "OKP",
  crv: "Ed25519",
  keyType: "ed25519",
  namedCurve: undefined,
  saltLength: 0,
  signatureLength: 64,
};

const ALGORITHMS: Readonly<Record<string, AlgSpec | undefined>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, AlgSpec>, {
    RS256: rsa(256, false),
    RS384: rsa(384, false),
    RS512: rsa(512, false),
    PS256: rsa(256, true),
    PS384: rsa(384, true),
    PS512: rsa(512, true),
    ES256: ec(256, "P-256", "prime256v1", 32),
    ES384: ec(384, "P-384", "secp384r1", 48),
    ES512: ec(512, "P-521", "secp521r1", 66),
    EdDSA: ed,
    Ed25519: ed,
  }),
);

function specOf(alg: unknown): AlgSpec | undefined {
  return typeof alg === "string" ? ALGORITHMS[alg] : undefined;
}

/** Whether the fast path can handle this alg at all (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, Ed25519). */
export function fastAlgorithm(alg: string): boolean {
  return specOf(alg) !== undefined;
}

// ---------------------------------------------------------------------------
// Keys (jose jwks/local.js isUsableJWK, lib/key.js, node's WebCrypto import)
// ---------------------------------------------------------------------------

/**
 * jose's `isUsableJWK`: whether a local JWKS offers this JWK as a candidate
 * for a token with this `alg` and `kid`. jose refuses a token when the number
 * of candidates is not exactly one (no key, or several keys); a key store in
 * front of fastVerify must count candidates with this same rule.
 */
export function isUsableJwk(jwk: Readonly<Record<string, unknown>>, alg: unknown, kid: unknown): boolean {
  const spec = specOf(alg);
  if (spec === undefined) return false;
  const keyOps = jwk["key_ops"];
  const ext = jwk["ext"];
  const jwkAlg = jwk["alg"];
  const use = jwk["use"];
  return (
    (ext === undefined || typeof ext === "boolean") &&
    (keyOps === undefined ||
      (Array.isArray(keyOps) && keyOps.every((op: unknown, i: number) => typeof op === "string" && keyOps.indexOf(op) === i) && keyOps.includes("verify"))) &&
    jwk["kty"] === spec.kty &&
    (kid === undefined || (typeof kid === "string" && kid === jwk["kid"])) &&
    (jwkAlg === undefined || alg === jwkAlg) &&
    (use === undefined || use === "sig") &&
    (spec.crv === undefined || jwk["crv"] === spec.crv)
  );
}

/** What fastVerify needs from a KeyObject, read once per key. */
interface KeyFacts {
  readonly type: string;
  readonly keyType: string | undefined;
  readonly namedCurve: string | undefined;
  /** RSA modulus bits (0 otherwise). */
  readonly modulusLength: number;
  /** Ready-made `crypto.verify` key arguments (no per-call object). */
  readonly ecKey: { key: KeyObject; dsaEncoding: "ieee-p1363" };
  readonly pssKeys: Readonly<Record<number, { key: KeyObject; padding: number; saltLength: number }>>;
}

const keyFacts = new WeakMap<KeyObject, KeyFacts>();

function factsOf(key: KeyObject): KeyFacts {
  let facts = keyFacts.get(key);
  if (facts === undefined) {
    const details = key.type === "public" ? key.asymmetricKeyDetails : undefined;
    const pss = (saltLength: number) => ({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
    facts = {
      type: key.type,
      keyType: key.asymmetricKeyType,
      namedCurve: details?.namedCurve,
      modulusLength: typeof details?.modulusLength === "number" ? details.modulusLength : 0,
      ecKey: { key, dsaEncoding: "ieee-p1363" },
      pssKeys: { 32: pss(32), 48: pss(48), 64: pss(64) },
    };
    keyFacts.set(key, facts);
  }
  return facts;
}

/**
 * Whether the JWK has a member that makes it a private (or secret) key (`d`,
 * `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`, `priv`): jose's import then yields
 * no public key. Spelled out member by member: each read is then a fixed
 * property load (this runs per token).
 */
function hasPrivateMember(jwk: Readonly<Record<string, unknown>>): boolean {
  return (
    jwk["d"] !== undefined ||
    jwk["p"] !== undefined ||
    jwk["q"] !== undefined ||
    jwk["dp"] !== undefined ||
    jwk["dq"] !== undefined ||
    jwk["qi"] !== undefined ||
    jwk["oth"] !== undefined ||
    jwk["k"] !== undefined ||
    jwk["priv"] !== undefined
  );
}

/**
 * Whether jose would import this JWK for `alg` into the same public key and
 * use it: its `isUsableJWK` (minus the kid, checked against the header
 * separately) and what WebCrypto's JWK import then requires (jose passes the
 * JWK's `key_ops` as the key usages: anything but exactly ["verify"] fails or
 * is unusual, so defer), and the KeyObject matching the JWK's type and curve.
 */
function keyFits(spec: AlgSpec, alg: string, jwk: Readonly<Record<string, unknown>>, facts: KeyFacts): boolean {
  if (jwk["kty"] !== spec.kty) return false;
  if (spec.crv !== undefined && jwk["crv"] !== spec.crv) return false;
  const jwkAlg = jwk["alg"];
  if (jwkAlg !== undefined && jwkAlg !== alg) return false;
  const use = jwk["use"];
  if (use !== undefined && use !== "sig") return false;
  const ext = jwk["ext"];
  if (ext !== undefined && typeof ext !== "boolean") return false;
  const keyOps = jwk["key_ops"];
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.length === 1 && keyOps[0] === "verify")) return false;
  if (hasPrivateMember(jwk)) return false;
  if (facts.type !== "public" || facts.keyType !== spec.keyType) return false;
  if (spec.namedCurve !== undefined && facts.namedCurve !== spec.namedCurve) return false;
  // jose (checkModulusLength): RSA keys under 2048 bits are refused.
  if (spec.family <= PSS && facts.modulusLength < 2048) return false;
  return true;
}

/**
 * Build a FastKey from a published JWK, or undefined when it is not a public
 * RSA, EC or OKP key node:crypto can import (node validates it as WebCrypto's
 * import does: an EC point off its curve is refused by both). Which algs the
 * key may serve (alg, use, key_ops, kty/crv, RSA size...) is fastVerify's
 * check, per token.
 */
export function createFastKey(jwk: Readonly<Record<string, unknown>>): FastKey | undefined {
  try {
    if (jwk === null || typeof jwk !== "object") return undefined;
    const kty = jwk["kty"];
    if (kty !== "RSA" && kty !== "EC" && kty !== "OKP") return undefined;
    if (hasPrivateMember(jwk)) return undefined;
    const key = createPublicKey({ key: { ...jwk } as never, format: "jwk" });
    if (key.type !== "public") return undefined;
    return { key, jwk };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Claims (jose lib/jwt_claims_set.js validateClaimsSet, accept direction)
// ---------------------------------------------------------------------------

const hasOwn = Object.hasOwn;

/** jose's checkAudiencePresence, with the option already an array. */
function audienceMatches(aud: unknown, audience: readonly string[]): boolean {
  if (typeof aud === "string") return audience.includes(aud);
  if (Array.isArray(aud)) {
    for (let i = 0; i < audience.length; i++) if (aud.includes(audience[i])) return true;
  }
  return false;
}

/** Header members the fast path understands; anything else (crit, b64, jwk, jku, x5c, cty...) defers to jose. */
function headerIsPlain(header: Record<string, unknown>): boolean {
  for (const name in header) {
    if (name !== "alg" && name !== "kid" && name !== "typ") return false;
  }
  return true;
}

/** validateClaimsSet's decision for the options the package passes; true = jose would accept. */
function claimsValid(header: Record<string, unknown>, payload: Record<string, unknown>, policy: FastPolicy, now: number): boolean {
  const { typ, maxTokenAge, requiredClaims, audience } = policy;
  if (!Array.isArray(requiredClaims) || !Array.isArray(audience)) return false;
  if (typ !== undefined) {
    const headerTyp = header["typ"];
    if (typeof typ !== "string" || typeof headerTyp !== "string" || normalizeTyp(headerTyp) !== normalizeTyp(typ)) return false;
  }
  for (let i = 0; i < requiredClaims.length; i++) if (!hasOwn(payload, requiredClaims[i]!)) return false;
  if (maxTokenAge !== undefined && !hasOwn(payload, "iat")) return false;
  if (!hasOwn(payload, "aud") || !hasOwn(payload, "iss")) return false;
  if (typeof policy.issuer !== "string" || payload["iss"] !== policy.issuer) return false;
  if (!audienceMatches(payload["aud"], audience)) return false;

  const tolerance = policy.clockTolerance;
  if (typeof tolerance !== "number" || !Number.isFinite(tolerance) || tolerance < 0) return false;
  if (typeof now !== "number" || !Number.isFinite(now)) return false;

  // validateNumericDate: present means a number (property access, as jose reads it).
  const iat = payload["iat"];
  if ((iat !== undefined || maxTokenAge !== undefined) && typeof iat !== "number") return false;
  const nbf = payload["nbf"];
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + tolerance)) return false;
  const exp = payload["exp"];
  if (exp !== undefined && (typeof exp !== "number" || exp <= now - tolerance)) return false;
  if (maxTokenAge !== undefined) {
    if (typeof maxTokenAge !== "number" || !Number.isFinite(maxTokenAge) || maxTokenAge < 0) return false;
    const age = now - (iat as number);
    if (age - tolerance > maxTokenAge) return false;
    if (age < -tolerance) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// The fast path
// ---------------------------------------------------------------------------

/**
 * The signing input as bytes, written into a reusable buffer: crypto.verify
 * is synchronous, so nothing else uses it meanwhile. decodeJws checked every
 * character to be base64url or ".", so latin1 is the byte-for-byte (ASCII)
 * conversion jose makes.
 */
const scratch = Buffer.allocUnsafe(16 * 1024);

function signingBytes(input: string): Buffer {
  if (input.length > scratch.length) return Buffer.from(input, "latin1");
  return scratch.subarray(0, scratch.write(input, 0, input.length, "latin1"));
}

/**
 * Returns the payload when the token is VALID under `policy` with this key
 * (the same decision jose.jwtVerify would make with a JWKS whose only usable
 * key is `key` and the same options), or `undefined` = "not sure / rejected:
 * let jose decide". Synchronous, never throws. `decoded` must come from
 * decodeJws. nowSeconds defaults to Math.floor(Date.now()/1000).
 *
 * When the header has no `kid`, jose uses the JWKS's only usable key for the
 * alg (isUsableJwk): the caller must make sure `key` is that one key.
 */
export function fastVerify(decoded: DecodedJws, key: FastKey, policy: FastPolicy, nowSeconds?: number): Record<string, unknown> | undefined {
  try {
    const { header, payload, signature } = decoded;
    const alg = header["alg"];
    if (typeof alg !== "string") return undefined;
    const spec = ALGORITHMS[alg];
    const algorithms = policy.algorithms;
    if (spec === undefined || !Array.isArray(algorithms) || !algorithms.includes(alg)) return undefined;
    if (!headerIsPlain(header)) return undefined;
    const kid = header["kid"];
    const jwk = key.jwk;
    if (kid !== undefined && (typeof kid !== "string" || kid !== jwk["kid"])) return undefined;
    const facts = factsOf(key.key);
    if (!keyFits(spec, alg, jwk, facts)) return undefined;

    const now = nowSeconds === undefined ? Math.floor(Date.now() / 1000) : nowSeconds;
    if (!claimsValid(header, payload, policy, now)) return undefined;

    const data = signingBytes(decoded.signingInput);
    let valid: boolean;
    switch (spec.family) {
      case RSA:
        if (signature.length !== (facts.modulusLength + 7) >> 3) return undefined;
        valid = cryptoVerify(spec.hash, data, key.key, signature);
        break;
      case PSS:
        if (signature.length !== (facts.modulusLength + 7) >> 3) return undefined;
        valid = cryptoVerify(spec.hash, data, facts.pssKeys[spec.saltLength]!, signature);
        break;
      case EC:
        if (signature.length !== spec.signatureLength) return undefined;
        valid = cryptoVerify(spec.hash, data, facts.ecKey, signature);
        break;
      case ED:
        if (signature.length !== spec.signatureLength) return undefined;
        valid = cryptoVerify(null, data, key.key, signature);
        break;
    }
    return valid ? payload : undefined;
  } catch {
    return undefined;
  }
}
