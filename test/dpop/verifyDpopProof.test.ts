/**
 * The DPoP proof verifier on its own: real keys generated per run (ES256,
 * EdDSA, RS256), real proofs signed with jose, RFC 9449's own example proof,
 * and one named test per defect, each asserting the RFC error code and the
 * server-side reason.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, test } from "node:test";
import fc from "fast-check";
import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { DEFAULT_DPOP_ALGORITHMS, resolveDpopOptions, type DpopOptions, type DpopSettings } from "../../src/dpop/dpopOptions.js";
import { dpopChallenge, isDpopProofError, type DpopErrorCode } from "../../src/dpop/DpopProofError.js";
import { fastProofKeyCount } from "../../src/dpop/fastProof.js";
import { createNonceIssuer } from "../../src/dpop/nonceIssuer.js";
import { accessTokenHash, MAX_JTI_LENGTH, MAX_PROOF_LENGTH, verifyDpopProof, type DpopExpectations } from "../../src/dpop/verifyDpopProof.js";
import { MemoryReplayStore, type OidcReplayStore } from "../../src/stores/replayStore.js";

type ProofAlg = "ES256" | "EdDSA" | "RS256";

interface ProofKey {
  alg: ProofAlg;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
  jkt: string;
}

async function proofKey(alg: ProofAlg): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, privateJwk: await exportJWK(privateKey), jkt: await calculateJwkThumbprint(publicJwk, "sha256") };
}

const URL_ = "https://api.example.com/orders";
const TOKEN = "an-access-token.that-the-pipeline-verified.before";
const seconds = (): number => Math.floor(Date.now() / 1000);

/** A proof signed by `key` for GET URL_ with TOKEN; `claims` and `header` override (an `undefined` value leaves the member out). */
async function proof(key: ProofKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const payload = defined({ htm: "GET", htu: URL_, iat: seconds(), jti: randomUUID(), ath: accessTokenHash(TOKEN), ...claims });
  const protectedHeader = defined({ alg: key.alg, typ: "dpop+jwt", jwk: key.publicJwk, ...header });
  return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
}

function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

function expectations(key: ProofKey, overrides: Partial<DpopExpectations> = {}): DpopExpectations {
  return { method: "GET", url: `${URL_}?page=2`, accessToken: TOKEN, expectedJkt: key.jkt, ...overrides };
}

const settings = (options: DpopOptions = {}): DpopSettings => resolveDpopOptions(options);
/** Proof keys kept imported, by either path (jose's CryptoKeys, the node:crypto path's KeyObjects). */
const keptKeys = (s: DpopSettings): number => s.keys.size + fastProofKeyCount(s);

/** The promise rejects with a DpopProofError of that code, whose reason matches. */
async function refused(promise: Promise<unknown>, error: DpopErrorCode, reason: RegExp): Promise<void> {
  await assert.rejects(promise, (thrown: unknown) => {
    assert.ok(isDpopProofError(thrown), `not a DpopProofError: ${String(thrown)}`);
    assert.equal(thrown.error, error, thrown.reason);
    assert.match(thrown.reason, reason);
    return true;
  });
}

