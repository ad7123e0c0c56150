/**
 * The DPoP proof differential: the synchronous node:crypto path (fastProof)
 * against the jose reference (joseProof: decodeProtectedHeader,
 * calculateJwkThumbprint, importJWK, jwtVerify, with no key kept between
 * proofs), on DPOP_DIFFERENTIAL_PROOFS (default 10,000) generated proofs:
 * valid ones for ES256/ES384/ES512/EdDSA/RS256/PS256 (with the optional
 * header and key members clients send), and mutated ones: flipped signature
 * bits, high-S ECDSA signatures, non-canonical base64url padding bits in
 * every segment, headers and payloads altered after signing, wrong `typ`,
 * private or secret key members, `none` and HS256, algorithm and key-type
 * mismatches, weak RSA keys, off-curve points, malformed base64url,
 * duplicate JSON members, `crit` and `b64`, payloads that are not objects,
 * and `iat`/`nbf`/`exp` around the clock tolerance.
 *
 * It fails if the fast path accepts a proof the reference refuses, or
 * reports another thumbprint or payload; it also requires the fast path to
 * decide every plain valid proof itself (else it would prove nothing), and
 * compares the RFC 7638 thumbprint with jose.calculateJwkThumbprint on every
 * generated key, odd ones included.
 *
 * DPOP_DIFFERENTIAL_SEED=<n> replays a run (the seed is printed).
 */
