import assert from "node:assert/strict";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { useTestIssuer } from "../helpers/fixtures.js";

const fetchJson = async (url: string, init: RequestInit = {}) => {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  return { status: response.status, type: response.headers.get("content-type"), body: (await response.json()) as Record<string, unknown> };
};
const servedKids = async (issuer: TestIssuer) =>
  ((await fetchJson(issuer.jwksUri)).body.keys as Array<{ kid: string }>).map((k) => k.kid);
/** Verify against a fresh remote JWKS (no cache carried over between calls). */
const verify = (issuer: TestIssuer, token: string) =>
  jwtVerify(token, createRemoteJWKSet(new URL(issuer.jwksUri), { timeoutDuration: 5_000 }), {
    issuer: issuer.issuer,
    audience: issuer.appSlug,
  });
/** Resolves with the error code of a TCP connect attempt, bounded to 2 s. */
const connectError = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, timeout: 2_000 });
    socket.once("connect", () => (socket.destroy(), resolve("connected")));
    socket.once("timeout", () => (socket.destroy(), resolve("timeout")));
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });

describe("createTestIssuer", () => {
  let issuer: TestIssuer;
  useTestIssuer((created) => (issuer = created), { appSlug: "kit-app" });

  it("serves the discovery documents and the JWKS on 127.0.0.1, counting JWKS hits", async () => {
    assert.match(issuer.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(issuer.issuer, `http://127.0.0.1:${issuer.port}`);
    assert.equal(issuer.jwksUri, `${issuer.issuer}/api/auth/jwks`);
    for (const path of ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]) {
      const discovery = await fetchJson(issuer.issuer + path);
      assert.equal(discovery.status, 200);
      assert.equal(discovery.body.issuer, issuer.issuer);
      assert.equal(discovery.body.jwks_uri, issuer.jwksUri);
      assert.deepEqual(discovery.body.id_token_signing_alg_values_supported, ["RS256", "ES256"]);
    }
    const start = issuer.jwksRequests;
    const jwks = await fetchJson(issuer.jwksUri);
    assert.equal(issuer.jwksRequests, start + 1);
    await fetchJson(issuer.jwksUri);
    assert.equal(issuer.jwksRequests, start + 2);
    assert.equal(jwks.status, 200);
    assert.match(jwks.type ?? "", /^application\/json/);
    const keys = jwks.body.keys as Array<Record<string, unknown>>;
    assert.deepEqual(keys.map((k) => [k.kty, k.alg, k.use]).sort(), [["EC", "ES256", "sig"], ["RSA", "RS256", "sig"]]);
    assert.ok(keys.every((k) => typeof k.kid === "string" && k.d === undefined), "public keys only");
    assert.equal(new Set(keys.map((k) => k.kid)).size, 2);
    assert.deepEqual(issuer.publicJwks(), jwks.body);
  });

  it("answers 404 JSON to everything else, including /jwks and non-GET", async () => {
    const start = issuer.jwksRequests;
    for (const [path, method] of [["/nope", "GET"], ["/jwks", "GET"], ["/api/auth/jwks", "POST"]] as const) {
      const res = await fetchJson(issuer.issuer + path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.match(res.type ?? "", /^application\/json/);
    }
    assert.equal(issuer.jwksRequests, start);
  });

  it("config is a fresh frozen object ready for the package", () => {
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
      const start = issuer.jwksRequests;
      const token = await issuer.mint({ sub: "kit-user" }, { alg });
      const { payload, protectedHeader } = await verify(issuer, token);
      assert.equal(protectedHeader.alg, alg);
      assert.equal(protectedHeader.typ, "JWT");
      assert.ok(issuer.publicJwks().keys.some((k) => k.kid === protectedHeader.kid && k.alg === alg));
      assert.equal(payload.sub, "kit-user");
      assert.equal(payload.iss, issuer.issuer);
      assert.equal(payload.aud, "kit-app");
      assert.ok(Math.abs((payload.iat as number) - Date.now() / 1000) < 5);
      assert.equal((payload.exp as number) - (payload.iat as number), 300);
      assert.equal(issuer.jwksRequests, start + 1);
    });
  }

  it("merges claims over the defaults, removes undefined ones, signs odd types as given", async () => {
    const token = await issuer.mint({ exp: undefined, sub: "x", roles: ["a"], nbf: "soon", features: { n: 1 } });
    const payload = decodeJwt(token);
    assert.equal("exp" in payload, false);
    assert.equal(payload.sub, "x");
    assert.deepEqual(payload.roles, ["a"]);
    assert.equal(payload.nbf, "soon");
    assert.deepEqual(payload.features, { n: 1 });
    assert.equal(payload.aud, "kit-app");
    assert.equal(decodeJwt(await issuer.mint()).sub, "user-1");
    assert.equal(decodeJwt(await issuer.mint({ exp: 123 })).exp, 123);
  });

  it("overrides header fields", async () => {
    const header = decodeProtectedHeader(await issuer.mint({}, { kid: "other", header: { typ: "at+jwt", x: 1 } }));
    assert.equal(header.kid, "other");
    assert.equal(header.typ, "at+jwt");
    assert.equal(header.x, 1);
    assert.equal(header.alg, "RS256");
  });

  it("rotateKeys replaces the published keys, or keeps the previous ones when asked", async () => {
    await assert.rejects(issuer.mint({}, { key: "previous" }), /needs an earlier rotateKeys/);
    const oldToken = await issuer.mint();
    const oldKid = decodeProtectedHeader(oldToken).kid;
    await issuer.rotateKeys();
    const afterRotate = await servedKids(issuer);
    assert.equal(afterRotate.length, 2);
    assert.ok(!afterRotate.includes(oldKid as string));
    await assert.rejects(verify(issuer, oldToken), { code: "ERR_JWKS_NO_MATCHING_KEY" });
    const previous = await issuer.mint({}, { key: "previous", alg: "ES256" });
    assert.notEqual(decodeProtectedHeader(previous).kid, decodeProtectedHeader(await issuer.mint({}, { alg: "ES256" })).kid);
    assert.equal(decodeProtectedHeader(await issuer.mint({}, { key: "previous" })).kid, oldKid);

    const middleToken = await issuer.mint();
    await issuer.rotateKeys({ keepPrevious: true });
    const kept = await servedKids(issuer);
    assert.equal(kept.length, 4);
    assert.ok(kept.includes(decodeProtectedHeader(middleToken).kid as string));
    await verify(issuer, middleToken);
    await verify(issuer, await issuer.mint({}, { key: "previous", alg: "ES256" }));
    await verify(issuer, await issuer.mint());
  });
});