/** A JWS assembled by hand (for headers jose refuses to sign with). */
function rawJws(header: Record<string, unknown>, payload: Record<string, unknown>, signature: string): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part(header)}.${part(payload)}.${signature}`;
}

let es256: ProofKey;
let ed25519: ProofKey;
let rs256: ProofKey;

before(async () => {
  [es256, ed25519, rs256] = await Promise.all([proofKey("ES256"), proofKey("EdDSA"), proofKey("RS256")]);
});

describe("a valid proof", () => {
  for (const name of ["ES256", "EdDSA", "RS256"] as const) {
    test(`${name}: accepted, with the key's RFC 7638 thumbprint and the proof's claims`, async () => {
      const key = name === "ES256" ? es256 : name === "EdDSA" ? ed25519 : rs256;
      const jti = randomUUID();
      const iat = seconds();
      const result = await verifyDpopProof(await proof(key, { jti, iat }), expectations(key), settings());
      assert.equal(result.jkt, key.jkt);
      assert.equal(result.jti, jti);
      assert.equal(result.iat, iat);
      assert.deepEqual({ ...result.publicJwk }, key.publicJwk);
      assert.equal(result.nonce, undefined);
    });
  }

  test("without an access token, no ath is needed (and no key binding is checked)", async () => {
    const result = await verifyDpopProof(await proof(es256, { ath: undefined }), { method: "GET", url: URL_ }, settings());
    assert.equal(result.jkt, es256.jkt);
  });

  test("typ in its media-type form (application/dpop+jwt) is the same type", async () => {
    await verifyDpopProof(await proof(es256, {}, { typ: "application/dpop+jwt" }), expectations(es256), settings());
  });
});

describe("RFC examples, checked offline", () => {
  // RFC 9449 section 4.2 (figure 3): the example proof for a token request, and its key's thumbprint (section 6.1).
  const RFC_PROOF =
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19" +
    ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ" +
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
  const RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
  const RFC_IAT = 1562262616;
  const atRfcTime = (): DpopSettings => settings({ now: () => (RFC_IAT + 2) * 1000 });

  test("RFC 9449's example proof verifies at its own time, with the RFC's thumbprint", async () => {
    const result = await verifyDpopProof(RFC_PROOF, { method: "POST", url: "https://server.example.com/token" }, atRfcTime());
    assert.equal(result.jkt, RFC_JKT);
    assert.equal(result.jti, "-BwC3ESc6acc2lTc");
    assert.equal(result.iat, RFC_IAT);
  });

  test("RFC 9449's example proof is refused today (stale), bound to another key, or with one signature byte changed", async () => {
    await refused(verifyDpopProof(RFC_PROOF, { method: "POST", url: "https://server.example.com/token" }, settings()), "invalid_dpop_proof", /iat is \d+ s old/);
    await refused(verifyDpopProof(RFC_PROOF, { method: "POST", url: "https://server.example.com/token", expectedJkt: es256.jkt }, atRfcTime()), "invalid_token", /not the one the token is bound to/);
    // The signature's first character (the last one carries padding bits too).
    const at = RFC_PROOF.lastIndexOf(".") + 1;
    const tampered = `${RFC_PROOF.slice(0, at)}${RFC_PROOF[at] === "2" ? "3" : "2"}${RFC_PROOF.slice(at + 1)}`;
    await refused(verifyDpopProof(tampered, { method: "POST", url: "https://server.example.com/token" }, atRfcTime()), "invalid_dpop_proof", /does not verify/);
  });

  test("RFC 9449's example access token hashes to the example ath (section 7.1)", () => {
    assert.equal(accessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
  });

  test("RFC 7638's example key has the RFC's thumbprint (section 3.1)", async () => {
    const n =
      "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    assert.equal(await calculateJwkThumbprint({ kty: "RSA", n, e: "AQAB", alg: "RS256", kid: "2011-04-29" }, "sha256"), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  });
});

describe("the proof's shape", () => {
  test("no proof", async () => {
    for (const missing of [undefined, null, ""]) await refused(verifyDpopProof(missing, expectations(es256), settings()), "invalid_dpop_proof", /no DPoP proof/);
  });

  test("two proofs (two DPoP headers, as an array)", async () => {
    const both = [await proof(es256), await proof(es256)];
    await refused(verifyDpopProof(both, expectations(es256), settings()), "invalid_dpop_proof", /2 DPoP proofs/);
  });

  test("two proofs joined in one header value", async () => {
    const joined = `${await proof(es256)}, ${await proof(es256)}`;
    await refused(verifyDpopProof(joined, expectations(es256), settings()), "invalid_dpop_proof", /not one compact JWS/);
  });

  test("a JWS in JSON serialization, a non-string, garbage, an oversized value", async () => {
    const [header, payload, signature] = (await proof(es256)).split(".");
    const json = JSON.stringify({ protected: header, payload, signature });
    await refused(verifyDpopProof(json, expectations(es256), settings()), "invalid_dpop_proof", /not one compact JWS/);
    await refused(verifyDpopProof({ proof: "x" }, expectations(es256), settings()), "invalid_dpop_proof", /is a object, not a string/);
    await refused(verifyDpopProof("a.b.c", expectations(es256), settings()), "invalid_dpop_proof", /header cannot be read/);
    await refused(verifyDpopProof("a".repeat(MAX_PROOF_LENGTH + 1), expectations(es256), settings()), "invalid_dpop_proof", /characters long/);
  });

  test("typ is not dpop+jwt", async () => {
    await refused(verifyDpopProof(await proof(es256, {}, { typ: "JWT" }), expectations(es256), settings()), "invalid_dpop_proof", /typ is "JWT"/);
    await refused(verifyDpopProof(await proof(es256, {}, { typ: "at+jwt" }), expectations(es256), settings()), "invalid_dpop_proof", /typ is "at\+jwt"/);
    await refused(verifyDpopProof(await proof(es256, {}, { typ: undefined }), expectations(es256), settings()), "invalid_dpop_proof", /typ is undefined/);
  });

  test("alg: none (with and without a signature part)", async () => {
    const payload = { htm: "GET", htu: URL_, iat: seconds(), jti: randomUUID(), ath: accessTokenHash(TOKEN) };
    const header = { alg: "none", typ: "dpop+jwt", jwk: es256.publicJwk };
    await refused(verifyDpopProof(rawJws(header, payload, ""), expectations(es256), settings()), "invalid_dpop_proof", /not one compact JWS/);
    await refused(verifyDpopProof(rawJws(header, payload, "AAAA"), expectations(es256), settings()), "invalid_dpop_proof", /alg "none" is not accepted/);
  });

  test("an HMAC proof (HS256), with a symmetric or an asymmetric jwk", async () => {
    const secret = new Uint8Array(32).fill(7);
    const claims = { htm: "GET", htu: URL_, iat: seconds(), jti: randomUUID(), ath: accessTokenHash(TOKEN) };
    const oct = { kty: "oct", k: base64url.encode(secret) };
    const withOct = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: oct }).sign(secret);
    await refused(verifyDpopProof(withOct, expectations(es256), settings()), "invalid_dpop_proof", /alg "HS256" is not accepted/);
    const withEc = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: es256.publicJwk }).sign(secret);
    await refused(verifyDpopProof(withEc, expectations(es256), settings()), "invalid_dpop_proof", /alg "HS256" is not accepted/);
  });

  test("an alg the app did not allow", async () => {
    await refused(verifyDpopProof(await proof(rs256), expectations(rs256), settings({ algorithms: ["ES256"] })), "invalid_dpop_proof", /alg "RS256" is not accepted \(ES256\)/);
  });

  test("no jwk in the header", async () => {
    await refused(verifyDpopProof(await proof(es256, {}, { jwk: undefined }), expectations(es256), settings()), "invalid_dpop_proof", /no jwk object/);
  });

  test("private key members in jwk (EC and RSA), though the signature is good", async () => {
    await refused(verifyDpopProof(await proof(es256, {}, { jwk: es256.privateJwk }), expectations(es256), settings()), "invalid_dpop_proof", /not a public key \(it has d\)/);
    await refused(verifyDpopProof(await proof(rs256, {}, { jwk: rs256.privateJwk }), expectations(rs256), settings()), "invalid_dpop_proof", /not a public key \(it has d, p, q, dp, dq, qi\)/);
  });

  test("a symmetric jwk (kty oct) with an asymmetric alg", async () => {
    await refused(verifyDpopProof(await proof(es256, {}, { jwk: { kty: "oct", x: "AA" } }), expectations(es256), settings()), "invalid_dpop_proof", /kty "oct" is not an asymmetric key type/);
  });

  test("signed by another key than the one in jwk", async () => {
    await refused(verifyDpopProof(await proof(es256, {}, { jwk: (await proofKey("ES256")).publicJwk }), expectations(es256), settings()), "invalid_dpop_proof", /does not verify with its own key/);
  });
});

describe("imported proof keys", () => {
  test("kept only once a proof verified with them; a kept key still checks every signature", async () => {
    const s = settings();
    const stranger = await proofKey("ES256");
    await refused(verifyDpopProof(await proof(es256, {}, { jwk: stranger.publicJwk }), expectations(stranger), s), "invalid_dpop_proof", /does not verify/);
    await refused(verifyDpopProof(await proof(es256, {}, { jwk: ed25519.publicJwk }), expectations(ed25519), s), "invalid_dpop_proof", /cannot be used with ES256/);
    assert.equal(keptKeys(s), 0, "a key whose proof failed is not kept");
    await verifyDpopProof(await proof(es256), expectations(es256), s);
    assert.equal(keptKeys(s), 1);
    const [header, payload] = (await proof(es256)).split(".");
    const otherSignature = (await proof(es256)).split(".")[2];
    await refused(verifyDpopProof(`${header}.${payload}.${otherSignature}`, expectations(es256), s), "invalid_dpop_proof", /does not verify/);
    const result = await verifyDpopProof(await proof(es256), expectations(es256), s);
    assert.equal(result.jkt, es256.jkt);
    assert.equal(keptKeys(s), 1);
  });
});

describe("the proof against the request", () => {
  test("wrong htm", async () => {
    await refused(verifyDpopProof(await proof(es256, { htm: "POST" }), expectations(es256), settings()), "invalid_dpop_proof", /htm "POST" is not the request method "GET"/);
  });

  test("htm compares case-sensitively (methods are case-sensitive)", async () => {
    await refused(verifyDpopProof(await proof(es256, { htm: "get" }), expectations(es256), settings()), "invalid_dpop_proof", /htm "get"/);
  });

  test("no htm", async () => {
    await refused(verifyDpopProof(await proof(es256, { htm: undefined }), expectations(es256), settings()), "invalid_dpop_proof", /htm undefined/);
  });

  test("wrong htu: another path, host, scheme, port, or a path differing in case", async () => {
    for (const htu of ["https://api.example.com/admin", "https://evil.example.com/orders", "http://api.example.com/orders", "https://api.example.com:8443/orders", "https://api.example.com/Orders", "https://api.example.com/orders/"]) {
      await refused(verifyDpopProof(await proof(es256, { htu }), expectations(es256), settings()), "invalid_dpop_proof", /htu .* is not the request URL/);
    }
  });

  test("htu that is not an http(s) URL, or names a user", async () => {
    for (const htu of ["/orders", "api.example.com/orders", "wss://api.example.com/orders", "https://user@api.example.com/orders", 42]) {
      await refused(verifyDpopProof(await proof(es256, { htu }), expectations(es256), settings()), "invalid_dpop_proof", /htu .* is not the request URL/);
    }
  });

  test("htu equal after normalisation: query and fragment ignored, scheme and host case, default port, dot segments, percent-encoding", async () => {
    const cases: Array<[string, string]> = [
      ["https://api.example.com/orders?page=1", `${URL_}?page=2`],
      ["https://api.example.com/orders#top", URL_],
      ["HTTPS://API.Example.COM/orders", URL_],
      ["https://api.example.com:443/orders", URL_],
      ["https://api.example.com/v1/../orders", URL_],
      ["https://api.example.com/%7euser/a%2fb", "https://api.example.com/~user/a%2Fb"],
      ["http://api.example.com:80/", "http://api.example.com"],
    ];
    for (const [htu, url] of cases) {
      await verifyDpopProof(await proof(es256, { htu }), expectations(es256, { url }), settings());
    }
  });

  test("a request URL that cannot be compared is refused, not matched", async () => {
    await refused(verifyDpopProof(await proof(es256, { htu: "not a url" }), expectations(es256, { url: "not a url" }), settings()), "invalid_dpop_proof", /request URL .* cannot be compared/);
  });

  test("stale iat", async () => {
    await refused(verifyDpopProof(await proof(es256, { iat: seconds() - 120 }), expectations(es256), settings()), "invalid_dpop_proof", /iat is 12\d s old \(at most 60 s\)/);
  });

  test("iat in the future", async () => {
    await refused(verifyDpopProof(await proof(es256, { iat: seconds() + 60 }), expectations(es256), settings()), "invalid_dpop_proof", /iat is \d+ s in the future/);
  });

  test("iat at the edges of the window is accepted (max age, clock tolerance)", async () => {
    const now = Date.now();
    const clock = { now: () => now };
    const at = Math.floor(now / 1000);
    await verifyDpopProof(await proof(es256, { iat: at - 60 - 4 }), expectations(es256), settings(clock));
    await verifyDpopProof(await proof(es256, { iat: at + 4 }), expectations(es256), settings(clock));
    await refused(verifyDpopProof(await proof(es256, { iat: at - 60 - 6 }), expectations(es256), settings(clock)), "invalid_dpop_proof", /old/);
    await refused(verifyDpopProof(await proof(es256, { iat: at + 6 }), expectations(es256), settings(clock)), "invalid_dpop_proof", /future/);
  });

  test("no iat, or iat not a number", async () => {
    await refused(verifyDpopProof(await proof(es256, { iat: undefined }), expectations(es256), settings()), "invalid_dpop_proof", /no numeric iat/);
    await refused(verifyDpopProof(await proof(es256, { iat: String(seconds()) }), expectations(es256), settings()), "invalid_dpop_proof", /does not verify|iat/);
  });

  test("missing jti, and a jti too long", async () => {
    await refused(verifyDpopProof(await proof(es256, { jti: undefined }), expectations(es256), settings()), "invalid_dpop_proof", /no jti/);
    await refused(verifyDpopProof(await proof(es256, { jti: "" }), expectations(es256), settings()), "invalid_dpop_proof", /no jti/);
    await refused(verifyDpopProof(await proof(es256, { jti: "j".repeat(MAX_JTI_LENGTH + 1) }), expectations(es256), settings()), "invalid_dpop_proof", /jti is 257 characters long/);
  });

  test("wrong ath (a proof made for another token)", async () => {
    await refused(verifyDpopProof(await proof(es256, { ath: accessTokenHash("another token") }), expectations(es256), settings()), "invalid_dpop_proof", /ath .* is not the hash of the access token/);
  });

  test("missing ath when a token is presented", async () => {
    await refused(verifyDpopProof(await proof(es256, { ath: undefined }), expectations(es256), settings()), "invalid_dpop_proof", /no ath/);
  });

  test("the key's thumbprint is not the token's cnf.jkt", async () => {
    await refused(verifyDpopProof(await proof(ed25519), expectations(ed25519, { expectedJkt: es256.jkt }), settings()), "invalid_token", /not the one the token is bound to/);
  });
});

describe("replay", () => {
  test("the same proof twice: the second is refused", async () => {
    const s = settings();
    const once = await proof(es256);
    await verifyDpopProof(once, expectations(es256), s);
    await refused(verifyDpopProof(once, expectations(es256), s), "invalid_dpop_proof", /jti ".*" was already used/);
  });

  test("the same proof with a malleated ECDSA signature (s → n − s) is still the same proof", async () => {
    const s = settings();
    const once = await proof(es256);
    const [header = "", payload = "", signature = ""] = once.split(".");
    const bytes = base64url.decode(signature);
    const order = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    const sValue = BigInt(`0x${Buffer.from(bytes.subarray(32)).toString("hex")}`);
    const flipped = Buffer.from((order - sValue).toString(16).padStart(64, "0"), "hex");
    const malleated = `${header}.${payload}.${base64url.encode(Buffer.concat([bytes.subarray(0, 32), flipped]))}`;
    assert.notEqual(malleated, once);
    await verifyDpopProof(malleated, expectations(es256), settings());
    await verifyDpopProof(once, expectations(es256), s);
    await refused(verifyDpopProof(malleated, expectations(es256), s), "invalid_dpop_proof", /already used/);
  });

  test("another proof reusing a jti of the same key is refused; the same jti under another key is not", async () => {
    const s = settings();
    const jti = randomUUID();
    await verifyDpopProof(await proof(es256, { jti }), expectations(es256), s);
    await refused(verifyDpopProof(await proof(es256, { jti }), expectations(es256), s), "invalid_dpop_proof", /already used/);
    await verifyDpopProof(await proof(ed25519, { jti }), expectations(ed25519), s);
  });

  test("a refused proof does not take its jti: the store holds only accepted proofs", async () => {
    const store = new MemoryReplayStore();
    const s = settings({ replayStore: store });
    await refused(verifyDpopProof(await proof(es256), expectations(es256, { expectedJkt: ed25519.jkt }), s), "invalid_token", /bound/);
    await refused(verifyDpopProof(await proof(es256, { htm: "PUT" }), expectations(es256), s), "invalid_dpop_proof", /htm/);
    assert.equal(store.size, 0);
  });

  test("the jti is remembered as long as its iat is acceptable, on this node or on one whose clock is up to the tolerance behind", async () => {
    const ttls: number[] = [];
    const store: OidcReplayStore = { claim: (_key, ttlMs) => (ttls.push(ttlMs), Promise.resolve(true)) };
    const now = Date.now();
    const at = Math.floor(now / 1000);
    await verifyDpopProof(await proof(es256, { iat: at - 30 }), expectations(es256), settings({ replayStore: store, now: () => now }));
    assert.equal(ttls.length, 1);
    assert.equal(ttls[0], (at - 30 + 60 + 5 + 5) * 1000 - now);
  });

  test("a replay store that cannot answer fails the check with another error than a refused proof", async () => {
    const down: OidcReplayStore = { claim: () => Promise.reject(new Error("connection refused")) };
    await assert.rejects(verifyDpopProof(await proof(es256), expectations(es256), settings({ replayStore: down })), (error: unknown) => {
      assert.ok(error instanceof Error && !isDpopProofError(error));
      assert.match(error.message, /replay store did not answer: connection refused/);
      return true;
    });
  });
});

describe("server nonces", () => {
  const SLICE = 60_000;
  let now = 0;
  const clock = () => now;
  const noncesAt = () => {
    const issuer = createNonceIssuer({ now: clock, secret: new Uint8Array(32).fill(1) });
    return { issuer, s: settings({ nonces: issuer }) };
  };

  test("required and missing: use_dpop_nonce with the nonce to use", async () => {
    now = 10 * SLICE;
    const { issuer, s } = noncesAt();
    await assert.rejects(verifyDpopProof(await proof(es256), expectations(es256), s), (error: unknown) => {
      assert.ok(isDpopProofError(error));
      assert.equal(error.error, "use_dpop_nonce");
      assert.equal(error.nonce, issuer.current());
      assert.match(error.reason, /no nonce/);
      return true;
    });
  });

  test("wrong nonce: use_dpop_nonce with a fresh one", async () => {
    now = 10 * SLICE;
    const { issuer, s } = noncesAt();
    await assert.rejects(verifyDpopProof(await proof(es256, { nonce: "made-up" }), expectations(es256), s), (error: unknown) => {
      assert.ok(isDpopProofError(error) && error.error === "use_dpop_nonce");
      assert.equal(error.nonce, issuer.current());
      assert.match(error.reason, /nonce "made-up" is unknown or expired/);
      return true;
    });
  });

  test("the current nonce is accepted, with nothing new to send", async () => {
    now = 10 * SLICE;
    const { issuer, s } = noncesAt();
    const result = await verifyDpopProof(await proof(es256, { nonce: issuer.current() }), expectations(es256), s);
    assert.equal(result.nonce, undefined);
  });

  test("the previous slice's nonce is accepted, with the new nonce to send; an older one is refused", async () => {
    now = 10 * SLICE;
    const { issuer, s } = noncesAt();
    const old = issuer.current() as string;
    now = 11 * SLICE;
    const result = await verifyDpopProof(await proof(es256, { nonce: old }), expectations(es256), s);
    assert.equal(result.nonce, issuer.current());
    assert.notEqual(result.nonce, old);
    now = 12 * SLICE;
    await refused(verifyDpopProof(await proof(es256, { nonce: old }), expectations(es256), s), "use_dpop_nonce", /unknown or expired/);
  });

  test("without nonces configured, a proof's nonce is ignored", async () => {
    await verifyDpopProof(await proof(es256, { nonce: "anything" }), expectations(es256), settings());
  });
});

describe("anything else is refused as a proof", () => {
  /** The promise rejects with a DpopProofError (never resolves, never rejects with another error). */
  async function refusedAsProof(promise: Promise<unknown>): Promise<void> {
    await assert.rejects(promise, (thrown: unknown) => isDpopProofError(thrown));
  }

  test("arbitrary values and strings", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.stringMatching(/^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/), fc.anything()), async (value) => {
        await refusedAsProof(verifyDpopProof(value, expectations(es256), settings()));
      }),
      { numRuns: 200 },
    );
  });

  test("a valid proof with one character changed (the signature's padding bits aside)", async () => {
    const valid = await proof(es256);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: valid.length - 2 }), fc.constantFrom(..."ABCabc012-_."), async (at, char) => {
        fc.pre(valid[at] !== char);
        const changed = `${valid.slice(0, at)}${char}${valid.slice(at + 1)}`;
        await refusedAsProof(verifyDpopProof(changed, expectations(es256), settings()));
      }),
      { numRuns: 200 },
    );
  });
});

describe("settings", () => {
  test("symmetric, unsigned or unknown algorithms cannot be allowed", () => {
    for (const alg of ["none", "HS256", "HS512", "dir", "A128KW", ""]) assert.throws(() => resolveDpopOptions({ algorithms: [alg] }), /algorithms/);
    assert.throws(() => resolveDpopOptions({ algorithms: [] }), /algorithms/);
  });

  test("every default algorithm is asymmetric", () => {
    assert.deepEqual(resolveDpopOptions().algorithms, DEFAULT_DPOP_ALGORITHMS);
    for (const alg of DEFAULT_DPOP_ALGORITHMS) assert.doesNotMatch(alg, /^(HS|none)/);
  });

  test("bad windows, stores, nonces and origins are refused with the option's name", () => {
    assert.throws(() => resolveDpopOptions({ maxAgeSeconds: 0 }), /maxAgeSeconds/);
    assert.throws(() => resolveDpopOptions({ maxAgeSeconds: 1.5 }), /maxAgeSeconds/);
    assert.throws(() => resolveDpopOptions({ clockToleranceSeconds: -1 }), /clockToleranceSeconds/);
    assert.throws(() => resolveDpopOptions({ replayStore: {} as OidcReplayStore }), /replayStore/);
    assert.throws(() => resolveDpopOptions({ nonces: {} as never }), /nonces/);
    assert.throws(() => resolveDpopOptions({ publicOrigin: "https://api.example.com/app" }), /publicOrigin/);
  });

  test("nonces: true makes an issuer; a public origin is normalised", () => {
    const s = resolveDpopOptions({ nonces: true, publicOrigin: "HTTPS://API.example.com:443" });
    assert.equal(typeof s.nonces?.current(), "string");
    assert.deepEqual(s.publicOrigins, ["https://api.example.com"]);
    assert.deepEqual(resolveDpopOptions({ publicOrigin: ["https://a.example", "http://b.example:8080/"] }).publicOrigins, ["https://a.example", "http://b.example:8080"]);
    assert.throws(() => resolveDpopOptions({ publicOrigin: [] }), /publicOrigin/);
    assert.ok(Object.isFrozen(s));
  });
});

describe("dpopChallenge", () => {
  test("the RFC 9449 section 7.1 challenges", () => {
    assert.equal(dpopChallenge({ algs: ["ES256", "PS256"] }), 'DPoP algs="ES256 PS256"');
    assert.equal(dpopChallenge({ error: "invalid_dpop_proof", algs: ["ES256"] }), 'DPoP error="invalid_dpop_proof", error_description="The DPoP proof is invalid", algs="ES256"');
    assert.equal(dpopChallenge({ error: "invalid_token", algs: ["ES256"] }), 'DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256"');
    assert.equal(dpopChallenge({ error: "use_dpop_nonce", realm: 'a "b"' }), 'DPoP realm="a \\"b\\"", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"');
    assert.equal(dpopChallenge(), "DPoP");
  });
});
