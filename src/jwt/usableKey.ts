/**
 * Which published JWK may verify a token: the one rule (jose's jwks/local.js
 * `isUsableJWK`) shared by the key store that counts candidates and by the
 * synchronous verification itself.
 */
import { specOf } from "./algorithms.js";

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

/**
 * Whether the JWK has a member that makes it a private (or secret) key (`d`,
 * `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`, `priv`): jose's import then yields
 * no public key. Spelled out member by member: each read is then a fixed
 * property load (this runs per token).
 */
export function hasPrivateMember(jwk: Readonly<Record<string, unknown>>): boolean {
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
