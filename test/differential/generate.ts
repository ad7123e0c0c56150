/**
 * The differential token population, shared by test/differential/*.test.ts
 * (CI-sized) and bench/differential.ts (1,000,000 tokens by default).
 *
 * Everything is real: RSA, EC and Ed25519 keys generated per run (published
 * ones, plus an attacker's of every alg), a JWKS of the published keys with
 * the odd members real providers publish (no `alg`, `use: "enc"`, `key_ops`,
 * an RSA-1024 key, a symmetric and an X25519 key), and three package configs
 * (defaults-like, strict with maxTokenAge, two issuers). Tokens are signed
 * with node:crypto: ES256 and Ed25519 afresh per case (cheap); RSA, ES384 and
 * ES512 once into a pool at setup (milliseconds each on OpenSSL 3.0) that the
 * cases then repeat and mutate. Deterministic for a seed, except for the
 * clock: claims are relative to the second a case is generated in.
 *
 * The reference decision is jose.jwtVerify with a local JWKS of the same keys
 * and the same options, plus the package's documented extra rules (compact
 * form, maxTokenLength, `sub` a non-empty string).
 */
import { constants, createHmac, generateKeyPair, sign as nodeSign, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { createLocalJWKSet, decodeJwt, jwtVerify, type JWK, type JWTVerifyOptions } from "jose";
import type { OidcConfigInput } from "../../src/index.js";

export const ISS = "https://idp.differential.test";
export const ISS2 = "https://second.idp.differential.test/realms/x";
export const AUD = "diff-api";
export const AUD2 = "diff-api-2";
export const MAX_TOKEN_LENGTH = 16 * 1024;
/** The package's compact-JWS rule (README, "Verification"). */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** What the package's `strict` adds (README: RFC 9068). */
const STRICT_CLAIMS = ["client_id", "iat", "jti"];

const generateKeyPairAsync = promisify(generateKeyPair);
const nowS = () => Math.floor(Date.now() / 1000);
export const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

// ---------------------------------------------------------------------------
// Deterministic randomness (the seed is printed; DIFFERENTIAL_SEED replays)
// ---------------------------------------------------------------------------

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32 */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  /** Pick by weight: [[weight, value], ...]. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    let total = 0;
    for (const [w] of items) total += w;
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1]![1];
  }
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

export interface KeyPairInfo {
  /** Name in the fixture (also the kid unless published otherwise). */
  name: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The JWK as published (undefined for attacker keys). */
  jwk: JWK | undefined;
  /** The kid tokens signed by this key name in their header. */
  kid: string;
}

async function keyPair(kind: "rsa2048" | "rsa1024" | "P-256" | "P-384" | "P-521" | "ed25519" | "x25519") {
  switch (kind) {
    case "rsa2048":
      return generateKeyPairAsync("rsa", { modulusLength: 2048 });
    case "rsa1024":
      return generateKeyPairAsync("rsa", { modulusLength: 1024 });
    case "ed25519":
      return generateKeyPairAsync("ed25519");
    case "x25519":
      return generateKeyPairAsync("x25519");
    default:
      return generateKeyPairAsync("ec", { namedCurve: kind });
  }
}

/** A signing identity: a key and the header alg it signs with. */
export interface Signer {
  alg: string;
  key: KeyPairInfo;
}

export function signBytes(alg: string, key: KeyObject | Buffer, input: Buffer): Buffer {
  const bits = Number(alg.slice(-3));
  switch (alg) {
    case "RS256":
    case "RS384":
    case "RS512":
      return nodeSign(`sha${bits}`, input, key);
    case "PS256":
    case "PS384":
    case "PS512":
      return nodeSign(`sha${bits}`, input, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: bits / 8 });
    case "ES256":
    case "ES384":
    case "ES512":
      return nodeSign(`sha${bits}`, input, { key: key as KeyObject, dsaEncoding: "ieee-p1363" });
    case "EdDSA":
    case "Ed25519":
      return nodeSign(null, input, key);
    case "HS256":
    case "HS384":
    case "HS512":
      return createHmac(`sha${bits}`, key).update(input).digest();
    default:
      throw new Error(`cannot sign ${alg}`);
  }
}

// ---------------------------------------------------------------------------
// Configurations: the package's input and the reference's options, from one spec
// ---------------------------------------------------------------------------

export interface IssuerSpec {
  issuer: string;
  audience: string[];
  algorithms: string[];
  clockTolerance: number;
  maxTokenAge?: number;
  requiredClaims: string[];
  strict: boolean;
}

export interface DiffConfig {
  name: string;
  issuers: IssuerSpec[];
  /** What verifyOidcToken gets. */
  input: OidcConfigInput;
  /** jose.jwtVerify options per issuer (same order). */
  reference: JWTVerifyOptions[];
}

const ALL_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

export function referenceOptions(spec: IssuerSpec): JWTVerifyOptions {
  return {
    issuer: spec.issuer,
    audience: spec.audience,
    algorithms: spec.algorithms,
    clockTolerance: spec.clockTolerance,
    requiredClaims: [...new Set(["exp", "sub", ...spec.requiredClaims, ...(spec.strict ? STRICT_CLAIMS : [])])],
    ...(spec.maxTokenAge === undefined ? {} : { maxTokenAge: spec.maxTokenAge }),
    ...(spec.strict ? { typ: "at+jwt" } : {}),
  };
}

