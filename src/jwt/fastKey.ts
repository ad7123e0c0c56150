/**
 * Published keys imported once as node:crypto `KeyObject`s, and whether
 * jose would import one into the same public key for a given algorithm.
 */
import { constants, createPublicKey, type KeyObject } from "node:crypto";
import { PSS, type AlgSpec } from "./algorithms.js";
import { hasPrivateMember } from "./usableKey.js";

/** The public key and the JWK it came from (for alg/kty/crv/use/key_ops checks). */
export interface FastKey {
  readonly key: KeyObject;
  readonly jwk: Readonly<Record<string, unknown>>;
}

/** What fastVerify needs from a KeyObject, read once per key. */
export interface KeyFacts {
  readonly type: string;
  readonly keyType: string | undefined;
  readonly namedCurve: string | undefined;
  /** RSA modulus bits (0 otherwise). */
  readonly modulusLength: number;
  /** Ready-made `crypto.verify` key arguments (no per-call object). */
  readonly ecKey: { key: KeyObject; dsaEncoding: "ieee-p1363" };
  readonly pssKeys: Readonly<Record<number, { key: KeyObject; padding: number; saltLength: number }>>;
}

/** Process-wide cache, bounded by the keys themselves: weak, an entry goes with its KeyObject. */
const keyFacts = new WeakMap<KeyObject, KeyFacts>();

export function factsOf(key: KeyObject): KeyFacts {
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
 * For a JWK that isUsableJwk already accepts for the alg of `spec`: whether
 * jose would import it into the same public key and use it. WebCrypto's JWK
 * import takes the JWK's `key_ops` as the key usages (anything but exactly
 * ["verify"] fails or is unusual, so defer), a private member yields no
 * public key, and the KeyObject must match the JWK's type and curve.
 */
export function importsAsVerifyKey(spec: AlgSpec, jwk: Readonly<Record<string, unknown>>, facts: KeyFacts): boolean {
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
 * A frozen copy of a JWK, its arrays (`key_ops`, `x5c`) copied and frozen
 * too: what fastVerify checked of a key stays true while it is in use.
 */
function frozenCopy(jwk: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const copy: Record<string, unknown> = {};
  for (const name of Object.keys(jwk)) {
    const value = jwk[name];
    copy[name] = Array.isArray(value) ? Object.freeze(value.slice()) : value;
  }
  return Object.freeze(copy);
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
    return { key, jwk: frozenCopy(jwk) };
  } catch {
    return undefined;
  }
}
