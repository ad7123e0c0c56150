/**
 * The JWS algorithms the synchronous path verifies, and what each requires of
 * its key and signature: jose's lib/jws_algorithms.js, lib/key.js and
 * node's WebCrypto import, as one table.
 */

/** Signature families (plain numbers: no enum in the emitted code). */
export const RSA = 0;
export const PSS = 1;
export const EC = 2;
export const ED = 3;
type Family = typeof RSA | typeof PSS | typeof EC | typeof ED;

export interface AlgSpec {
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

/** What the fast path needs to know of `alg`, or undefined when it does not handle it. */
export function specOf(alg: unknown): AlgSpec | undefined {
  return typeof alg === "string" ? ALGORITHMS[alg] : undefined;
}

/** Whether the fast path can handle this alg at all (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, Ed25519). */
export function fastAlgorithm(alg: string): boolean {
  return specOf(alg) !== undefined;
}