function makeConfigs(jwksUri: string): DiffConfig[] {
  const make = (name: string, issuers: IssuerSpec[], single: boolean, defaults: Partial<IssuerSpec> = {}): DiffConfig => {
    const options = (spec: IssuerSpec) => ({
      audience: spec.audience,
      // Left to the package default when it is the default list (exercises DEFAULTS.algorithms).
      ...(spec.algorithms === ALL_ALGS ? {} : { algorithms: spec.algorithms }),
      clockTolerance: spec.clockTolerance,
      ...(spec.maxTokenAge === undefined ? {} : { maxTokenAge: spec.maxTokenAge }),
      ...(spec.requiredClaims.length === 0 ? {} : { requiredClaims: spec.requiredClaims }),
      ...(spec.strict ? { strict: true } : {}),
    });
    const input: OidcConfigInput = single
      ? ({ issuer: issuers[0]!.issuer, jwksUri, ...options(issuers[0]!) })
      : ({ issuers: issuers.map((spec) => ({ issuer: spec.issuer, jwksUri, ...options(spec) })), ...defaults });
    return { name, issuers, input, reference: issuers.map(referenceOptions) };
  };
  return [
    make(
      "default",
      [{ issuer: ISS, audience: [AUD], algorithms: ["RS256", "PS256", "ES256", "ES384", "EdDSA"], clockTolerance: 5, requiredClaims: [], strict: false }],
      true,
    ),
    make(
      "strict",
      [{ issuer: ISS, audience: [AUD, AUD2], algorithms: ["RS256", "PS256", "ES256", "EdDSA"], clockTolerance: 3, maxTokenAge: 600, requiredClaims: ["scope"], strict: true }],
      true,
    ),
    make(
      "multi",
      [
        { issuer: ISS, audience: [AUD], algorithms: ALL_ALGS, clockTolerance: 0, requiredClaims: [], strict: false },
        { issuer: ISS2, audience: [AUD2], algorithms: ["ES256", "ES512", "Ed25519"], clockTolerance: 10, maxTokenAge: 120, requiredClaims: ["tenant"], strict: false },
      ],
      false,
    ),
  ];
}

// ---------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------

export interface PoolToken {
  token: string;
  config: number;
  kind: string;
  /** P-384 / P-521: milliseconds per verification, so used sparingly. */
  slow: boolean;
}

/** The keys of a run: created once, shared with worker threads (KeyObjects are cloneable). */
export interface FixtureKeys {
  /** Published keys by name (the name is the kid). */
  keys: Record<string, KeyPairInfo>;
  /** Keys nobody published. */
  attackers: Record<string, KeyPairInfo>;
}

/** What the reference needs: public data only. */
export interface Reference {
  /** The published JWKS (what the JWKS server serves and the reference uses). */
  jwks: JWK[];
  configs: DiffConfig[];
  /** jose's local JWKS of `jwks`. */
  localJwks: ReturnType<typeof createLocalJWKSet>;
}

export interface Fixture extends FixtureKeys, Reference {
  /** Pre-signed RSA, ES384 and ES512 tokens (slow to sign): valid, claim-mutated, wrong key... */
  pool: PoolToken[];
  /** HMAC secrets an attacker derives from the public keys (PEM, DER, JWK text). */
  hmacSecrets: Buffer[];
}

function publicJwk(key: KeyObject, extra: Record<string, unknown>): JWK {
  return { ...(key.export({ format: "jwk" }) as JWK), ...extra };
}

const KEY_KINDS = {
  rs: "rsa2048",
  ps: "rsa2048",
  "rsa-any": "rsa2048",
  weak: "rsa1024",
  "es-1": "P-256",
  "es-ops": "P-256",
  "es-enc": "P-256",
  "es-signops": "P-256",
  "es384-1": "P-384",
  "es512-1": "P-521",
  "ed-1": "ed25519",
  "ed-any": "ed25519",
  x25519: "x25519",
  "att-rsa": "rsa2048",
  "att-es256": "P-256",
  "att-es384": "P-384",
  "att-es512": "P-521",
  "att-ed": "ed25519",
} as const;

/** How each published key appears in the JWKS (besides its key material and kid). */
const PUBLISHED: Record<string, Record<string, unknown>> = {
  rs: { alg: "RS256", use: "sig" },
  ps: { alg: "PS256", use: "sig" },
  "rsa-any": {},
  weak: { alg: "RS256", use: "sig" },
  "es-1": { alg: "ES256", use: "sig" },
  "es-ops": { alg: "ES256", key_ops: ["verify"], ext: true },
  "es-enc": { alg: "ES256", use: "enc" },
  "es-signops": { key_ops: ["sign"] },
  "es384-1": { alg: "ES384", use: "sig" },
  "es512-1": { alg: "ES512", use: "sig" },
  "ed-1": { alg: "EdDSA", use: "sig" },
  "ed-any": { use: "sig" },
  x25519: { use: "enc" },
};

/** Generate the run's keys (RSA keys take a moment). */
export async function createKeys(): Promise<FixtureKeys> {
  const names = Object.keys(KEY_KINDS) as Array<keyof typeof KEY_KINDS>;
  const pairs = await Promise.all(names.map((name) => keyPair(KEY_KINDS[name])));
  const keys: Record<string, KeyPairInfo> = {};
  const attackers: Record<string, KeyPairInfo> = {};
  names.forEach((name, i) => {
    const { privateKey, publicKey } = pairs[i]!;
    const extra = PUBLISHED[name];
    const info: KeyPairInfo = { name, privateKey, publicKey, kid: name, jwk: extra === undefined ? undefined : publicJwk(publicKey, { kid: name, ...extra }) };
    if (extra === undefined) attackers[name] = info;
    else keys[name] = info;
  });
  return { keys, attackers };
}

/** The JWKS the provider publishes. */
export function jwksOf(keys: FixtureKeys): JWK[] {
  return [
    ...Object.values(keys.keys).map((k) => k.jwk!),
    // A symmetric key in a public JWKS: never usable for an asymmetric alg.
    { kty: "oct", kid: "hmac-1", k: b64url(Buffer.alloc(32, 7)), alg: "HS256" },
  ];
}

/** The reference side: JWKS, configs pointing at `jwksUri`, jose's local key set. */
export function createReference(jwks: JWK[], jwksUri: string): Reference {
  return { jwks, configs: makeConfigs(jwksUri), localJwks: createLocalJWKSet({ keys: jwks }) };
}

/**
 * Everything the generator needs: keys, reference and a pool of `poolSize`
 * pre-signed tokens (RSA; one in eight ES384 / ES512) — a few ms each.
 */
export function createFixture(keys: FixtureKeys, jwksUri: string, options: { poolSize?: number; seed?: number } = {}): Fixture {
  const rs = keys.keys["rs"]!;
  const hmacSecrets = [
    Buffer.from(rs.publicKey.export({ type: "spki", format: "pem" }) as string),
    rs.publicKey.export({ type: "spki", format: "der" }) as Buffer,
    Buffer.from(JSON.stringify(rs.jwk)),
    Buffer.from(JSON.stringify(keys.keys["es-1"]!.jwk)),
    Buffer.alloc(32, 7),
  ];
  const fixture: Fixture = { ...keys, ...createReference(jwksOf(keys), jwksUri), pool: [], hmacSecrets };
  fixture.pool = buildPool(fixture, options.poolSize ?? 320, new Rng((options.seed ?? 1) ^ 0x5eed));
  return fixture;
}

