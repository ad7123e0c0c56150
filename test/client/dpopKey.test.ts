/**
 * The client's DPoP key and proofs, checked by the server's own proof
 * verifier: generated keys (each algorithm) and keys the app brings,
 * non-extractable private keys, thumbprints against jose's, the claims of a
 * proof, and the refusals of keys the helper cannot sign with.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { createDpopKey, dpopHtu, type DpopAlgorithm, type DpopKeyPair } from "../../src/client/index.js";
import { resolveDpopOptions } from "../../src/dpop/dpopOptions.js";
import { isDpopProofError } from "../../src/dpop/DpopProofError.js";
import { createNonceIssuer } from "../../src/dpop/nonceIssuer.js";
import { accessTokenHash, verifyDpopProof } from "../../src/dpop/verifyDpopProof.js";

const TOKEN = "a.bound-access-token.signature";
const URL_ = "https://api.example.com/orders/7";

describe("createDpopKey: a generated key", () => {
  test("ES256 by default; its proofs are accepted by the server's verifier for the method, URL, token and thumbprint", async () => {
    const key = await createDpopKey();
    assert.equal(key.algorithm, "ES256");
    const proof = await key.proof({ method: "POST", url: `${URL_}?page=2#top`, accessToken: TOKEN });
    const accepted = await verifyDpopProof(proof, { method: "POST", url: `${URL_}?page=2`, accessToken: TOKEN, expectedJkt: key.jkt }, resolveDpopOptions());
    assert.equal(accepted.jkt, key.jkt);
    assert.deepEqual({ ...accepted.publicJwk }, { ...key.publicJwk });
  });

  test("the private key is not extractable, and nothing private is in the public JWK", async () => {
    const key = await createDpopKey();
    assert.equal(key.keyPair.privateKey.extractable, false);
    await assert.rejects(globalThis.crypto.subtle.exportKey("jwk", key.keyPair.privateKey as never));
    await assert.rejects(globalThis.crypto.subtle.exportKey("pkcs8", key.keyPair.privateKey as never));
    assert.deepEqual(Object.keys(key.publicJwk).sort(), ["crv", "kty", "x", "y"]);
    assert.ok(Object.isFrozen(key.publicJwk));
  });

  test("jkt is jose's RFC 7638 SHA-256 thumbprint of the public key", async () => {
    const key = await createDpopKey();
    assert.equal(key.jkt, await calculateJwkThumbprint(await exportJWK(key.keyPair.publicKey), "sha256"));
    assert.match(key.jkt, /^[A-Za-z0-9_-]{43}$/);
  });

  test("each proof: typ dpop+jwt, alg, jwk; a fresh random jti, htm, htu without query and fragment, iat now, ath of the token", async () => {
    const key = await createDpopKey();
    const first = await key.proof({ method: "GET", url: new URL(`${URL_}?q=1#frag`), accessToken: TOKEN });
    const second = await key.proof({ method: "GET", url: URL_, accessToken: TOKEN });
    assert.deepEqual(decodeProtectedHeader(first), { typ: "dpop+jwt", alg: "ES256", jwk: { ...key.publicJwk } });
    const claims = decodeJwt(first);
    assert.deepEqual(Object.keys(claims).sort(), ["ath", "htm", "htu", "iat", "jti"]);
    assert.equal(claims.htm, "GET");
    assert.equal(claims.htu, URL_);
    assert.equal(claims.ath, accessTokenHash(TOKEN));
    assert.ok(Math.abs((claims.iat as number) - Date.now() / 1000) < 5);
    assert.ok(typeof claims.jti === "string" && Buffer.from(claims.jti, "base64url").length >= 12, "at least 96 random bits");
    assert.notEqual(claims.jti, decodeJwt(second).jti);
  });

  test("without an access token the proof has no ath (a token endpoint request), and the verifier accepts it", async () => {
    const key = await createDpopKey();
    const proof = await key.proof({ method: "POST", url: "https://op.example.com/token" });
    assert.equal(decodeJwt(proof).ath, undefined);
    await verifyDpopProof(proof, { method: "POST", url: "https://op.example.com/token" }, resolveDpopOptions());
  });

  test("the verifier refuses a proof for another method, URL, token or key", async () => {
    const key = await createDpopKey();
    const other = await createDpopKey();
    const settings = resolveDpopOptions();
    const cases = [
      { expected: { method: "POST", url: URL_, accessToken: TOKEN }, error: "invalid_dpop_proof" },
      { expected: { method: "GET", url: "https://api.example.com/orders/8", accessToken: TOKEN }, error: "invalid_dpop_proof" },
      { expected: { method: "GET", url: URL_, accessToken: "another.token.here" }, error: "invalid_dpop_proof" },
      { expected: { method: "GET", url: URL_, accessToken: TOKEN, expectedJkt: other.jkt }, error: "invalid_token" },
    ];
    for (const { expected, error } of cases) {
      const proof = await key.proof({ method: "GET", url: URL_, accessToken: TOKEN });
      await assert.rejects(verifyDpopProof(proof, expected, settings), (thrown: unknown) => isDpopProofError(thrown) && thrown.error === error, JSON.stringify(expected));
    }
  });

  for (const algorithm of ["ES384", "ES512", "EdDSA", "RS256", "PS256"] as const satisfies readonly DpopAlgorithm[]) {
    test(`algorithm ${algorithm}: its proofs are accepted`, async () => {
      const key = await createDpopKey({ algorithm });
      assert.equal(key.algorithm, algorithm);
      assert.equal(decodeProtectedHeader(await key.proof({ method: "GET", url: URL_ })).alg, algorithm);
      const proof = await key.proof({ method: "GET", url: URL_, accessToken: TOKEN });
      assert.equal((await verifyDpopProof(proof, { method: "GET", url: URL_, accessToken: TOKEN, expectedJkt: key.jkt }, resolveDpopOptions())).jkt, key.jkt);
      await assert.rejects(globalThis.crypto.subtle.exportKey("jwk", key.keyPair.privateKey as never));
    });
  }

  test("an unknown algorithm is a TypeError", async () => {
    await assert.rejects(createDpopKey({ algorithm: "HS256" as DpopAlgorithm }), TypeError);
    await assert.rejects(createDpopKey({ algorithm: "none" as DpopAlgorithm }), TypeError);
  });
});

describe("createDpopKey: the app's key pair", () => {
  test("an ES256 pair kept by the app (non-extractable private key) signs proofs the verifier accepts", async () => {
    const pair = await globalThis.crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const key = await createDpopKey({ keyPair: pair });
    assert.equal(key.algorithm, "ES256");
    assert.equal(key.keyPair.privateKey, pair.privateKey);
    assert.equal(key.jkt, await calculateJwkThumbprint(await exportJWK(pair.publicKey), "sha256"));
    const proof = await key.proof({ method: "GET", url: URL_, accessToken: TOKEN });
    await verifyDpopProof(proof, { method: "GET", url: URL_, accessToken: TOKEN, expectedJkt: key.jkt }, resolveDpopOptions());
  });

  test("Ed25519, RSASSA-PKCS1-v1_5 and RSA-PSS pairs map to EdDSA, RS384 and PS512", async () => {
    for (const [alg, expected] of [["EdDSA", "EdDSA"], ["RS384", "RS384"], ["PS512", "PS512"]] as const) {
      const pair = await generateKeyPair(alg, { extractable: false });
      const key = await createDpopKey({ keyPair: pair });
      assert.equal(key.algorithm, expected);
      const proof = await key.proof({ method: "GET", url: URL_, accessToken: TOKEN });
      await verifyDpopProof(proof, { method: "GET", url: URL_, accessToken: TOKEN, expectedJkt: key.jkt }, resolveDpopOptions());
    }
  });

  test("keys it cannot sign with are refused with a TypeError", async () => {
    const subtle = globalThis.crypto.subtle;
    const es256 = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const other = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const hmac = (await subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])) as never;
    const ecdh = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    const rsaSha1 = await subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-1" }, false, ["sign", "verify"]);
    const verifyOnly = { publicKey: es256.publicKey, privateKey: (await subtle.importKey("jwk", { ...(await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey)) }, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])) as never };
    const cases: [string, unknown, RegExp][] = [
      ["nothing", {}, /key pair/],
      ["not keys", { publicKey: "a", privateKey: "b" }, /key pair/],
      ["swapped", { publicKey: es256.privateKey, privateKey: es256.publicKey }, /key pair/],
      ["HMAC", { publicKey: hmac, privateKey: hmac }, /key pair/],
      ["ECDH", ecdh, /"ECDH" key cannot sign/],
      ["RSA SHA-1", rsaSha1, /hash "SHA-1" is not supported/],
      ["mismatched halves", { publicKey: es256.publicKey, privateKey: other.privateKey }, /does not belong/],
      ["private key of another pair", verifyOnly, /does not belong/],
    ];
    for (const [name, keyPair, message] of cases) {
      await assert.rejects(createDpopKey({ keyPair: keyPair as DpopKeyPair }), (error: unknown) => error instanceof TypeError && message.test(error.message), name);
    }
  });
});

describe("nonces", () => {
  test("a remembered nonce goes into later proofs for that origin only; an explicit one wins; null sends none", async () => {
    const key = await createDpopKey();
    key.setNonce("https://api.example.com", "n-1");
    assert.equal(key.getNonce("https://api.example.com/any/path?x"), "n-1");
    assert.equal(key.getNonce("https://api.example.com:8443"), undefined);
    assert.equal(decodeJwt(await key.proof({ method: "GET", url: URL_ })).nonce, "n-1");
    assert.equal(decodeJwt(await key.proof({ method: "GET", url: "https://other.example.com/" })).nonce, undefined);
    assert.equal(decodeJwt(await key.proof({ method: "GET", url: URL_, nonce: "n-2" })).nonce, "n-2");
    assert.equal(decodeJwt(await key.proof({ method: "GET", url: URL_, nonce: null })).nonce, undefined);
    key.setNonce(URL_, undefined);
    assert.equal(key.getNonce(URL_), undefined);
    assert.throws(() => key.setNonce(URL_, ""), TypeError);
  });

  test("a proof with the server's nonce is accepted by a verifier that requires nonces; one without is asked for it", async () => {
    const nonces = createNonceIssuer();
    const settings = resolveDpopOptions({ nonces });
    const key = await createDpopKey();
    await assert.rejects(
      verifyDpopProof(await key.proof({ method: "GET", url: URL_, accessToken: TOKEN }), { method: "GET", url: URL_, accessToken: TOKEN }, settings),
      (error: unknown) => isDpopProofError(error) && error.error === "use_dpop_nonce",
    );
    key.setNonce(URL_, await nonces.current());
    await verifyDpopProof(await key.proof({ method: "GET", url: URL_, accessToken: TOKEN }), { method: "GET", url: URL_, accessToken: TOKEN, expectedJkt: key.jkt }, settings);
  });
});

describe("dpopHtu", () => {
  test("the URL without query and fragment; only http(s)", () => {
    assert.equal(dpopHtu("https://api.example.com/a/b?c=d#e"), "https://api.example.com/a/b");
    assert.equal(dpopHtu("https://api.example.com"), "https://api.example.com/");
    assert.equal(dpopHtu("http://127.0.0.1:8080/x?"), "http://127.0.0.1:8080/x");
    assert.throws(() => dpopHtu("wss://api.example.com/socket.io/"), TypeError);
    assert.throws(() => dpopHtu("/relative"), TypeError);
  });
});
