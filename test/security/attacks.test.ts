/**
 * The attack catalogue: one named test per hostile token, against
 * verifyOidcToken with real keys and a real JWKS server that counts hits.
 * (The transports share the pipeline; test/security/transports.test.ts runs
 * the catalogue through a real IOServer.)
 */
import assert from "node:assert/strict";
import { createPrivateKey, createSign, generateKeyPairSync, sign as nodeSign } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { exportJWK, exportSPKI, SignJWT, type JWK } from "jose";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { b64url, makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

const ISS = "https://idp.attack.test";
const AUD = "victim-api";
const nowS = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, sub: "user-1", iat: nowS(), exp: nowS() + 300, ...extra });

let rsa: SigningKey;
let ec: SigningKey;
let attacker: SigningKey;
let jwks: JwksServer;
let config: OidcConfigInput;
let weak: { kid: string; pem: string };

/** A server the attacker controls; it must never be contacted. */
let bait: { url: string; hits: number; close(): Promise<void> };

before(async () => {
  [rsa, ec, attacker] = await Promise.all([makeKey("RS256"), makeKey("ES256"), makeKey("RS256")]);
  // An RSA-1024 key published by a careless provider: verification must still refuse it.
  const small = generateKeyPairSync("rsa", { modulusLength: 1024 });
  weak = { kid: "weak-1024", pem: small.privateKey.export({ type: "pkcs8", format: "pem" }) as string };
  const weakJwk = { ...(small.publicKey.export({ format: "jwk" }) as JWK), kid: weak.kid, alg: "RS256", use: "sig" };
  jwks = await startJwksServer([rsa.jwk, ec.jwk, weakJwk]);
  config = { authServiceUrl: ISS, appSlug: AUD, jwksUri: jwks.jwksUri };
  const state = { hits: 0 };
  const server = createServer((_req, res) => {
    state.hits++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [attacker.jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  bait = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get hits() {
      return state.hits;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  // Warm the key cache so "no fetch" assertions below compare against a stable count.
  await verifyOidcToken(await sign(rsa, claims()), config);
});
after(async () => {
  await jwks.close();
  await bait.close();
});

async function refused(token: string, expected: RegExp | undefined = undefined, cfg: OidcConfigInput = config): Promise<void> {
  const before = jwks.hits;
  const error = await verifyOidcToken(token, cfg).then(
    (ctx) => assert.fail(`accepted a hostile token (sub ${ctx.sub})`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof OidcAuthError, `not an OidcAuthError: ${String(error)}`);
  assert.equal(error.code, "ERR_AUTH_TOKEN_INVALID", error.reason);
  assert.equal(error.message, "The access token is invalid", "the client learns nothing specific");
  if (expected) assert.match(error.reason, expected);
  assert.ok(jwks.hits - before <= 1, "at most one re-fetch");
}

const header = (h: Record<string, unknown>) => b64url(JSON.stringify(h));

/** Sign any header and payload segment with the real RSA key, bypassing jose's own refusals. */
async function rawRs256(h: Record<string, unknown>, payloadSegment: string): Promise<string> {
  const signingInput = `${header(h)}.${payloadSegment}`;
  const pkcs8 = await (await import("jose")).exportPKCS8(rsa.privateKey);
  return `${signingInput}.${b64url(createSign("RSA-SHA256").update(signingInput).sign(createPrivateKey(pkcs8)))}`;
}
const body = (c: Record<string, unknown> = claims()) => b64url(JSON.stringify(c));

describe("attack catalogue: algorithms", () => {
  for (const alg of ["none", "None", "NONE", "nOnE"]) {
    it(`alg "${alg}" (unsigned) is refused before any key fetch`, async () => {
      const before = jwks.hits;
      await refused(`${header({ alg, typ: "JWT" })}.${body()}.`);
      await refused(`${header({ alg })}.${body()}.${b64url("x")}`, /is not allowed/);
      assert.equal(jwks.hits, before);
    });
  }

  for (const alg of ["HS256", "HS384", "HS512"] as const) {
    it(`${alg} signed with the RSA public key as the secret (PEM, DER and JWK forms)`, async () => {
      const pem = await exportSPKI(rsa.publicKey);
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
      const jwkText = JSON.stringify(rsa.jwk);
      for (const secret of [new TextEncoder().encode(pem), new Uint8Array(der), new TextEncoder().encode(jwkText)]) {
        const token = await new SignJWT(claims()).setProtectedHeader({ alg, kid: rsa.kid }).sign(secret);
        const before = jwks.hits;
        await refused(token, new RegExp(`"${alg}" is not allowed`));
        assert.equal(jwks.hits, before, "refused before any key fetch");
      }
    });
  }

  it("alg not matching the key type: ES256 header naming the RSA key's kid", async () => {
    await refused(await sign({ ...ec, kid: rsa.kid }, claims()), /no key in the JWKS matches/);
  });

  it("alg not matching the key type: RS256 header naming the EC key's kid", async () => {
    await refused(await sign({ ...attacker, kid: ec.kid }, claims()), /no key in the JWKS matches/);
  });

  it("an RSA key under 2048 bits is refused even when the provider publishes it", async () => {
    const signingInput = `${header({ alg: "RS256", kid: weak.kid })}.${body()}`;
    const signature = createSign("RSA-SHA256").update(signingInput).sign(createPrivateKey(weak.pem));
    await refused(`${signingInput}.${b64url(signature)}`, /2048/);
  });

  it("an EC signature in DER instead of the JWS raw (r||s) form", async () => {
    const signingInput = `${header({ alg: "ES256", kid: ec.kid })}.${body()}`;
    const pkcs8 = await (await import("jose")).exportPKCS8(ec.privateKey);
    const der = nodeSign("sha256", Buffer.from(signingInput), createPrivateKey(pkcs8)); // DER by default
    await refused(`${signingInput}.${b64url(der)}`);
  });
});

describe("attack catalogue: header tricks", () => {
  for (const [name, kid] of [
    ["path traversal", "../../../../etc/passwd"],
    ["SQL-ish", "' OR '1'='1' --"],
    ["10 KB", "k".repeat(10 * 1024)],
  ] as const) {
    it(`kid ${name}: refused, logged short`, async () => {
      const token = await sign({ ...attacker, kid }, claims());
      const error = await verifyOidcToken(token, config).catch((e: OidcAuthError) => e);
      assert.ok(error instanceof OidcAuthError);
      assert.equal(error.code, "ERR_AUTH_TOKEN_INVALID");
      assert.ok(error.reason.length < 300, "attacker-sized values are shortened in the log line");
    });
  }

  it("jku, x5u and an embedded jwk are ignored: never fetched, never trusted", async () => {
    const attackerJwk = await exportJWK(attacker.publicKey);
    const token = await sign(attacker, claims(), { header: { kid: "attacker", jku: `${bait.url}/jwks`, x5u: `${bait.url}/cert`, jwk: attackerJwk } });
    await refused(token, /no key in the JWKS matches/);
    assert.equal(bait.hits, 0);
  });

  it("an embedded jwk with the kid of a real key does not replace it", async () => {
    const token = await sign({ ...attacker, kid: rsa.kid }, claims(), { header: { jwk: await exportJWK(attacker.publicKey) } });
    await refused(token, /signature verification failed/);
  });

  it("an unknown crit header is refused", async () => {
    await refused(await rawRs256({ alg: "RS256", kid: rsa.kid, crit: ["x-unknown"], "x-unknown": true }, body()), /not recognized/);
  });

  it("b64: false (unencoded payload) is refused for a JWT", async () => {
    await refused(await rawRs256({ alg: "RS256", kid: rsa.kid, crit: ["b64"], b64: false }, body()));
    await refused(await rawRs256({ alg: "RS256", kid: rsa.kid, crit: ["b64"], b64: false }, JSON.stringify(claims())), /not a compact JWS/);
  });

  it("a header that is not JSON", async () => {
    await refused(`${b64url("not json")}.${body()}.${b64url("sig")}`, /header is not valid/);
  });

  it("a header that is JSON but not an object", async () => {
    await refused(`${b64url('"RS256"')}.${body()}.${b64url("sig")}`);
  });

  it("a nested JWT (payload is a JWT, cty: JWT)", async () => {
    const inner = await sign(rsa, claims());
    const signingInput = `${header({ alg: "RS256", kid: rsa.kid, cty: "JWT" })}.${b64url(inner)}`;
    await refused(`${signingInput}.${b64url("sig")}`);
  });

  it("a JWE (five segments) instead of a JWS", async () => {
    await refused(`${header({ alg: "RSA-OAEP-256", enc: "A256GCM" })}.a.b.c.d`, /not a compact JWS/);
  });

  it("a JWS in JSON serialization", async () => {
    await refused(JSON.stringify({ payload: body(), signatures: [{ protected: header({ alg: "RS256" }), signature: "x" }] }), /not a compact JWS/);
  });
});

describe("attack catalogue: time claims", () => {
  // Built when each test runs, so the clock-relative values are fresh.
  const cases: Array<[string, () => Record<string, unknown>]> = [
    ["exp as a string", () => ({ exp: String(nowS() + 300) })],
    ["nbf as a string", () => ({ nbf: String(nowS() - 10) })],
    ["iat as a string", () => ({ iat: String(nowS()) })],
    ["exp negative", () => ({ exp: -1 })],
    ["exp zero", () => ({ exp: 0 })],
    ["exp just past the tolerance (6 s ago, tolerance 5 s)", () => ({ exp: nowS() - 6 })],
    ["nbf just past the tolerance (7 s ahead, tolerance 5 s)", () => ({ nbf: nowS() + 7 })],
    ["exp as an object", () => ({ exp: { $gt: 0 } })],
    ["exp as an array", () => ({ exp: [nowS() + 300] })],
    ["exp null", () => ({ exp: null })],
  ];
  for (const [name, extra] of cases) {
    it(name, async () => {
      await refused(await sign(rsa, claims(extra())));
    });
  }

  it("exp as a float in the future is accepted (NumericDate may be fractional)", async () => {
    assert.equal((await verifyOidcToken(await sign(rsa, claims({ exp: nowS() + 300.5 })), config)).sub, "user-1");
  });

  it("a huge exp is accepted as a valid NumericDate, and the expiry schedule copes (no overflow)", async () => {
    const context = await verifyOidcToken(await sign(rsa, claims({ exp: 32503680000 })), config); // year 3000
    assert.equal(context.expiresAt, 32503680000 * 1000);
  });

  it("exp within the tolerance (3 s ago) is accepted; nbf 4 s ahead is accepted", async () => {
    await verifyOidcToken(await sign(rsa, claims({ exp: nowS() - 3 })), config);
    await verifyOidcToken(await sign(rsa, claims({ nbf: nowS() + 4 })), config);
  });
});

describe("attack catalogue: identity claims", () => {
  it("aud array without the audience", async () => {
    await refused(await sign(rsa, claims({ aud: ["other", "another"] })), /aud was/);
  });
  it("aud array with the audience is accepted", async () => {
    await verifyOidcToken(await sign(rsa, claims({ aud: ["other", AUD] })), config);
  });
  it("aud as a number", async () => {
    await refused(await sign(rsa, claims({ aud: 42 })));
  });
  it("iss with a trailing slash", async () => {
    await refused(await sign(rsa, claims({ iss: `${ISS}/` })), /iss was/);
  });
  it("iss in a different case", async () => {
    await refused(await sign(rsa, claims({ iss: ISS.toUpperCase() })), /iss was/);
  });
  it("iss with userinfo", async () => {
    await refused(await sign(rsa, claims({ iss: "https://attacker@idp.attack.test" })), /iss was/);
  });
  it("iss as an array containing the issuer", async () => {
    await refused(await sign(rsa, claims({ iss: [ISS] })), /iss was/);
  });
  it("sub empty", async () => {
    await refused(await sign(rsa, claims({ sub: "" })), /sub must be a non-empty string/);
  });
  it("sub as a number, an object, null", async () => {
    for (const sub of [7, { id: "admin" }, null]) await refused(await sign(rsa, claims({ sub })));
  });
  it("roles that are not strings never become roles", async () => {
    const context = await verifyOidcToken(await sign(rsa, claims({ roles: [{ toString: "admin" }, ["admin"], 1, "member"] })), config);
    assert.deepEqual(context.roles, ["member"]);
  });
  it("a __proto__ claim does not pollute anything", async () => {
    const token = await sign(rsa, JSON.parse(`{"iss":"${ISS}","aud":"${AUD}","sub":"p","exp":${nowS() + 300},"features":{"__proto__":{"admin":true}}}`) as Record<string, unknown>);
    const context = await verifyOidcToken(token, config);
    assert.equal(({} as Record<string, unknown>)["admin"], undefined);
    assert.equal((context.features as Record<string, unknown>)["admin"], undefined);
  });
  it("duplicate JSON keys: the last one counts, exactly as the provider's signature covered it", async () => {
    const payload = `{"iss":"${ISS}","aud":"${AUD}","sub":"first","sub":"last","exp":${nowS() + 300}}`;
    const context = await verifyOidcToken(await rawRs256({ alg: "RS256", kid: rsa.kid }, b64url(payload)), config);
    assert.equal(context.sub, "last");
  });
});

describe("attack catalogue: size", () => {
  it("a token one character over the cap is refused unparsed", async () => {
    const before = jwks.hits;
    await refused(`${"a".repeat(16 * 1024 - 3)}.b.c`.padEnd(16 * 1024 + 1, "c"), /over the 16384 limit/);
    assert.equal(jwks.hits, before);
  });
  it("a payload padded to just under the cap is still verified normally", async () => {
    const token = await sign(rsa, claims({ pad: "x".repeat(10 * 1024) }));
    assert.ok(token.length < 16 * 1024);
    assert.equal((await verifyOidcToken(token, config)).sub, "user-1");
  });
});