// ---------------------------------------------------------------------------
// Token building
// ---------------------------------------------------------------------------

type Bytes = Record<string, unknown> | string | Buffer;

function bytesOf(value: Bytes): Buffer {
  if (Buffer.isBuffer(value)) return value;
  return Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
}

/** Sign header and payload (objects are JSON-encoded; strings and Buffers are used as is). */
export function buildToken(header: Bytes, payload: Bytes, alg: string, key: KeyObject | Buffer): string {
  const input = `${b64url(bytesOf(header))}.${b64url(bytesOf(payload))}`;
  return `${input}.${b64url(signBytes(alg, key, Buffer.from(input)))}`;
}

function header(alg: unknown, kid: unknown, typ: unknown = "JWT", extra: Record<string, unknown> = {}): Record<string, unknown> {
  const h: Record<string, unknown> = {};
  if (alg !== undefined) h["alg"] = alg;
  if (kid !== undefined) h["kid"] = kid;
  if (typ !== undefined) h["typ"] = typ;
  return { ...h, ...extra };
}

/** A valid claim set for this issuer (strict and maxTokenAge included). */
function validClaims(rng: Rng, spec: IssuerSpec, now: number): Record<string, unknown> {
  const aud = rng.weighted<unknown>([
    [4, spec.audience[0]],
    [2, [rng.pick(spec.audience)]],
    [2, ["other-api", rng.pick(spec.audience), "third"]],
    [1, spec.audience.length > 1 ? [...spec.audience] : [spec.audience[0], spec.audience[0]]],
  ]);
  const maxAge = spec.maxTokenAge ?? 3600;
  const claims: Record<string, unknown> = {
    iss: spec.issuer,
    sub: rng.weighted([
      [6, `user-${rng.int(500)}`],
      [1, `ünïcødé-${rng.int(9)}-😀`],
      [1, " "],
      [1, "x".repeat(rng.range(1, 300))],
    ]),
    aud,
    iat: now - rng.int(Math.max(1, Math.min(maxAge - 30, 600))),
    exp: now + rng.range(60, 86_400),
    jti: `jti-${rng.int(1e9)}`,
    client_id: rng.pick(["web", "cli", "svc-reports"]),
    scope: rng.pick(["openid", "openid profile read", "read write admin", ""]),
    tenant: rng.pick(["acme", "globex", null]),
  };
  if (rng.chance(0.3)) claims["nbf"] = now - rng.int(120);
  if (rng.chance(0.5)) claims["roles"] = rng.pick([["member"], ["admin", "member"], [], "admin", [1, "x"]]);
  if (rng.chance(0.2)) claims["permissions"] = ["users:read", "users:write"];
  if (rng.chance(0.2)) claims["features"] = rng.pick([{ beta: true }, [], null, "on", { nested: { deep: [1, 2, { x: "y" }] } }]);
  if (rng.chance(0.2)) claims["email"] = rng.pick(["a@example.com", 5, null]);
  if (rng.chance(0.1)) claims["exp"] = now + rng.range(60, 86_400) + 0.5;
  return claims;
}

/** Header typ for a valid token of this issuer. */
function validTyp(rng: Rng, spec: IssuerSpec): unknown {
  if (spec.strict) return rng.weighted([[6, "at+jwt"], [2, "application/at+jwt"], [1, "AT+JWT"], [1, "Application/At+Jwt"]]);
  return rng.weighted<unknown>([[6, "JWT"], [2, undefined], [1, "at+jwt"], [1, 42]]);
}

function signersFrom(fx: Fixture, spec: IssuerSpec, list: ReadonlyArray<readonly [string, string]>): Signer[] {
  return list.filter(([alg]) => spec.algorithms.includes(alg)).map(([alg, name]) => ({ alg, key: fx.keys[name]! }));
}

/** Signers cheap enough to sign per case (ES256, Ed25519), allowed by this issuer. */
function cheapSigners(fx: Fixture, spec: IssuerSpec): Signer[] {
  return signersFrom(fx, spec, [
    ["ES256", "es-1"],
    ["ES256", "es-ops"],
    ["EdDSA", "ed-1"],
    ["EdDSA", "ed-any"],
    ["Ed25519", "ed-any"],
  ]);
}

/** Signers for the pool (RSA; P-384 and P-521 are as slow on OpenSSL 3.0). */
function slowSigners(fx: Fixture, spec: IssuerSpec): Signer[] {
  return signersFrom(fx, spec, [
    ["RS256", "rs"],
    ["PS256", "ps"],
    ["RS256", "rsa-any"],
    ["PS256", "rsa-any"],
    ["RS384", "rsa-any"],
    ["PS512", "rsa-any"],
    ["ES384", "es384-1"],
    ["ES512", "es512-1"],
  ]);
}

// ---------------------------------------------------------------------------
// Claim mutations (applied to a valid claim set; time-relative to now)
// ---------------------------------------------------------------------------

