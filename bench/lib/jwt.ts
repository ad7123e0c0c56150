/**
 * Keys and compact JWS tokens made with node:crypto directly (fast, and
 * independent of the code under test), plus what the `crypto.verify` floor
 * needs: the signing input and the raw signature of each token.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";

export type BenchAlg = "RS256" | "ES256" | "EdDSA";

export interface BenchKey {
  alg: BenchAlg;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Public JWK as published in the JWKS. */
  jwk: Record<string, unknown>;
}

export function makeKey(alg: BenchAlg): BenchKey {
  const pair =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : alg === "ES256"
        ? generateKeyPairSync("ec", { namedCurve: "P-256" })
        : generateKeyPairSync("ed25519");
  const kid = `${alg.toLowerCase()}-${randomUUID()}`;
  const jwk = { ...(pair.publicKey.export({ format: "jwk" }) as Record<string, unknown>), kid, alg, use: "sig" };
  return { alg, kid, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk };
}

const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** Node's digest name and key options for each JWS algorithm (also used by the floor). */
export function nodeAlgorithm(alg: BenchAlg): string | null {
  return alg === "EdDSA" ? null : "sha256";
}
export function keyFor(key: KeyObject, alg: BenchAlg): KeyObject | { key: KeyObject; dsaEncoding: "ieee-p1363" } {
  // JWS ES256 signatures are raw r || s (IEEE P1363), not DER.
  return alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key;
}

function signAsync(alg: BenchAlg, data: Buffer, key: KeyObject): Promise<Buffer> {
  // The callback form runs on libuv's thread pool: several signatures at once on a multi-core machine.
  return new Promise((resolve, reject) => sign(nodeAlgorithm(alg), data, keyFor(key, alg), (error, signature) => (error ? reject(error) : resolve(signature))));
}

/** Standard claims of a valid bench token; `extra` is merged over them. */
export function claims(issuer: string, audience: string, sub: string, ttlSeconds: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: issuer, aud: audience, sub, iat: now, exp: now + ttlSeconds, jti: randomUUID(), roles: ["user"], ...extra };
}

export async function signToken(key: BenchKey, payload: Record<string, unknown>): Promise<string> {
  const input = `${b64(JSON.stringify({ alg: key.alg, kid: key.kid, typ: "JWT" }))}.${b64(JSON.stringify(payload))}`;
  return `${input}.${b64(await signAsync(key.alg, Buffer.from(input), key.privateKey))}`;
}

/** `count` distinct tokens (distinct `jti` and `sub`), signed a few at a time on the thread pool. */
export async function signMany(key: BenchKey, count: number, payloadOf: (index: number) => Record<string, unknown>): Promise<string[]> {
  const tokens: string[] = new Array<string>(count);
  const WIDTH = 16;
  for (let start = 0; start < count; start += WIDTH) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + WIDTH); i++) batch.push(signToken(key, payloadOf(i)).then((token) => void (tokens[i] = token)));
    await Promise.all(batch);
  }
  return tokens;
}

/** What `crypto.verify` needs for one token: the signing input and the raw signature. */
export interface FloorInput {
  data: Buffer;
  signature: Buffer;
}

export function floorInput(token: string): FloorInput {
  const last = token.lastIndexOf(".");
  return { data: Buffer.from(token.slice(0, last)), signature: Buffer.from(token.slice(last + 1), "base64url") };
}