describe("createTestIssuer: options and lifecycle", () => {
  it("refuses a bad accessTokenTtl with a TypeError naming it", async () => {
    for (const ttl of [0, -1, Number.NaN, Infinity, "60" as unknown as number]) {
      await assert.rejects(createTestIssuer({ accessTokenTtl: ttl }), (e: Error) => e instanceof TypeError && /accessTokenTtl/.test(e.message));
    }
  });

  it("honours accessTokenTtl and a custom jwksPath (only that path)", async () => {
    const issuer = await createTestIssuer({ jwksPath: "/jwks", accessTokenTtl: 60 });
    try {
      assert.equal(issuer.appSlug, "test-app");
      assert.equal(issuer.jwksUri, `${issuer.issuer}/jwks`);
      assert.equal((await fetchJson(issuer.jwksUri)).status, 200);
      assert.equal((await fetchJson(`${issuer.issuer}/api/auth/jwks`)).status, 404);
      const { payload } = await verify(issuer, await issuer.mint());
      assert.equal((payload.exp as number) - (payload.iat as number), 60);
      assert.equal(payload.aud, "test-app");
    } finally {
      await issuer.close();
    }
  });

  it("close() is idempotent, drops kept-alive connections and the port refuses connections", async () => {
    const issuer = await createTestIssuer();
    try {
      assert.equal((await fetchJson(issuer.jwksUri)).status, 200); // leaves a keep-alive socket open
      const closing = Promise.all([issuer.close(), issuer.close()]);
      const timer = new Promise((_, reject) => setTimeout(reject, 2_000, new Error("close() hung")).unref());
      await Promise.race([closing, timer]);
      await issuer.close();
      assert.equal(await connectError(issuer.port), "ECONNREFUSED");
      await assert.rejects(fetch(issuer.jwksUri, { signal: AbortSignal.timeout(2_000) }));
    } finally {
      await issuer.close();
    }
  });
});