function mutateClaims(rng: Rng, claims: Record<string, unknown>, spec: IssuerSpec, now: number): string {
  const tol = spec.clockTolerance;
  const edge = () => rng.range(-2, 2) + (rng.chance(0.15) ? 0.5 : 0);
  const which = rng.weighted([
    [4, "exp"],
    [3, "nbf"],
    [3, "iat"],
    [3, "iss"],
    [3, "aud"],
    [3, "sub"],
    [2, "required"],
    [1, "extra"],
  ] as const);
  switch (which) {
    case "exp":
      claims["exp"] = rng.weighted<unknown>([
        [8, now - tol + edge()],
        [1, undefined],
        [1, String(now + 100)],
        [1, null],
        [1, 0],
        [1, -1],
        [1, now - 10_000],
        [1, [now + 100]],
        [1, true],
      ]);
      break;
    case "nbf":
      claims["nbf"] = rng.weighted<unknown>([
        [8, now + tol + edge()],
        [1, String(now - 100)],
        [1, null],
        [1, now + 10_000],
        [1, 0],
      ]);
      break;
    case "iat": {
      const max = spec.maxTokenAge;
      claims["iat"] = rng.weighted<unknown>([
        [max === undefined ? 0 : 6, now - (max ?? 0) - tol + edge()],
        [4, now + tol + edge()],
        [1, undefined],
        [1, String(now)],
        [1, null],
        [1, now - 100_000],
      ]);
      break;
    }
    case "iss":
      claims["iss"] = rng.pick<unknown>([
        undefined,
        `${spec.issuer}/`,
        spec.issuer.toUpperCase(),
        spec.issuer === ISS ? ISS2 : ISS,
        [spec.issuer],
        null,
        42,
        "",
        `${spec.issuer}\u0000`,
      ]);
      break;
    case "aud":
      claims["aud"] = rng.pick<unknown>([
        undefined,
        "nope",
        spec.audience[0]!.toUpperCase(),
        [],
        ["nope"],
        [spec.audience[0], 5],
        [5, null, spec.audience[0]],
        [5],
        42,
        null,
        { 0: spec.audience[0] },
        [[spec.audience[0]]],
        spec.audience[0] === AUD ? AUD2 : AUD,
        `${spec.audience[0]} `,
      ]);
      break;
    case "sub":
      claims["sub"] = rng.pick<unknown>([undefined, "", null, 0, 123, ["alice"], { id: "alice" }, false, "alice"]);
      break;
    case "required": {
      const names = [...spec.requiredClaims, ...(spec.strict ? STRICT_CLAIMS : []), "jti", "client_id", "scope", "tenant"];
      const name = rng.pick(names);
      // Absent fails the presence check; null and "" are present (jose only checks presence).
      claims[name] = rng.pick<unknown>([undefined, undefined, null, "", 0]);
      break;
    }
    case "extra":
      claims[rng.pick(["sid", "azp", "acr", "__proto__x", "constructor", "toString"])] = rng.pick<unknown>([1, "x", null, { a: 1 }]);
      break;
  }
  return `claims:${which}`;
}

// ---------------------------------------------------------------------------
// The slow pool: RSA, ES384 and ES512 tokens signed once at setup
// ---------------------------------------------------------------------------

/** The attacker key of the same type as a slow signer. */
const SLOW_ATTACKER: Record<string, string> = { RS256: "att-rsa", PS256: "att-rsa", RS384: "att-rsa", PS512: "att-rsa", ES384: "att-es384", ES512: "att-es512" };

function buildPool(fx: Fixture, size: number, rng: Rng): PoolToken[] {
  const pool: PoolToken[] = [];
  const now = nowS();
  // Every (config, issuer, slow signer) the issuer allows.
  const combos: Array<{ config: number; spec: IssuerSpec; signer: Signer }> = [];
  fx.configs.forEach((config, index) => {
    for (const spec of config.issuers) for (const signer of slowSigners(fx, spec)) combos.push({ config: index, spec, signer });
  });
  const rsaCombos = combos.filter((c) => c.signer.key.publicKey.asymmetricKeyType === "rsa");
  const ecCombos = combos.filter((c) => c.signer.key.publicKey.asymmetricKeyType === "ec");
  for (let i = 0; i < size; i++) {
    // P-384 and P-521 cost milliseconds per signature on OpenSSL 3.0: one pool token in eight.
    const ec = i % 8 === 7;
    const { config, spec, signer: published } = rng.pick(ec ? ecCombos : rsaCombos);
    const claims = validClaims(rng, spec, now);
    // Valid long enough for a 1,000,000-token bench run (maxTokenAge issuers refuse them sooner: fine).
    claims["exp"] = now + 6 * 3600 + rng.int(3600);
    let kind = "valid";
    let signer = published;
    let hdr = header(signer.alg, signer.key.kid, validTyp(rng, spec));
    const roll = rng.next();
    if (roll < 0.2) {
      kind = mutateClaims(rng, claims, spec, now);
    } else if (roll < 0.26) {
      // The attacker's key of the same type, with the published kid.
      kind = "wrong-key";
      signer = { alg: signer.alg, key: { ...fx.attackers[SLOW_ATTACKER[signer.alg]!]!, kid: signer.key.kid } };
    } else if (roll < 0.3 && !ec) {
      // RSA-1024, published: jose refuses it (2048-bit minimum).
      kind = "weak-key";
      signer = { alg: "RS256", key: fx.keys["weak"]! };
      hdr = header("RS256", "weak", validTyp(rng, spec));
    } else if (roll < 0.34 && !ec) {
      // Signed with one alg, labelled another of the same family.
      kind = "alg-swap";
      hdr = header(signer.alg === "RS256" ? "PS256" : "RS256", signer.key.kid, validTyp(rng, spec));
    } else if (roll < 0.38) {
      // No kid: several RSA keys qualify (rs, rsa-any, weak) and jose refuses; ES384 and ES512 have one key each.
      kind = "no-kid";
      hdr = header(signer.alg, undefined, validTyp(rng, spec));
    }
    const token = buildToken(hdr, strip(claims), signer.alg, signer.key.privateKey);
    pool.push({ token, config, kind: `pool:${kind}`, slow: ec });
  }
  return pool;
}

/** Drop undefined members (JSON.stringify would anyway; this keeps objects honest). */
function strip(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims)) if (v !== undefined) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------
// Segment-level mutations of a finished token
// ---------------------------------------------------------------------------

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const NOT_B64URL = ["=", "+", "/", " ", ".", "%", "\u00e9", "\n", "\u0000", "*", "\ud83d\ude00"];

function flipBits(segment: string, rng: Rng): string {
  const bytes = Buffer.from(segment, "base64url");
  if (bytes.length === 0) return segment;
  const count = rng.range(1, 3);
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const bit = rng.int(bytes.length * 8);
    if (seen.has(bit)) continue;
    seen.add(bit);
    bytes[bit >> 3]! ^= 1 << (bit & 7);
  }
  return bytes.toString("base64url");
}

function p1363ToDer(sig: Buffer): Buffer {
  const half = sig.length / 2;
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(sig.subarray(0, half)), int(sig.subarray(half))]);
  return Buffer.concat([Buffer.from(body.length < 128 ? [0x30, body.length] : [0x30, 0x81, body.length]), body]);
}