import assert from "node:assert/strict";
import { constants, createHmac, generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { before, describe, it } from "node:test";
import { calculateJwkThumbprint } from "jose";
import { resolveDpopOptions, type DpopSettings } from "../../src/dpop/dpopOptions.js";
import { fastProof, jwkThumbprint, type CheckedProof } from "../../src/dpop/fastProof.js";
import { accessTokenHash, joseProof } from "../../src/dpop/verifyDpopProof.js";
import { LruMap } from "../../src/keys/lruMap.js";

const PROOFS = Number(process.env["DPOP_DIFFERENTIAL_PROOFS"] ?? 10_000);
const SEED = process.env["DPOP_DIFFERENTIAL_SEED"] ? Number(process.env["DPOP_DIFFERENTIAL_SEED"]) : (Date.now() % 2 ** 31) >>> 0;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const HTU = "https://api.example.com/orders";
const TOKEN = "an-access-token";
const TOLERANCE = 5;

/** mulberry32: a small seeded generator, so a run can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Alg = "ES256" | "ES384" | "ES512" | "EdDSA" | "Ed25519" | "RS256" | "PS256";

interface Key {
  alg: Alg;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
  privateJwk: Record<string, unknown>;
}

function makeKey(alg: Alg, modulusLength = 2048): Key {
  const pair =
    alg === "ES256"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : alg === "ES384"
        ? generateKeyPairSync("ec", { namedCurve: "P-384" })
        : alg === "ES512"
          ? generateKeyPairSync("ec", { namedCurve: "P-521" })
          : alg === "EdDSA" || alg === "Ed25519"
            ? generateKeyPairSync("ed25519")
            : generateKeyPairSync("rsa", { modulusLength });
  return { alg, privateKey: pair.privateKey, publicJwk: pair.publicKey.export({ format: "jwk" }), privateJwk: pair.privateKey.export({ format: "jwk" }) };
}

const b64 = (bytes: Buffer | string): string => Buffer.from(bytes).toString("base64url");

/** The JWS signature of `input` with `key` for `alg` (node:crypto). */
function signWith(alg: string, key: KeyObject, input: string): Buffer {
  const data = Buffer.from(input);
  switch (alg) {
    case "ES256":
    case "ES384":
    case "ES512":
      return sign(`sha${alg.slice(2)}`, data, { key, dsaEncoding: "ieee-p1363" });
    case "PS256":
      return sign("sha256", data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case "RS256":
      return sign("sha256", data, key);
    default:
      return sign(null, data, key);
  }
}

/** Curve orders, for the high-S twin of an ECDSA signature (s → n − s: still valid for OpenSSL and WebCrypto). */
const ORDERS: Record<string, bigint> = {
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  ES384: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  ES512: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

function highS(alg: string, signature: Buffer): Buffer {
  const half = signature.length / 2;
  const s = BigInt(`0x${signature.subarray(half).toString("hex")}`);
  const twin = ORDERS[alg]! - s;
  return Buffer.concat([signature.subarray(0, half), Buffer.from(twin.toString(16).padStart(half * 2, "0"), "hex")]);
}

/** The same bytes with a different last character: the unused low bits of the last base64url character set (when there are any). */
function paddingBits(segment: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unused = segment.length % 4 === 2 ? 4 : segment.length % 4 === 3 ? 2 : 0;
  if (unused === 0) return segment;
  const last = alphabet.indexOf(segment.at(-1)!);
  return segment.slice(0, -1) + alphabet[last | ((1 << unused) - 1)]!;
}

interface Case {
  kind: string;
  proof: string;
  /** A plain valid proof: the fast path must decide it itself. */
  plain?: boolean;
  /** The key the header carries, for the thumbprint comparison. */
  jwk?: unknown;
}

interface Keys {
  es256: Key;
  es256b: Key;
  es384: Key;
  es512: Key;
  ed: Key;
  rs: Key;
  ps: Key;
  rsWeak: Key;
}

function generator(keys: Keys, nowS: number, random: () => number) {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const good: Array<[Alg, Key]> = [
    ["ES256", keys.es256],
    ["ES384", keys.es384],
    ["ES512", keys.es512],
    ["EdDSA", keys.ed],
    ["Ed25519", keys.ed],
    ["RS256", keys.rs],
    ["PS256", keys.ps],
  ];
  const claims = (extra: Record<string, unknown> = {}) => ({ htm: "GET", htu: HTU, iat: nowS - Math.floor(random() * 30), jti: randomUUID(), ath: accessTokenHash(TOKEN), ...extra });
  const assemble = (headerText: string, payloadText: string, alg: string, key: KeyObject) => {
    const input = `${b64(headerText)}.${b64(payloadText)}`;
    return `${input}.${b64(signWith(alg, key, input))}`;
  };
  const signed = (header: Record<string, unknown>, payload: Record<string, unknown>, alg: string, key: KeyObject) => assemble(JSON.stringify(header), JSON.stringify(payload), alg, key);
  const setSegment = (proof: string, index: number, value: string) => {
    const parts = proof.split(".");
    parts[index] = value;
    return parts.join(".");
  };

  const cases: Array<[string, number, () => Case]> = [
    [
      "valid",
      30,
      () => {
        const [alg, key] = pick(good);
        const jwk = key.publicJwk;
        return { kind: `valid:${alg}`, proof: signed({ typ: "dpop+jwt", alg, jwk }, claims(), alg, key.privateKey), plain: true, jwk };
      },
    ],
    [
      "optional",
      8,
      () => {
        const [alg, key] = pick(good);
        const variant = pick(["kid", "jwkAlg", "use", "extTrue", "extFalse", "keyOps", "typLong", "typCase", "order", "claims", "exp", "nbf", "kidHeader"]);
        let jwk: Record<string, unknown> = { ...key.publicJwk };
        const header: Record<string, unknown> = { typ: "dpop+jwt", alg };
        let payload: Record<string, unknown> = claims();
        if (variant === "kid") jwk.kid = randomUUID();
        if (variant === "jwkAlg") jwk.alg = alg;
        if (variant === "use") jwk.use = "sig";
        if (variant === "extTrue") jwk.ext = true;
        if (variant === "extFalse") jwk.ext = false;
        if (variant === "keyOps") jwk.key_ops = ["verify"];
        if (variant === "typLong") header.typ = "application/dpop+jwt";
        if (variant === "typCase") header.typ = "DPoP+JWT";
        if (variant === "order") jwk = Object.fromEntries(Object.entries(jwk).reverse());
        if (variant === "claims") payload = { ...payload, nonce: "n", extra: { deep: [1, 2] } };
        if (variant === "exp") payload = { ...payload, exp: nowS + pick([-TOLERANCE - 1, -TOLERANCE, -TOLERANCE + 1, 0, 60]) };
        if (variant === "nbf") payload = { ...payload, nbf: nowS + pick([TOLERANCE - 1, TOLERANCE, TOLERANCE + 1, 0, -60]) };
        if (variant === "kidHeader") header.kid = "k1";
        header.jwk = jwk;
        return { kind: `optional:${variant}`, proof: signed(header, payload, alg, key.privateKey), jwk };
      },
    ],
    [
      "signature",
      12,
      () => {
        const [alg, key] = pick(good);
        const proof = signed({ typ: "dpop+jwt", alg, jwk: key.publicJwk }, claims(), alg, key.privateKey);
        const signature = Buffer.from(proof.split(".")[2]!, "base64url");
        const variant = pick(["flip", "flip", "truncate", "extend", "highS", "padding", "otherKey", "empty"]);
        let bytes: Buffer = Buffer.from(signature);
        if (variant === "flip") bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8);
        if (variant === "truncate") bytes = bytes.subarray(0, bytes.length - 1 - Math.floor(random() * 3));
        if (variant === "extend") bytes = Buffer.concat([bytes, Buffer.from([0])]);
        if (variant === "highS") bytes = alg.startsWith("ES") ? highS(alg, bytes) : bytes;
        if (variant === "otherKey") {
          // Another key of the same type where there is one, else a key of another type (signWith then fails: zero bytes).
          const other = alg === "RS256" ? keys.ps : alg === "PS256" ? keys.rs : keys.es256b;
          const input = proof.split(".").slice(0, 2).join(".");
          try {
            bytes = signWith(alg, other.privateKey, input);
          } catch {
            bytes = Buffer.alloc(bytes.length);
          }
        }
        if (variant === "empty") bytes = Buffer.alloc(0);
        const segment = variant === "padding" ? paddingBits(proof.split(".")[2]!) : b64(bytes);
        return { kind: `signature:${variant}`, proof: setSegment(proof, 2, segment) };
      },
    ],
    [
      "segments",
      10,
      () => {
        const [alg, key] = pick(good);
        const proof = signed({ typ: "dpop+jwt", alg, jwk: key.publicJwk }, claims(), alg, key.privateKey);
        const index = Math.floor(random() * 3);
        const parts = proof.split(".");
        const segment = parts[index]!;
        const variant = pick(["padding", "dropChar", "plus", "slash", "equals", "space", "nonAscii", "dot", "swapChar", "empty"]);
        const at = Math.floor(random() * segment.length);
        const edits: Record<string, () => string> = {
          padding: () => paddingBits(segment),
          dropChar: () => segment.slice(0, at) + segment.slice(at + 1),
          plus: () => `${segment.slice(0, at)}+${segment.slice(at + 1)}`,
          slash: () => `${segment.slice(0, at)}/${segment.slice(at + 1)}`,
          equals: () => `${segment}=`,
          space: () => `${segment.slice(0, at)} ${segment.slice(at)}`,
          nonAscii: () => `${segment.slice(0, at)}é${segment.slice(at + 1)}`,
          dot: () => `${segment.slice(0, at)}.${segment.slice(at)}`,
          swapChar: () => `${segment.slice(0, at)}${segment[at] === "A" ? "B" : "A"}${segment.slice(at + 1)}`,
          empty: () => "",
        };
        return { kind: `segments:${variant}`, proof: setSegment(proof, index, edits[variant]!()) };
      },
    ],
    [
      "altered",
      6,
      () => {
        const [alg, key] = pick(good);
        const proof = signed({ typ: "dpop+jwt", alg, jwk: key.publicJwk }, claims(), alg, key.privateKey);
        if (random() < 0.5) return { kind: "altered:payload", proof: setSegment(proof, 1, b64(JSON.stringify(claims({ htm: "POST" })))) };
        const [other, otherKey] = pick(good);
        return { kind: "altered:header", proof: setSegment(proof, 0, b64(JSON.stringify({ typ: "dpop+jwt", alg: other, jwk: otherKey.publicJwk }))) };
      },
    ],
    [
      "typ",
      5,
      () => {
        const [alg, key] = pick(good);
        const typ = pick<unknown>(["JWT", "dpop", "at+jwt", "application/jwt", "dpop+jwt ", undefined, 1, null, ["dpop+jwt"]]);
        const header: Record<string, unknown> = { alg, jwk: key.publicJwk };
        if (typ !== undefined) header.typ = typ;
        return { kind: `typ:${JSON.stringify(typ) ?? "missing"}`, proof: signed(header, claims(), alg, key.privateKey) };
      },
    ],
    [
      "key",
      12,
      () => {
        const [alg, key] = pick(good);
        const variant = pick([
          "private",
          "secret",
          "keyOpsSign",
          "keyOpsBoth",
          "keyOpsBad",
          "extString",
          "useEnc",
          "jwkAlgOther",
          "x5c",
          "coordinatePadding",
          "coordinateLong",
          "offCurve",
          "leadingZero",
          "ktyMissing",
          "crvOther",
          "notObject",
          "array",
          "emptyMember",
          "numberMember",
          "missing",
          "proto",
          "weakRsa",
        ]);
        let jwk: unknown = { ...key.publicJwk };
        const edit = jwk as Record<string, unknown>;
        let signer = key.privateKey;
        let useAlg: string = alg;
        const toggle = (text: string) => (text.at(-1) === "A" ? `${text.slice(0, -1)}B` : `${text.slice(0, -1)}A`);
        switch (variant) {
          case "private":
            jwk = { ...key.privateJwk };
            break;
          case "secret":
            edit.k = "c2VjcmV0";
            break;
          case "keyOpsSign":
            edit.key_ops = ["sign"];
            break;
          case "keyOpsBoth":
            edit.key_ops = ["verify", "sign"];
            break;
          case "keyOpsBad":
            edit.key_ops = ["verify", "verify"];
            break;
          case "extString":
            edit.ext = "true";
            break;
          case "useEnc":
            edit.use = "enc";
            break;
          case "jwkAlgOther":
            edit.alg = alg === "RS256" ? "PS256" : "RS256";
            break;
          case "x5c":
            edit.x5c = ["MIIB"];
            break;
          case "coordinatePadding":
            if (typeof edit.x === "string") edit.x = paddingBits(edit.x);
            else edit.n = paddingBits(edit.n as string);
            break;
          case "coordinateLong":
            if (typeof edit.x === "string") edit.x = `AA${edit.x}`;
            else edit.e = `AA${edit.e as string}`;
            break;
          case "offCurve":
            if (typeof edit.y === "string") edit.y = toggle(edit.y);
            else if (typeof edit.x === "string") edit.x = toggle(edit.x);
            else edit.n = toggle(edit.n as string);
            break;
          case "leadingZero":
            if (typeof edit.n === "string") edit.n = b64(Buffer.concat([Buffer.from([0]), Buffer.from(edit.n, "base64url")]));
            else if (typeof edit.y === "string") edit.y = b64(Buffer.concat([Buffer.from([0]), Buffer.from(edit.y, "base64url")]));
            break;
          case "ktyMissing":
            delete edit.kty;
            break;
          case "crvOther":
            if (typeof edit.crv === "string") edit.crv = edit.crv === "P-256" ? "P-384" : edit.crv === "Ed25519" ? "Ed448" : "P-256";
            else edit.kty = "EC";
            break;
          case "notObject":
            jwk = JSON.stringify(key.publicJwk);
            break;
          case "array":
            jwk = [key.publicJwk];
            break;
          case "emptyMember":
            if (typeof edit.x === "string") edit.x = "";
            else edit.e = "";
            break;
          case "numberMember":
            if (typeof edit.crv === "string") edit.crv = 1;
            else edit.e = 65537;
            break;
          case "missing":
            jwk = undefined;
            break;
          case "proto":
            break;
          case "weakRsa":
            jwk = keys.rsWeak.publicJwk;
            signer = keys.rsWeak.privateKey;
            useAlg = "RS256";
            break;
        }
        const header: Record<string, unknown> = { typ: "dpop+jwt", alg: useAlg };
        if (jwk !== undefined) header.jwk = jwk;
        let headerText = JSON.stringify(header);
        // An own "__proto__" member: JSON.parse makes it a plain property, jose and the fast path must read it alike.
        if (variant === "proto") headerText = headerText.replace('"jwk":{', '"jwk":{"__proto__":{"d":"AAAA"},');
        const payload = JSON.stringify(claims());
        return { kind: `key:${variant}`, proof: assemble(headerText, payload, useAlg, signer), jwk };
      },
    ],
    [
      "alg",
      6,
      () => {
        const variant = pick(["none", "HS256", "esWithEd", "es384WithP256", "rsWithPssSig", "psWithRsSig", "edWithEc", "unknown", "notString", "missing", "es512WithP384"]);
        const payload = claims();
        const es = keys.es256;
        switch (variant) {
          case "none":
            return { kind: "alg:none", proof: `${b64(JSON.stringify({ typ: "dpop+jwt", alg: "none", jwk: es.publicJwk }))}.${b64(JSON.stringify(payload))}.AAAA` };
          case "HS256": {
            const input = `${b64(JSON.stringify({ typ: "dpop+jwt", alg: "HS256", jwk: es.publicJwk }))}.${b64(JSON.stringify(payload))}`;
            return { kind: "alg:HS256", proof: `${input}.${b64(createHmac("sha256", JSON.stringify(es.publicJwk)).update(input).digest())}` };
          }
          case "esWithEd":
            return { kind: "alg:esWithEd", proof: signed({ typ: "dpop+jwt", alg: "ES256", jwk: keys.ed.publicJwk }, payload, "EdDSA", keys.ed.privateKey) };
          case "es384WithP256":
            return { kind: "alg:es384WithP256", proof: signed({ typ: "dpop+jwt", alg: "ES384", jwk: es.publicJwk }, payload, "ES384", es.privateKey) };
          case "es512WithP384":
            return { kind: "alg:es512WithP384", proof: signed({ typ: "dpop+jwt", alg: "ES512", jwk: keys.es384.publicJwk }, payload, "ES512", keys.es384.privateKey) };
          case "rsWithPssSig":
            return { kind: "alg:rsWithPssSig", proof: signed({ typ: "dpop+jwt", alg: "RS256", jwk: keys.rs.publicJwk }, payload, "PS256", keys.rs.privateKey) };
          case "psWithRsSig":
            return { kind: "alg:psWithRsSig", proof: signed({ typ: "dpop+jwt", alg: "PS256", jwk: keys.ps.publicJwk }, payload, "RS256", keys.ps.privateKey) };
          case "edWithEc":
            return { kind: "alg:edWithEc", proof: signed({ typ: "dpop+jwt", alg: "EdDSA", jwk: es.publicJwk }, payload, "ES256", es.privateKey) };
          case "unknown":
            return { kind: "alg:unknown", proof: signed({ typ: "dpop+jwt", alg: "ES256K", jwk: es.publicJwk }, payload, "ES256", es.privateKey) };
          case "notString":
            return { kind: "alg:notString", proof: signed({ typ: "dpop+jwt", alg: ["ES256"], jwk: es.publicJwk }, payload, "ES256", es.privateKey) };
          default:
            return { kind: "alg:missing", proof: signed({ typ: "dpop+jwt", jwk: es.publicJwk }, payload, "ES256", es.privateKey) };
        }
      },
    ],
    [
      "json",
      8,
      () => {
        const [alg, key] = pick(good);
        const jwkText = JSON.stringify(key.publicJwk);
        const payloadText = JSON.stringify(claims());
        const variant = pick(["dupAlg", "dupTyp", "dupJwk", "dupIat", "dupHtm", "bom", "whitespace", "payloadArray", "payloadString", "payloadNull", "payloadNumber", "payloadNotJson", "headerArray", "invalidUtf8", "escapedTyp", "bigIat"]);
        let headerText = `{"typ":"dpop+jwt","alg":"${alg}","jwk":${jwkText}}`;
        let payload = payloadText;
        switch (variant) {
          case "dupAlg":
            headerText = `{"typ":"dpop+jwt","alg":"HS256","alg":"${alg}","jwk":${jwkText}}`;
            break;
          case "dupTyp":
            headerText = `{"typ":"JWT","alg":"${alg}","jwk":${jwkText},"typ":"dpop+jwt"}`;
            break;
          case "dupJwk":
            headerText = `{"typ":"dpop+jwt","alg":"${alg}","jwk":${JSON.stringify(keys.es256b.publicJwk)},"jwk":${jwkText}}`;
            break;
          case "dupIat":
            payload = `${payloadText.slice(0, -1)},"iat":"later"}`;
            break;
          case "dupHtm":
            payload = `{"htm":"POST",${payloadText.slice(1)}`;
            break;
          case "bom":
            payload = `\uFEFF${payloadText}`;
            break;
          case "whitespace":
            headerText = ` { "typ" : "dpop+jwt" , "alg" : "${alg}" , "jwk" : ${jwkText} } `;
            break;
          case "payloadArray":
            payload = `[${payloadText}]`;
            break;
          case "payloadString":
            payload = JSON.stringify(payloadText);
            break;
          case "payloadNull":
            payload = "null";
            break;
          case "payloadNumber":
            payload = "1";
            break;
          case "payloadNotJson":
            payload = payloadText.slice(0, -1);
            break;
          case "headerArray":
            headerText = `[${headerText}]`;
            break;
          case "invalidUtf8": {
            const input = `${Buffer.from(headerText).toString("base64url")}.${Buffer.concat([Buffer.from(payloadText.slice(0, -1)), Buffer.from(',"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]).toString("base64url")}`;
            return { kind: "json:invalidUtf8", proof: `${input}.${b64(signWith(alg, key.privateKey, input))}` };
          }
          case "escapedTyp":
            headerText = `{"typ":"dpop\\u002bjwt","alg":"${alg}","jwk":${jwkText}}`;
            break;
          case "bigIat":
            payload = `${payloadText.slice(0, -1)},"exp":1e400}`;
            break;
        }
        return { kind: `json:${variant}`, proof: assemble(headerText, payload, alg, key.privateKey) };
      },
    ],
    [
      "crit",
      5,
      () => {
        const [alg, key] = pick(good);
        const variant = pick(["b64false", "critB64false", "critB64true", "critExp", "critEmpty", "critNotArray", "b64true"]);
        const header: Record<string, unknown> = { typ: "dpop+jwt", alg, jwk: key.publicJwk };
        if (variant === "b64false") header.b64 = false;
        if (variant === "critB64false") Object.assign(header, { crit: ["b64"], b64: false });
        if (variant === "critB64true") Object.assign(header, { crit: ["b64"], b64: true });
        if (variant === "critExp") Object.assign(header, { crit: ["exp"], exp: 1 });
        if (variant === "critEmpty") header.crit = [];
        if (variant === "critNotArray") header.crit = "b64";
        if (variant === "b64true") header.b64 = true;
        return { kind: `crit:${variant}`, proof: signed(header, claims(), alg, key.privateKey) };
      },
    ],
    [
      "claims",
      8,
      () => {
        const [alg, key] = pick(good);
        const variant = pick(["expPast", "expEdge", "nbfFuture", "nbfEdge", "iatString", "iatMissing", "iatOld", "expString", "nbfString", "iatNull", "expNull"]);
        const edits: Record<string, Record<string, unknown>> = {
          expPast: { exp: nowS - 60 },
          expEdge: { exp: nowS - TOLERANCE },
          nbfFuture: { nbf: nowS + 60 },
          nbfEdge: { nbf: nowS + TOLERANCE + 1 },
          iatString: { iat: String(nowS) },
          iatMissing: { iat: undefined },
          iatOld: { iat: nowS - 3600 },
          expString: { exp: String(nowS + 60) },
          nbfString: { nbf: String(nowS) },
          iatNull: { iat: null },
          expNull: { exp: null },
        };
        return { kind: `claims:${variant}`, proof: signed({ typ: "dpop+jwt", alg, jwk: key.publicJwk }, claims(edits[variant]), alg, key.privateKey) };
      },
    ],
    [
      "header",
      4,
      () => {
        const [alg, key] = pick(good);
        const member = pick(["x5c", "jku", "cty", "zip", "nonce", "jwkString"]);
        const header: Record<string, unknown> = { typ: "dpop+jwt", alg, jwk: key.publicJwk };
        if (member === "jwkString") header.jwk = JSON.stringify(key.publicJwk);
        else header[member] = member === "x5c" ? ["MIIB"] : "x";
        return { kind: `header:${member}`, proof: signed(header, claims(), alg, key.privateKey) };
      },
    ],
  ];
  const total = cases.reduce((sum, [, weight]) => sum + weight, 0);
  return (): Case => {
    let roll = random() * total;
    for (const [, weight, make] of cases) {
      roll -= weight;
      if (roll < 0) return make();
    }
    return cases[0]![2]();
  };
}

type Decision = { accepted: true; proof: CheckedProof } | { accepted: false; reason: string };

/** The reference: the package's shape check, then jose with nothing kept between proofs. */
async function reference(proof: string, settings: DpopSettings, nowMs: number): Promise<Decision> {
  if (!COMPACT_JWS.test(proof)) return { accepted: false, reason: "not one compact JWS" };
  try {
    return { accepted: true, proof: await joseProof(proof, { ...settings, keys: new LruMap(1) }, nowMs) };
  } catch (error) {
    return { accepted: false, reason: (error as { reason?: string }).reason ?? String(error) };
  }
}

type Candidate = (proof: string, settings: DpopSettings, nowMs: number) => CheckedProof | undefined;

interface Report {
  total: number;
  fastAccepted: number;
  deferred: number;
  referenceAccepted: number;
  /** Fast accepted, reference refused; or both accepted with another thumbprint or payload. */
  disagreements: string[];
  /** Plain valid proofs the fast path did not decide. */
  plainDeferred: string[];
  thumbprintMismatches: string[];
  thumbprintsCompared: number;
  byKind: Map<string, { accepted: number; refused: number; fast: number }>;
}

async function compare(count: number, seed: number, candidate: Candidate, keys: Keys): Promise<Report> {
  const random = prng(seed);
  const nowMs = Date.now();
  const next = generator(keys, Math.floor(nowMs / 1000), random);
  const settings = resolveDpopOptions({ clockToleranceSeconds: TOLERANCE });
  const report: Report = { total: 0, fastAccepted: 0, deferred: 0, referenceAccepted: 0, disagreements: [], plainDeferred: [], thumbprintMismatches: [], thumbprintsCompared: 0, byKind: new Map() };
  for (let i = 0; i < count; i++) {
    const item = next();
    // A proof seen a second time (the key now kept by the fast path) must be decided the same.
    const repeat = random() < 0.05;
    const fast = candidate(item.proof, settings, nowMs);
    const again = repeat ? candidate(item.proof, settings, nowMs) : fast;
    const ref = await reference(item.proof, settings, nowMs);
    report.total++;
    const tally = report.byKind.get(item.kind) ?? { accepted: 0, refused: 0, fast: 0 };
    report.byKind.set(item.kind, tally);
    if (ref.accepted) {
      report.referenceAccepted++;
      tally.accepted++;
    } else tally.refused++;
    if (fast === undefined) report.deferred++;
    else {
      report.fastAccepted++;
      tally.fast++;
    }
    for (const decided of repeat ? [fast, again] : [fast]) {
      if (decided === undefined) continue;
      if (!ref.accepted) {
        report.disagreements.push(`${item.kind}: the fast path accepted what jose refuses (${ref.reason}): ${item.proof}`);
      } else {
        try {
          assert.equal(decided.jkt, ref.proof.jkt);
          assert.deepEqual(decided.payload, ref.proof.payload);
          assert.deepEqual(decided.jwk, ref.proof.jwk);
        } catch (error) {
          report.disagreements.push(`${item.kind}: both accept, but ${(error as Error).message.split("\n")[0]}: ${item.proof}`);
        }
      }
    }
    if (item.plain === true && fast === undefined) report.plainDeferred.push(`${item.kind}: ${ref.accepted ? "accepted" : ref.reason} ${item.proof}`);

    // The thumbprint on its own, on every key a case carries (odd ones included).
    if (item.jwk !== null && typeof item.jwk === "object" && !Array.isArray(item.jwk)) {
      const jwk = item.jwk as Record<string, unknown>;
      const ours = jwkThumbprint(jwk);
      let theirs: string | undefined;
      try {
        theirs = await calculateJwkThumbprint(jwk, "sha256");
      } catch {
        theirs = undefined;
      }
      report.thumbprintsCompared++;
      // Ours may decline a key jose can hash (an "oct" key); it must never differ, nor hash one jose refuses.
      if (ours !== undefined && ours !== theirs) report.thumbprintMismatches.push(`${JSON.stringify(jwk)}: ${ours} vs ${String(theirs)}`);
      if (ours === undefined && theirs !== undefined && ["EC", "OKP", "RSA"].includes(jwk.kty as string)) report.thumbprintMismatches.push(`${JSON.stringify(jwk)}: declined, jose ${theirs}`);
    }
  }
  return report;
}

let keys: Keys;

before(() => {
  keys = {
    es256: makeKey("ES256"),
    es256b: makeKey("ES256"),
    es384: makeKey("ES384"),
    es512: makeKey("ES512"),
    ed: makeKey("EdDSA"),
    rs: makeKey("RS256"),
    ps: makeKey("PS256"),
    rsWeak: makeKey("RS256", 1024),
  };
});

describe("DPoP proof differential: fastProof vs jose", () => {
  it("the harness catches a fast path that does not check the signature", { timeout: 120_000 }, async (t) => {
    // A stand-in: the real fast path, except that a proof whose signature fails is accepted anyway.
    const careless: Candidate = (proof, settings, nowMs) => {
      const honest = fastProof(proof, settings, nowMs);
      if (honest !== undefined) return honest;
      const [header, payload] = proof.split(".");
      try {
        const decodedHeader = JSON.parse(Buffer.from(header!, "base64url").toString()) as Record<string, unknown>;
        const decodedPayload = JSON.parse(Buffer.from(payload!, "base64url").toString()) as Record<string, unknown>;
        const jwk = decodedHeader["jwk"] as Record<string, unknown>;
        const jkt = jwkThumbprint(jwk);
        return jkt === undefined ? undefined : { jwk, jkt, payload: decodedPayload };
      } catch {
        return undefined;
      }
    };
    const report = await compare(1_500, SEED, careless, keys);
    t.diagnostic(`careless fast path: ${report.disagreements.length} disagreements in ${report.total} proofs`);
    assert.ok(report.disagreements.length > 0, "the comparison did not notice a fast path that ignores signatures");
  });

  it(`agree on every one of ${PROOFS} generated proofs`, { timeout: 900_000 }, async (t) => {
    const report = await compare(PROOFS, SEED, fastProof, keys);
    const kinds = [...report.byKind.entries()].sort(([a], [b]) => a.localeCompare(b));
    t.diagnostic(
      `seed ${SEED}: ${report.total} proofs; jose accepted ${report.referenceAccepted}; the fast path accepted ${report.fastAccepted} and deferred ${report.deferred}; ` +
        `${report.disagreements.length} disagreements; ${report.thumbprintsCompared} thumbprints compared`,
    );
    t.diagnostic(`by kind (jose accepted/refused, fast accepted): ${kinds.map(([kind, tally]) => `${kind} ${tally.accepted}/${tally.refused}/${tally.fast}`).join(", ")}`);
    assert.equal(report.total, PROOFS);
    assert.equal(report.disagreements.length, 0, `seed ${SEED}: ${report.disagreements.length} disagreements, first ones:\n${report.disagreements.slice(0, 10).join("\n\n")}`);
    assert.equal(report.thumbprintMismatches.length, 0, `seed ${SEED}: thumbprints differ:\n${report.thumbprintMismatches.slice(0, 10).join("\n")}`);
    assert.equal(report.plainDeferred.length, 0, `seed ${SEED}: plain valid proofs the fast path left to jose:\n${report.plainDeferred.slice(0, 10).join("\n")}`);
    // Both outcomes well represented, and every family of case occurred.
    assert.ok(report.referenceAccepted > PROOFS * 0.25, `only ${report.referenceAccepted} accepted`);
    assert.ok(report.total - report.referenceAccepted > PROOFS * 0.3, `only ${report.total - report.referenceAccepted} refused`);
    const families = new Set(kinds.map(([kind]) => kind.split(":")[0]));
    for (const family of ["valid", "optional", "signature", "segments", "altered", "typ", "key", "alg", "json", "crit", "claims", "header"]) assert.ok(families.has(family), `no ${family} case`);
    for (const alg of ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"]) assert.ok((report.byKind.get(`valid:${alg}`)?.fast ?? 0) > 0, `no valid ${alg} proof decided by the fast path`);
    // Cases that must go one way whatever the path: what jose accepts of them, the fast path may only accept too.
    for (const kind of ["signature:flip", "signature:otherKey", "alg:none", "alg:HS256", "key:private", "typ:\"JWT\"", "crit:critB64false", "json:payloadArray"]) {
      const tally = report.byKind.get(kind);
      if (tally !== undefined) assert.equal(tally.accepted, 0, `${kind} accepted by jose`);
    }
  });
});
