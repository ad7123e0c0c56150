import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";

const fetchJson = async (url: string) => {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe("createTestIssuer", () => {
  let issuer: TestIssuer;
  before(async () => {
    issuer = await createTestIssuer({ appSlug: "kit-app" });
  });
  after(async () => {
    await issuer.close();
  });

  it("serves a discovery document and the JWKS on 127.0.0.1, counting JWKS hits", async () => {
    assert.match(issuer.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(issuer.jwksUri, `${issuer.issuer}/api/auth/jwks`);
    const discovery = await fetchJson(`${issuer.issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.body.issuer, issuer.issuer);
    assert.equal(discovery.body.jwks_uri, issuer.jwksUri);
    const before = issuer.jwksRequests;
    const jwks = await fetchJson(issuer.jwksUri);
    assert.equal(issuer.jwksRequests, before + 1);
    const keys = jwks.body.keys as Array<Record<string, unknown>>;
    assert.deepEqual(keys.map((k) => [k.kty, k.alg, k.use]).sort(), [["EC", "ES256", "sig"], ["RSA", "RS256", "sig"]]);
    assert.ok(keys.every((k) => typeof k.kid === "string" && k.d === undefined), "public keys only");
    assert.equal((await fetchJson(`${issuer.issuer}/nope`)).status, 404);
  });

  it("config is ready for the package", () => {
    assert.deepEqual(issuer.config, {
      authServiceUrl: issuer.issuer,
      appSlug: "kit-app",
      issuer: issuer.issuer,
      jwksUri: issuer.jwksUri,
      audience: "kit-app",
    });
    assert.ok(Object.isFrozen(issuer.config));
  });

  for (const alg of ["RS256", "ES256"] as const) {
    it(`mints ${alg} tokens that jose verifies against the served JWKS`, async () => {
      const token = await issuer.mint({ sub: "kit-user" }, { alg });
      const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(issuer.jwksUri)), {
        issuer: issuer.issuer,
        audience: "kit-app",
      });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(payload.sub, "kit-user");
      assert.equal((payload.exp as number) - (payload.iat as number), 300);
    });
  }

  it("merges claims over the defaults and removes claims set to undefined", async () => {
    const payload = decodeJwt(await issuer.mint({ exp: undefined, sub: "x", roles: ["a"] }));
    assert.equal(payload.exp, undefined);
    assert.equal(payload.sub, "x");
    assert.deepEqual(payload.roles, ["a"]);
    assert.equal(payload.aud, "kit-app");
  });

  it("overrides header fields", async () => {
    const header = decodeProtectedHeader(await issuer.mint({}, { kid: "other", header: { typ: "at+jwt" } }));
    assert.equal(header.kid, "other");
    assert.equal(header.typ, "at+jwt");
  });

  it("rotateKeys replaces the published keys, or keeps the previous ones when asked", async () => {
    await assert.rejects(issuer.mint({}, { key: "previous" }), /needs an earlier rotateKeys/);
    const oldKid = decodeProtectedHeader(await issuer.mint()).kid;
    await issuer.rotateKeys();
    assert.ok(!issuer.publicJwks().keys.some((k) => k.kid === oldKid));
    assert.equal(decodeProtectedHeader(await issuer.mint({}, { key: "previous" })).kid, oldKid);
    const middleKid = decodeProtectedHeader(await issuer.mint()).kid;
    await issuer.rotateKeys({ keepPrevious: true });
    const kids = issuer.publicJwks().keys.map((k) => k.kid);
    assert.equal(kids.length, 4);
    assert.ok(kids.includes(middleKid));
  });
});

describe("createTestIssuer: options and lifecycle", () => {
  it("refuses a bad accessTokenTtl with a TypeError naming it", async () => {
    for (const ttl of [0, -1, Number.NaN, Infinity]) {
      await assert.rejects(createTestIssuer({ accessTokenTtl: ttl }), (e: Error) => e instanceof TypeError && /accessTokenTtl/.test(e.message));
    }
  });

  it("close() is idempotent and the port stops answering", async () => {
    const issuer = await createTestIssuer({ jwksPath: "/jwks", accessTokenTtl: 60 });
    assert.equal(issuer.jwksUri, `${issuer.issuer}/jwks`);
    assert.equal((await fetchJson(issuer.jwksUri)).status, 200);
    await Promise.all([issuer.close(), issuer.close()]);
    await issuer.close();
    await assert.rejects(fetch(issuer.jwksUri, { signal: AbortSignal.timeout(2_000) }));
  });
});