export function mutateSegments(rng: Rng, token: string, other: string): { token: string; kind: string } {
  const parts = token.split(".") as [string, string, string];
  const kind = rng.weighted([
    [5, "flip"],
    [4, "replace-char"],
    [5, "last-sig-char"],
    [2, "last-char"],
    [1, "truncate"],
    [1, "append"],
    [1, "pad"],
    [2, "non-b64url"],
    [1, "dot"],
    [2, "swap"],
    [1, "sig-length"],
    [1, "sig-der"],
    [1, "sig-zero"],
    [1, "empty-segment"],
  ] as const);
  const seg = rng.int(3) as 0 | 1 | 2;
  switch (kind) {
    case "flip":
      parts[seg] = flipBits(parts[seg], rng);
      break;
    case "replace-char": {
      const s = parts[seg];
      const at = rng.int(s.length);
      parts[seg] = s.slice(0, at) + rng.pick(B64URL.split("")) + s.slice(at + 1);
      break;
    }
    case "last-sig-char":
      // The low bits of the last character are unused: some replacements decode to the same bytes.
      parts[2] = parts[2].slice(0, -1) + rng.pick(B64URL.split(""));
      break;
    case "last-char":
      parts[seg] = parts[seg].slice(0, -1) + rng.pick(B64URL.split(""));
      break;
    case "truncate":
      return { token: token.slice(0, rng.int(token.length)), kind: `segment:${kind}` };
    case "append":
      return { token: token + rng.pick(["A", "AA", "AAA", "AAAA", ".", ".x", "x"]), kind: `segment:${kind}` };
    case "pad":
      parts[seg] = parts[seg] + rng.pick(["=", "==", "==="]);
      break;
    case "non-b64url": {
      const s = parts[seg];
      const at = rng.int(s.length + 1);
      parts[seg] = s.slice(0, at) + rng.pick(NOT_B64URL) + s.slice(at);
      break;
    }
    case "dot":
      return rng.chance(0.5)
        ? { token: `${parts[0]}${parts[1]}.${parts[2]}`, kind: `segment:${kind}` }
        : { token: `${parts[0]}.${parts[1]}.${parts[2]}.${parts[2]}`, kind: `segment:${kind}` };
    case "swap": {
      const donor = other.split(".");
      if (donor.length === 3) parts[seg] = donor[seg]!;
      break;
    }
    case "sig-length": {
      const sig = Buffer.from(parts[2], "base64url");
      parts[2] = b64url(rng.chance(0.5) ? sig.subarray(0, sig.length - 1) : Buffer.concat([sig, Buffer.from([0])]));
      if (rng.chance(0.3)) parts[2] = b64url(Buffer.concat([Buffer.from([0]), sig]));
      break;
    }
    case "sig-der": {
      const sig = Buffer.from(parts[2], "base64url");
      // EC and Ed25519 signatures (raw r||s or R||S): DER-encoded instead. RSA: a bit flip.
      parts[2] = sig.length <= 132 ? b64url(p1363ToDer(sig)) : flipBits(parts[2], rng);
      break;
    }
    case "sig-zero":
      parts[2] = b64url(Buffer.alloc(Buffer.from(parts[2], "base64url").length));
      break;
    case "empty-segment":
      parts[seg] = "";
      break;
  }
  return { token: parts.join("."), kind: `segment:${kind}` };
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

export interface DiffCase {
  token: string;
  /** Index into fixture.configs. */
  config: number;
  kind: string;
}

const KINDS = [
  [16, "valid"],
  [9, "repeat"],
  [20, "claims"],
  [14, "header"],
  [22, "segment"],
  [4, "wrong-key"],
  [5, "raw"],
  [2, "length"],
  [8, "pool"],
] as const;

export class TokenGenerator {
  readonly rng: Rng;
  /** Recent cases, for repeats (a token cache will sit in front of the verifier): the last 4096... */
  private readonly history: DiffCase[] = [];
  /** ...and one in 64 of the older ones (repeats tens of seconds later: cached entries must expire like the token)... */
  private readonly longHistory: DiffCase[] = [];
  /** ...and the last 512 tokens generated at an exp / nbf / iat edge, replayed seconds later when they have crossed it. */
  private readonly edges: DiffCase[] = [];
  /** Recent valid tokens (with their config), for segment mutations and swaps. */
  private readonly recentValid: Array<{ token: string; config: number }> = [];
  private count = 0;

  /** The RSA part of the pool. */
  private readonly fastPool: PoolToken[];

  constructor(
    readonly fx: Fixture,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.fastPool = fx.pool.filter((p) => !p.slow);
  }

  next(): DiffCase {
    const c = this.make();
    this.count++;
    if (this.history.length < 4096) this.history.push(c);
    else this.history[this.count % 4096] = c;
    if (/^claims:(exp|nbf|iat)/.test(c.kind)) {
      if (this.edges.length < 512) this.edges.push(c);
      else this.edges[this.count % 512] = c;
    }
    if (this.count % 64 === 0) {
      if (this.longHistory.length < 1024) this.longHistory.push(c);
      else this.longHistory[(this.count / 64) % 1024] = c;
    }
    return c;
  }

  private remember(token: string, config: number): void {
    if (this.recentValid.length < 256) this.recentValid.push({ token, config });
    else this.recentValid[this.rng.int(256)] = { token, config };
  }

  private make(): DiffCase {
    const { rng, fx } = this;
    const kind = rng.weighted(KINDS);
    const configIndex = rng.int(fx.configs.length);
    const config = fx.configs[configIndex]!;
    const issuerIndex = rng.int(config.issuers.length);
    const spec = config.issuers[issuerIndex]!;
    const now = nowS();
    switch (kind) {
      case "valid": {
        const signer = rng.pick(cheapSigners(fx, spec));
        // Without a kid, jose takes the only usable key for the alg, or refuses when several qualify.
        const withKid = rng.chance(0.97);
        const token = buildToken(header(signer.alg, withKid ? signer.key.kid : undefined, validTyp(rng, spec)), validClaims(rng, spec, now), signer.alg, signer.key.privateKey);
        if (withKid) this.remember(token, configIndex);
        return { token, config: configIndex, kind: withKid ? "valid" : "valid:no-kid" };
      }
      case "repeat": {
        if (this.history.length === 0) return this.make();
        const roll = rng.next();
        const from = roll < 0.3 && this.edges.length > 0 ? this.edges : roll < 0.55 && this.longHistory.length > 0 ? this.longHistory : this.history;
        const earlier = rng.pick(from);
        return { token: earlier.token, config: earlier.config, kind: earlier.kind.startsWith("repeat:") ? earlier.kind : `repeat:${earlier.kind.split(":")[0]}` };
      }
      case "pool": {
        let pooled = rng.pick(fx.pool);
        // Slow-curve tokens cost milliseconds to verify (OpenSSL 3.0): keep them to about one case in a thousand.
        if (pooled.slow && rng.chance(0.9)) pooled = rng.pick(this.fastPool);
        else if (pooled.slow && rng.chance(0.3)) {
          // ES384 and ES512 signatures are 128 and 176 characters: one more and jose's decoder throws, Buffer's drops it.
          const signature = pooled.token.slice(pooled.token.lastIndexOf(".") + 1);
          if (signature.length % 4 === 0) return { token: pooled.token + rng.pick(["A", "w", "_"]), config: pooled.config, kind: "segment:sig-stretch" };
        }
        if (pooled.kind === "pool:valid" && !pooled.slow) this.remember(pooled.token, pooled.config);
        return { token: pooled.token, config: pooled.config, kind: pooled.kind };
      }
      case "claims": {
        const signer = rng.pick(cheapSigners(fx, spec));
        const claims = validClaims(rng, spec, now);
        let label: string;
        let typ: unknown;
        if (spec.strict && rng.chance(0.25)) {
          // RFC 9068 typ, compared like jose's normalizeTyp.
          label = "claims:typ";
          typ = rng.pick<unknown>(["JWT", undefined, 5, "at+jwt ", "application/jwt", "vnd.at+jwt", "at+JWT", "APPLICATION/AT+JWT", "application/at+jwt;x", "at%2Bjwt", "at+jwt\u0130"]);
        } else {
          label = mutateClaims(rng, claims, spec, now);
          if (rng.chance(0.3)) {
            mutateClaims(rng, claims, spec, now);
            label += "+";
          }
          typ = validTyp(rng, spec);
        }
        const token = buildToken(header(signer.alg, signer.key.kid, typ), strip(claims), signer.alg, signer.key.privateKey);
        return { token, config: configIndex, kind: label };
      }
      case "header":
        return { ...this.headerCase(spec, now), config: configIndex };
      case "segment": {
        const base = this.recentValid.length > 0 && rng.chance(0.75) ? rng.pick(this.recentValid) : rng.pick(this.fastPool);
        const others = this.recentValid.length > 0 ? this.recentValid : [base];
        const mutated = mutateSegments(rng, base.token, rng.pick(others).token);
        return { token: mutated.token, config: base.config, kind: mutated.kind };
      }
      case "wrong-key": {
        const signer = rng.pick(cheapSigners(fx, spec));
        const attacker = fx.attackers[signer.alg === "ES256" ? "att-es256" : "att-ed"]!;
        const token = buildToken(header(signer.alg, signer.key.kid, validTyp(rng, spec)), validClaims(rng, spec, now), signer.alg, attacker.privateKey);
        return { token, config: configIndex, kind: "wrong-key" };
      }
      case "raw":
        return { ...this.rawCase(spec, now), config: configIndex };
      case "length": {
        const signer = rng.pick(cheapSigners(fx, spec));
        const claims = validClaims(rng, spec, now);
        const h = header(signer.alg, signer.key.kid, validTyp(rng, spec));
        // Pad so the token lands within ±3 characters of maxTokenLength.
        const sigLength = b64url(signBytes(signer.alg, signer.key.privateKey, Buffer.from("x"))).length;
        const headerLength = b64url(JSON.stringify(h)).length;
        claims["pad"] = "";
        const bare = b64url(JSON.stringify(claims)).length;
        const target = MAX_TOKEN_LENGTH + rng.range(-3, 3);
        const room = target - headerLength - sigLength - 2 - bare;
        claims["pad"] = "p".repeat(Math.max(0, Math.floor((room * 3) / 4)));
        const token = buildToken(h, claims, signer.alg, signer.key.privateKey);
        return { token, config: configIndex, kind: `length:${token.length <= MAX_TOKEN_LENGTH ? "within" : "over"}` };
      }
    }
  }

  private headerCase(spec: IssuerSpec, now: number): { token: string; kind: string } {
    const { rng, fx } = this;
    const signer = rng.pick(cheapSigners(fx, spec));
    const claims = validClaims(rng, spec, now);
    const typ = validTyp(rng, spec);
    const key = signer.key.privateKey;
    const kind = rng.weighted([
      [3, "alg-swap"],
      [2, "none"],
      [3, "hmac"],
      [2, "alg-odd"],
      [3, "kid"],
      [4, "extra-member"],
      [2, "crit"],
      [2, "raw-header"],
      [2, "key-rules"],
    ] as const);
    let token: string;
    switch (kind) {
      case "alg-swap": {
        // Signed with the signer's alg, labelled with another.
        const alg = rng.pick(["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"].filter((a) => a !== signer.alg));
        token = buildToken(header(alg, signer.key.kid, typ), claims, signer.alg, key);
        break;
      }
      case "none": {
        const h = b64url(JSON.stringify(header(rng.pick(["none", "None", "NONE"]), signer.key.kid, typ)));
        const p = b64url(JSON.stringify(claims));
        token = `${h}.${p}.${rng.pick(["", "AAAA", b64url(signBytes(signer.alg, key, Buffer.from(`${h}.${p}`)))])}`;
        break;
      }
      case "hmac": {
        const alg = rng.pick(["HS256", "HS384", "HS512"]);
        token = buildToken(header(alg, rng.pick([signer.key.kid, "rs", "hmac-1"]), typ), claims, alg, rng.pick(fx.hmacSecrets));
        break;
      }
      case "alg-odd": {
        const alg = rng.pick<unknown>(["es256", "ES256 ", "", null, 256, ["ES256"], "RS1", "ML-DSA-44", undefined]);
        token = buildToken(header(alg, signer.key.kid, typ), claims, signer.alg, key);
        break;
      }
      case "kid": {
        const kid = rng.pick<unknown>([
          undefined, // unique candidate for some algs (ES384, ES512, Ed25519), several for others
          "unknown-kid",
          5,
          null,
          "",
          ["es-1"],
          signer.key.kid.toUpperCase(),
          "rs", // a key of the wrong type for the alg
          "es-enc", // use: "enc"
          "es-signops", // key_ops without "verify"
          "x25519",
          "hmac-1",
          rng.pick(Object.keys(fx.keys)),
        ]);
        // Sign with the key the kid names when it can sign this alg, else with the signer's.
        const named = typeof kid === "string" ? fx.keys[kid] : undefined;
        const canSign = named !== undefined && named.privateKey.asymmetricKeyType === signer.key.privateKey.asymmetricKeyType && named.name !== "x25519";
        const signWith = canSign && named.privateKey.asymmetricKeyDetails?.namedCurve === signer.key.privateKey.asymmetricKeyDetails?.namedCurve ? named.privateKey : key;
        token = buildToken(header(signer.alg, kid, typ), claims, signer.alg, signWith);
        break;
      }
      case "extra-member": {
        const name = rng.pick(["jku", "jwk", "x5c", "x5u", "x5t", "cty", "b64", "zip", "enc", "foo", "__proto__", "url", "nonce", "crit2"]);
        const value = rng.pick<unknown>([true, false, "x", 1, null, { kty: "EC" }, ["a"], "https://evil.test/jwks"]);
        token = buildToken(header(signer.alg, signer.key.kid, typ, { [name]: value }), claims, signer.alg, key);
        break;
      }
      case "crit": {
        const variants: Array<Record<string, unknown>> = [
          { crit: ["b64"], b64: false },
          { crit: ["b64"], b64: true },
          { crit: ["b64", "b64"], b64: true },
          { crit: ["exp"], exp: now + 100 },
          { crit: [] },
          { crit: "b64", b64: true },
          { crit: ["b64"] },
          { crit: [""] },
        ];
        // The payload stays base64url-encoded even under b64:false (a JWT refuses an unencoded payload anyway).
        token = buildToken(header(signer.alg, signer.key.kid, typ, rng.pick(variants)), claims, signer.alg, key);
        break;
      }
      case "raw-header": {
        const h = header(signer.alg, signer.key.kid, typ);
        const json = JSON.stringify(h);
        const raw = rng.pick<Buffer | string>([
          Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]), // BOM: jose's TextDecoder strips it
          ` ${json}\n`,
          json.replace('"alg"', '"alg":"none","alg"'), // duplicate: last wins
          json.replace('"alg"', '"\\u0061lg"'),
          json.slice(0, -1),
          `[${json}]`,
          "null",
          Buffer.concat([Buffer.from(json.slice(0, -1)), Buffer.from(',"x":"\xff"}', "latin1")]), // invalid UTF-8
          json.replace("{", '{"__proto__":{"alg":"none"},'),
        ]);
        token = buildToken(raw, claims, signer.alg, key);
        break;
      }
      case "key-rules": {
        // Keys whose JWK restricts them: Ed25519 alg on ed-1 (alg EdDSA) or ed-any (no alg);
        // RSA-any signing PS/RS; ES256 on es-ops (key_ops ["verify"]).
        const pick = rng.pick([
          ["Ed25519", "ed-1"],
          ["Ed25519", "ed-any"],
          ["EdDSA", "ed-any"],
          ["ES256", "es-ops"],
          ["ES256", "es-enc"],
          ["ES256", "es-signops"],
        ] as const);
        token = buildToken(header(pick[0], pick[1], typ), claims, pick[0], fx.keys[pick[1]]!.privateKey);
        break;
      }
    }
    return { token, kind: `header:${kind}` };
  }

  private rawCase(spec: IssuerSpec, now: number): { token: string; kind: string } {
    const { rng, fx } = this;
    const signer = rng.pick(cheapSigners(fx, spec));
    const claims = validClaims(rng, spec, now);
    const json = JSON.stringify(claims);
    const kind = rng.weighted([
      [2, "bom"],
      [2, "invalid-utf8"],
      [2, "duplicate"],
      [2, "infinity"],
      [1, "whitespace"],
      [1, "escaped-key"],
      [1, "not-object"],
      [1, "trailing"],
      [1, "proto"],
      [1, "deep"],
      [1, "number-forms"],
      [1, "utf8"],
      [2, "stretch"],
    ] as const);
    if (kind === "stretch") return { token: this.stretched(signer, spec, json), kind: "raw:stretch" };
    const replaceNumber = (name: string, text: string) => json.replace(new RegExp(`"${name}":[-0-9.e]+`), `"${name}":${text}`);
    let raw: Buffer | string;
    switch (kind) {
      case "bom":
        raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]);
        break;
      case "invalid-utf8":
        raw = Buffer.concat([Buffer.from(json.slice(0, -1)), Buffer.from(rng.pick([',"n":"\xff"}', ',"n":"\xc0\xaf"}', ',"n":"\xed\xa0\x80"}', ',"n":"\xe2\x82"}']), "latin1")]);
        break;
      case "duplicate":
        raw = json.replace("{", rng.pick(['{"sub":"",', '{"sub":"alice","exp":1,', '{"iss":"https://evil.test",', '{"aud":"nope",']));
        if (rng.chance(0.5)) raw = `${json.slice(0, -1)},${rng.pick(['"sub":""', '"exp":1', `"exp":${now + 100}`, '"aud":"nope"', `"iss":"${spec.issuer}"`])}}`;
        break;
      case "infinity":
        raw = rng.pick([replaceNumber("exp", "1e400"), replaceNumber("nbf", "-1e400"), replaceNumber("iat", rng.pick(["1e400", "-1e400"])), replaceNumber("exp", "-1e400")]);
        if (!raw.includes('"nbf"') && rng.chance(0.5)) raw = `${raw.slice(0, -1)},"nbf":-1e400}`;
        break;
      case "whitespace":
        raw = ` \n\t${json.replace(/,/g, " ,\n ")}\r\n`;
        break;
      case "escaped-key":
        raw = json.replace('"sub"', '"\\u0073ub"').replace('"exp"', rng.chance(0.5) ? '"\\u0065xp"' : '"exp"');
        break;
      case "not-object":
        raw = rng.pick([`[${json}]`, "null", '"x"', "42", "true", ""]);
        break;
      case "trailing":
        raw = `${json}${rng.pick([" x", "}", ",", "\u0000"])}`;
        break;
      case "proto":
        raw = json.replace("{", rng.pick(['{"__proto__":{"sub":"alice"},', '{"__proto__":null,', '{"constructor":{"prototype":{}},']));
        break;
      case "deep": {
        const depth = rng.range(10, 1000);
        raw = `${json.slice(0, -1)},"deep":${"[".repeat(depth)}${"]".repeat(depth)}}`;
        break;
      }
      case "number-forms":
        raw = rng.pick([
          replaceNumber("exp", `${now + 1000}.000`),
          replaceNumber("exp", `${(now + 1000) / 1e9}e9`),
          replaceNumber("exp", `"${now + 1000}"`),
          replaceNumber("exp", `-0`),
          replaceNumber("exp", `${now + 1000}E0`),
          replaceNumber("iat", "1e-400"),
        ]);
        break;
      case "utf8":
        raw = json.replace("{", '{"name":"Zoë 😀 \\ud800 \u2028",');
        break;
    }
    const token = buildToken(header(signer.alg, signer.key.kid, validTyp(rng, spec)), raw, signer.alg, signer.key.privateKey);
    return { token, kind: `raw:${kind}` };
  }

  /**
   * A header or payload segment one character longer than a multiple of 4,
   * signed as such: jose's base64url decoder throws on it; Buffer's would
   * silently drop the extra character and read valid JSON (padded with
   * spaces so the segment is a multiple of 4 first).
   */
  private stretched(signer: Signer, spec: IssuerSpec, json: string): string {
    const { rng } = this;
    const segment = (text: string) => {
      let padded = text;
      while (b64url(padded).length % 4 !== 0) padded += " ";
      return b64url(padded) + rng.pick(["A", "Q", "g", "w", "_"]);
    };
    const headerJson = JSON.stringify(header(signer.alg, signer.key.kid, validTyp(rng, spec)));
    const which = rng.int(3);
    const h = which !== 1 ? segment(headerJson) : b64url(headerJson);
    const p = which !== 0 ? segment(json) : b64url(json);
    const input = `${h}.${p}`;
    return `${input}.${b64url(signBytes(signer.alg, signer.key.privateKey, Buffer.from(input)))}`;
  }
}

