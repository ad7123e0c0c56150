/**
 * DPoP proofs for tests (RFC 9449): a key pair generated in the test (kept
 * extractable so a test can also leak its private part on purpose), and
 * proofs signed with jose for whatever method, URL, token, time, `jti` and
 * nonce a test needs, right or wrong.
 */
import { createHash, randomUUID } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

export interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  privateJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint: what a token bound to this key carries as `cnf.jkt`. */
  jkt: string;
}

export async function proofKey(): Promise<ProofKey> {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, privateJwk: await exportJWK(privateKey), jkt: await calculateJwkThumbprint(jwk, "sha256") };
}

/** base64url(SHA-256(token)): a proof's `ath`. */
export const ath = (token: string): string => createHash("sha256").update(token).digest("base64url");
/** Now, in seconds (a proof's `iat`). */
export const now = (): number => Math.floor(Date.now() / 1000);

export interface ProofOptions {
  htm?: string;
  htu: string;
  token?: string;
  iat?: number;
  jti?: string;
  ath?: string;
  nonce?: string;
  header?: Record<string, unknown>;
}

/** A proof by `key` (ES256): `htm` GET unless given, `iat` now, a fresh `jti`, `ath` of `token` when given. */
export async function proof(key: ProofKey, options: ProofOptions): Promise<string> {
  const claims: Record<string, unknown> = { htm: options.htm ?? "GET", htu: options.htu, iat: options.iat ?? now(), jti: options.jti ?? randomUUID() };
  const hash = options.ath ?? (options.token === undefined ? undefined : ath(options.token));
  if (hash !== undefined) claims.ath = hash;
  if (options.nonce !== undefined) claims.nonce = options.nonce;
  return new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: key.jwk, ...options.header }).sign(key.privateKey);
}
