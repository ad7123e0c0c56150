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
 * lib/validate.js, lib/key.js, lib/jws_algorithms.js (algorithms.ts),
 * jwks/local.js isUsableJWK (usableKey.ts) and lib/jwt_claims_set.js
 * validateClaimsSet (claims.ts), and is proven against it by
 * test/differential/.
 *
 * Written for the hot path: no regex, no closures, no Buffers per call (the
 * bytes crypto.verify reads are views of one shared buffer, segment.ts).
 */
import { verify as cryptoVerify, type KeyObject } from "node:crypto";
import { EC, ED, PSS, RSA, specOf, type AlgSpec } from "./algorithms.js";
import { claimsValid, type FastPolicy } from "./claims.js";
import type { DecodedJws } from "./decode.js";
import { factsOf, importsAsVerifyKey, type FastKey, type KeyFacts } from "./fastKey.js";
import { headerIsPlain } from "./header.js";
import { signatureView, signingInputView } from "./segment.js";
import { isUsableJwk } from "./usableKey.js";

/**
 * The last header, key and policy that passed the checks which depend on
 * them alone (alg allowed and handled, header plain, key usable for it), and
 * what those checks found. An issuer signs its tokens with one header and
 * one key, and the header is then one frozen object shared by all of them
 * (header.ts): the next token with the same three objects skips the checks.
 * Only frozen objects are remembered, so what was checked cannot have
 * changed since.
 */
let fitHeader: Record<string, unknown> | undefined;
let fitKey: FastKey | undefined;
let fitPolicy: FastPolicy | undefined;
let fitSpec: AlgSpec | undefined;
let fitFacts: KeyFacts | undefined;

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
    const { header, payload } = decoded;
    let spec: AlgSpec | undefined;
    let facts: KeyFacts;
    if (header === fitHeader && key === fitKey && policy === fitPolicy) {
      spec = fitSpec!;
      facts = fitFacts!;
    } else {
      const alg = header["alg"];
      if (typeof alg !== "string") return undefined;
      spec = specOf(alg);
      const algorithms = policy.algorithms;
      if (spec === undefined || !Array.isArray(algorithms) || !algorithms.includes(alg)) return undefined;
      if (!headerIsPlain(header)) return undefined;
      const jwk = key.jwk;
      facts = factsOf(key.key);
      if (!isUsableJwk(jwk, alg, header["kid"]) || !importsAsVerifyKey(spec, jwk, facts)) return undefined;
      if (Object.isFrozen(header) && Object.isFrozen(jwk) && Object.isFrozen(policy) && Object.isFrozen(policy.algorithms)) {
        fitHeader = header;
        fitKey = key;
        fitPolicy = policy;
        fitSpec = spec;
        fitFacts = facts;
      }
    }

    const now = nowSeconds === undefined ? Math.floor(Date.now() / 1000) : nowSeconds;
    if (!claimsValid(header, payload, policy, now)) return undefined;

    return signatureVerifies(decoded, spec, key.key, facts) ? payload : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `decoded`'s signature is of the size `spec` and the key call for,
 * and verifies with `publicKey` (whose facts are `facts`) under `spec`: the
 * one `crypto.verify` call of the fast paths (access tokens and DPoP proofs).
 * Throws what `crypto.verify` throws; callers treat that as "ask jose".
 */
export function signatureVerifies(decoded: DecodedJws, spec: AlgSpec, publicKey: KeyObject, facts: KeyFacts): boolean {
  if (decoded.signatureLength !== (spec.family <= PSS ? (facts.modulusLength + 7) >> 3 : spec.signatureLength)) return false;
  // Views of one shared buffer (segment.ts): crypto.verify reads them at once, before anything can reuse it.
  const signature = signatureView(decoded.signature);
  const data = signingInputView(decoded.token, decoded.signingInputEnd);
  switch (spec.family) {
    case RSA:
      return cryptoVerify(spec.hash, data, publicKey, signature);
    case PSS:
      return cryptoVerify(spec.hash, data, facts.pssKeys[spec.saltLength]!, signature);
    case EC:
      return cryptoVerify(spec.hash, data, facts.ecKey, signature);
    case ED:
      return cryptoVerify(null, data, publicKey, signature);
  }
}