// ---------------------------------------------------------------------------
// The reference decision
// ---------------------------------------------------------------------------

export type Decision = { accepted: true; payload: Record<string, unknown> } | { accepted: false; reason: string };

/**
 * jose.jwtVerify with the same JWKS and options, plus the package's
 * documented rules. Several issuers: each one's options pin `iss`, so only
 * the issuer named by the payload's `iss` (decoded exactly as jwtVerify
 * decodes it, by jose.decodeJwt) can accept; when the payload does not
 * decode, jwtVerify cannot accept under any of them.
 */
export async function referenceVerify(fx: Reference, config: DiffConfig, token: string, currentDate?: Date): Promise<Decision> {
  if (token.length === 0) return { accepted: false, reason: "empty" };
  if (token.length > MAX_TOKEN_LENGTH) return { accepted: false, reason: "too long" };
  if (!COMPACT_JWS.test(token)) return { accepted: false, reason: "not compact" };
  let candidates = config.reference;
  if (candidates.length > 1) {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch (error) {
      return { accepted: false, reason: `payload: ${(error as Error).message}` };
    }
    candidates = candidates.filter((options) => options.issuer === iss);
    if (candidates.length === 0) return { accepted: false, reason: `iss ${JSON.stringify(iss)} names no configured issuer` };
  }
  let lastReason = "";
  for (const options of candidates) {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, fx.localJwks, currentDate === undefined ? options : { ...options, currentDate });
      if (typeof payload.sub !== "string" || payload.sub === "") return { accepted: false, reason: "sub not a non-empty string" };
      if (!(payload.sub as unknown as { isWellFormed(): boolean }).isWellFormed()) return { accepted: false, reason: "sub not well-formed" };
      const notAccess = accessTokenRule(protectedHeader, payload);
      if (notAccess !== undefined) return { accepted: false, reason: notAccess };
      return { accepted: true, payload };
    } catch (error) {
      const e = error as { code?: string; message?: string };
      lastReason = `${e.code ?? "error"}: ${e.message ?? String(error)}`;
    }
  }
  return { accepted: false, reason: lastReason };
}

/**
 * The package's documented access-token rules, written independently of its
 * code: header typ absent, "JWT" or "at+jwt" (any case, "application/"
 * optional); no payload "events", "nonce", "at_hash" or "c_hash".
 */
function accessTokenRule(header: Record<string, unknown>, payload: Record<string, unknown>): string | undefined {
  const typ = header["typ"];
  if (typ !== undefined) {
    const media = typeof typ === "string" ? typ.toLowerCase().replace(/^application\//, "") : undefined;
    if (media !== "jwt" && media !== "at+jwt") return `typ ${JSON.stringify(typ)} is not an access token type`;
  }
  if (Object.hasOwn(payload, "events")) return "events claim";
  for (const claim of ["nonce", "at_hash", "c_hash"]) if (Object.hasOwn(payload, claim)) return `${claim} claim`;
  return undefined;
}

/** The token's parts, for a disagreement report (test keys only: nothing secret). */
export function describeToken(token: string): string {
  const parts = token.split(".");
  const show = (segment: string | undefined) => {
    if (segment === undefined) return "(absent)";
    const bytes = Buffer.from(segment, "base64url");
    const text = bytes.toString("utf8");
    return text.length > 600 ? `${text.slice(0, 600)}… (${text.length} chars)` : text;
  };
  return [
    `  token (${token.length} chars, ${parts.length} segments): ${token.length > 400 ? `${token.slice(0, 400)}…` : token}`,
    `  header:    ${show(parts[0])}`,
    `  payload:   ${show(parts[1])}`,
    `  signature: ${parts[2] === undefined ? "(absent)" : `${Buffer.from(parts[2], "base64url").toString("hex").slice(0, 80)}… (${parts[2].length} chars)`}`,
  ].join("\n");
}
