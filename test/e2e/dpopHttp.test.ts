/**
 * DPoP-bound access tokens on HTTP routes (RFC 9449 section 7), end to end:
 * a real IOServer behind `OidcHttpMiddleware`, a real test issuer minting
 * tokens bound to a key the test generates, proofs signed with jose, real
 * HTTP requests.
 */
import assert from "node:assert/strict";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { BaseController } from "ioserver";
import { SignJWT } from "jose";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { OIDC_CHANNELS, OidcConfigManager, OidcHttpMiddleware, type OidcConfigInput } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { createServerBase, routesFolder, type ServerBase } from "../helpers/app.js";
import { ath, now, proof, proofKey, type ProofKey } from "../helpers/dpop.js";

const routes = routesFolder("ioserver-oidc-dpop-", {
  api: [
    { method: "GET", url: "/me", handler: "me" },
    { method: "POST", url: "/me", handler: "me" },
  ],
});

class ApiController extends BaseController {
  async me(request: Record<string, unknown>, reply: { send(body: unknown): unknown }) {
    return reply.send({ sub: request.sub, dpopJkt: request.dpopJkt ?? null });
  }
}

async function startDpopApp(config: OidcConfigInput): Promise<ServerBase> {
  const base = await createServerBase(routes);
  base.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(config) });
  base.server.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
  await base.server.start();
  return base;
}

async function call(base: ServerBase, headers: Record<string, string>, method = "GET") {
  const response = await fetch(`${base.url}/api/me`, { method, headers, signal: AbortSignal.timeout(8_000) });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, body };
}

/** A refusal: status, code, the public body's shape, and the challenge. */
async function refused(base: ServerBase, headers: Record<string, string>, code: string, challenge: RegExp, status = 401) {
  const res = await call(base, headers);
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.code, code);
  assert.deepEqual(Object.keys(res.body).sort(), ["code", "error", "message", "statusCode"]);
  assert.match(res.headers.get("www-authenticate") ?? "", challenge);
  return res;
}

const INVALID_PROOF = /^DPoP realm="api", error="invalid_dpop_proof", error_description="[^"]+", algs="ES256 [^"]*", Bearer realm="api"$/;

let issuer: TestIssuer;
before(async () => {
  issuer = await createTestIssuer();
});
after(async () => {
  await issuer.close();
});

describe("DPoP on HTTP: policy allowed (the default)", () => {
  let app: ServerBase;
  let key: ProofKey;
  let token: string;
  let htu: string;
  before(async () => {
    app = await startDpopApp({ ...issuer.config, realm: "api" });
    key = await proofKey();
    token = await issuer.mint({ sub: "dora", cnf: { jkt: key.jkt } });
    htu = `${app.url}/api/me`;
  });
  after(async () => {
    await app.close();
  });

  const dpop = async (proofValue: string | undefined, accessToken = token) => {
    const headers: Record<string, string> = { authorization: `DPoP ${accessToken}` };
    if (proofValue !== undefined) headers.dpop = proofValue;
    return headers;
  };

  it("accepts a valid proof, twice with two proofs (the second with the token cached), and exposes the key's thumbprint", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await call(app, await dpop(await proof(key, { htu, token })));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { sub: "dora", dpopJkt: key.jkt });
      assert.equal(res.headers.get("dpop-nonce"), null);
    }
  });

  it("accepts the scheme in any case, and a proof with a query in the request URL", async () => {
    const res = await fetch(`${app.url}/api/me?x=1`, { headers: { authorization: `dpop ${token}`, dpop: await proof(key, { htu, token }) }, signal: AbortSignal.timeout(8_000) });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });

  it("still accepts a Bearer token bound to no key, with no DPoP work", async () => {
    const plain = await issuer.mint({ sub: "bob" });
    const res = await call(app, { authorization: `Bearer ${plain}` });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { sub: "bob", dpopJkt: null });
  });

  it("refuses a proof for another method (htm)", async () => {
    await refused(app, await dpop(await proof(key, { htu, token, htm: "POST" })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses a proof for another URL (htu)", async () => {
    await refused(app, await dpop(await proof(key, { htu: `${app.url}/api/other`, token })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    await refused(app, await dpop(await proof(key, { htu: `https://elsewhere.example/api/me`, token })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses a stale proof (iat) and one from the future", async () => {
    await refused(app, await dpop(await proof(key, { htu, token, iat: now() - 600 })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    await refused(app, await dpop(await proof(key, { htu, token, iat: now() + 600 })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses a replayed proof (jti)", async () => {
    const once = await proof(key, { htu, token });
    assert.equal((await call(app, await dpop(once))).status, 200);
    await refused(app, await dpop(once), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses a proof for another token (ath), and one without ath", async () => {
    await refused(app, await dpop(await proof(key, { htu, ath: ath("another token") })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    await refused(app, await dpop(await proof(key, { htu })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses a proof signed by another key than the token's (cnf.jkt)", async () => {
    const other = await proofKey();
    await refused(app, await dpop(await proof(other, { htu, token })), "ERR_AUTH_TOKEN_INVALID", /^DPoP realm="api", error="invalid_token", error_description="[^"]+", algs="[^"]+", Bearer realm="api", error="invalid_token"/);
  });

  it("refuses a bound token with no proof, and with two proofs", async () => {
    await refused(app, await dpop(undefined), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    const two = `${await proof(key, { htu, token })}, ${await proof(key, { htu, token })}`;
    await refused(app, await dpop(two), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses a bound token presented as Bearer (downgrade), even with a valid proof", async () => {
    const res = await refused(app, { authorization: `Bearer ${token}` }, "ERR_AUTH_TOKEN_INVALID", /^DPoP realm="api", error="invalid_token", .*algs="[^"]+", Bearer realm="api", error="invalid_token"/);
    assert.equal(res.headers.get("dpop-nonce"), null);
    await refused(app, { authorization: `Bearer ${token}`, dpop: await proof(key, { htu, token }) }, "ERR_AUTH_TOKEN_INVALID", /invalid_token/);
  });

  it("refuses the DPoP scheme with a token bound to no key", async () => {
    const plain = await issuer.mint({ sub: "bob" });
    await refused(app, { authorization: `DPoP ${plain}`, dpop: await proof(key, { htu, token: plain }) }, "ERR_AUTH_TOKEN_INVALID", /^DPoP realm="api", error="invalid_token"/);
  });

  it("challenges a token that fails verification under the DPoP scheme with both schemes; a request without a token with Bearer alone", async () => {
    const forged = `${token.slice(0, token.lastIndexOf(".") + 1)}${"A".repeat(86)}`;
    await refused(app, await dpop(await proof(key, { htu, token: forged }), forged), "ERR_AUTH_TOKEN_INVALID", /^DPoP realm="api", error="invalid_token", error_description="The access token is invalid", algs="ES256 [^"]*", Bearer realm="api", error="invalid_token", error_description="The access token is invalid"$/);
    // Where the app neither requires DPoP nor set dpop options, a request without credentials is challenged as before.
    const res = await call(app, {});
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="api"');
  });

  it("refuses a proof whose jwk holds the private key", async () => {
    await refused(app, await dpop(await proof(key, { htu, token, header: { jwk: key.privateJwk } })), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("refuses alg none and an HS256 proof", async () => {
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const claims = { htm: "GET", htu, iat: now(), jti: randomUUID(), ath: ath(token) };
    const unsigned = `${b64({ alg: "none", typ: "dpop+jwt", jwk: key.jwk })}.${b64(claims)}.${Buffer.from("x").toString("base64url")}`;
    await refused(app, await dpop(unsigned), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    const secret = randomBytes(32);
    // jose will not put a symmetric key in a header: this one is written by hand, with an HMAC from node:crypto.
    const symmetricHeader = b64({ alg: "HS256", typ: "dpop+jwt", jwk: { kty: "oct", k: secret.toString("base64url") } });
    const body = b64({ ...claims, jti: randomUUID() });
    const mac = createHmac("sha256", secret).update(`${symmetricHeader}.${body}`).digest("base64url");
    const hmac = `${symmetricHeader}.${body}.${mac}`;
    await refused(app, await dpop(hmac), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    const hmacWithPublicJwk = await new SignJWT({ ...claims, jti: randomUUID() }).setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: key.jwk }).sign(secret);
    await refused(app, await dpop(hmacWithPublicJwk), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
  });

  it("logs the reason, never the token or the proof", async () => {
    const proofValue = await proof(key, { htu, token, htm: "DELETE" });
    await refused(app, await dpop(proofValue), "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    const text = app.logs.map((line) => line.text).join("\n");
    assert.match(text, /DPoP: the DPoP proof htm "DELETE"/);
    assert.ok(!text.includes(token));
    assert.ok(!text.includes(proofValue));
  });
});

describe("DPoP on HTTP: server nonces", () => {
  let app: ServerBase;
  before(async () => {
    app = await startDpopApp({ ...issuer.config, dpop: { nonce: true } });
  });
  after(async () => {
    await app.close();
  });

  it("answers use_dpop_nonce with a DPoP-Nonce, then accepts the proof that carries it", async () => {
    const key = await proofKey();
    const token = await issuer.mint({ sub: "nina", cnf: { jkt: key.jkt } });
    const htu = `${app.url}/api/me`;
    const first = await refused(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu, token }) }, "ERR_AUTH_DPOP_NONCE", /^DPoP error="use_dpop_nonce", error_description="[^"]+", algs="[^"]+", Bearer$/);
    const nonce = first.headers.get("dpop-nonce");
    assert.ok(nonce !== null && nonce.length > 20);
    await refused(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu, token, nonce: "made-up" }) }, "ERR_AUTH_DPOP_NONCE", /use_dpop_nonce/);
    const retry = await call(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu, token, nonce }) });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.dpopJkt, key.jkt);
  });

  it("names both schemes, with algs, to a request without a token (the app set dpop options)", async () => {
    const res = await call(app, {});
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^DPoP algs="ES256 [^"]*", Bearer$/);
  });

  it("asks no nonce of a Bearer token bound to no key", async () => {
    const res = await call(app, { authorization: `Bearer ${await issuer.mint({ sub: "bob" })}` });
    assert.equal(res.status, 200);
  });
});

describe("DPoP on HTTP: issuer policies", () => {
  let required: ServerBase;
  let disabled: ServerBase;
  before(async () => {
    required = await startDpopApp({ issuers: [{ issuer: issuer.issuer, audience: issuer.appSlug, jwksUri: issuer.jwksUri, dpop: "required" }] });
    disabled = await startDpopApp({ ...issuer.config, dpop: { policy: "disabled" } });
  });
  after(async () => {
    await required.close();
    await disabled.close();
  });

  it("required: refuses a Bearer token with a DPoP challenge only, accepts DPoP", async () => {
    const res = await refused(required, { authorization: `Bearer ${await issuer.mint({ sub: "bob" })}` }, "ERR_AUTH_TOKEN_INVALID", /^DPoP error="invalid_token", error_description="[^"]+", algs="[^"]+"$/);
    assert.ok(!(res.headers.get("www-authenticate") ?? "").includes("Bearer"));
    const bare = await call(required, {});
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get("www-authenticate") ?? "", /^DPoP algs="ES256 [^"]*"$/, "no token: the DPoP challenge alone, without an error");
    await refused(required, { authorization: "DPoP not.a.token" }, "ERR_AUTH_TOKEN_INVALID", /^DPoP error="invalid_token", error_description="The access token is invalid", algs="[^"]+"$/);
    const key = await proofKey();
    const token = await issuer.mint({ sub: "dora", cnf: { jkt: key.jkt } });
    const ok = await call(required, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: `${required.url}/api/me`, token }) });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.dpopJkt, key.jkt);
  });

  it("disabled: refuses the DPoP scheme with a Bearer challenge only, accepts Bearer, refuses a bound token as Bearer", async () => {
    const key = await proofKey();
    const token = await issuer.mint({ sub: "dora", cnf: { jkt: key.jkt } });
    const res = await refused(disabled, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: `${disabled.url}/api/me`, token }) }, "ERR_AUTH_TOKEN_INVALID", /^Bearer error="invalid_token"/);
    assert.ok(!(res.headers.get("www-authenticate") ?? "").includes("DPoP"));
    assert.equal((await call(disabled, { authorization: `Bearer ${await issuer.mint({ sub: "bob" })}` })).status, 200);
    await refused(disabled, { authorization: `Bearer ${token}` }, "ERR_AUTH_TOKEN_INVALID", /^Bearer error="invalid_token"/);
  });
});

describe("DPoP on HTTP: several issuers, each with its policy", () => {
  let second: TestIssuer;
  let app: ServerBase;
  before(async () => {
    second = await createTestIssuer();
    app = await startDpopApp({
      dpop: { policy: "required" },
      issuers: [
        { issuer: issuer.issuer, audience: issuer.appSlug, jwksUri: issuer.jwksUri },
        { issuer: second.issuer, audience: second.appSlug, jwksUri: second.jwksUri, dpop: "allowed" },
      ],
    });
  });
  after(async () => {
    await app.close();
    await second.close();
  });

  it("applies the policy of the issuer that issued the token", async () => {
    await refused(app, { authorization: `Bearer ${await issuer.mint({ sub: "bob" })}` }, "ERR_AUTH_TOKEN_INVALID", /^DPoP error="invalid_token"/);
    const res = await call(app, { authorization: `Bearer ${await second.mint({ sub: "bob" })}` });
    assert.equal(res.status, 200);
    const key = await proofKey();
    const token = await second.mint({ sub: "dora", cnf: { jkt: key.jkt } });
    await refused(app, { authorization: `Bearer ${token}` }, "ERR_AUTH_TOKEN_INVALID", /^DPoP error="invalid_token", .*, Bearer error="invalid_token"/);
    const ok = await call(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: `${app.url}/api/me`, token }) });
    assert.equal(ok.status, 200);
  });
});

describe("DPoP on HTTP: behind a proxy (publicOrigin)", () => {
  let app: ServerBase;
  before(async () => {
    app = await startDpopApp({ ...issuer.config, dpop: { publicOrigin: ["https://api.example.test", "https://other.example.test"] } });
  });
  after(async () => {
    await app.close();
  });

  it("compares htu with the public origin, not with the address the proxy reached", async () => {
    const key = await proofKey();
    const token = await issuer.mint({ sub: "dora", cnf: { jkt: key.jkt } });
    const ok = await call(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: "https://api.example.test/api/me", token }) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    await refused(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: `${app.url}/api/me`, token }) }, "ERR_AUTH_DPOP_INVALID", /^DPoP error="invalid_dpop_proof"/);
  });
});

describe("DPoP on HTTP: a replay store that cannot answer", () => {
  let app: ServerBase;
  before(async () => {
    app = await startDpopApp({ ...issuer.config, dpop: { replayStore: { claim: () => Promise.reject(new Error("store down")) } } });
  });
  after(async () => {
    await app.close();
  });

  it("answers 503 ERR_AUTH_UNAVAILABLE", async () => {
    const key = await proofKey();
    const token = await issuer.mint({ sub: "dora", cnf: { jkt: key.jkt } });
    const res = await call(app, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: `${app.url}/api/me`, token }) });
    assert.equal(res.status, 503);
    assert.equal(res.body.code, "ERR_AUTH_UNAVAILABLE");
    assert.equal(res.headers.get("retry-after"), "5");
  });
});

describe("DPoP on HTTP: the proof is part of the authentication", () => {
  let base: ServerBase;
  let key: ProofKey;
  let htu: string;
  const provisioned: string[] = [];
  const outcomes: Array<{ transport: string; outcome: string }> = [];
  const listen = (message: unknown) => outcomes.push(message as { transport: string; outcome: string });

  /** A users manager that records every subject it is asked to provision. */
  class RecordingUsers {
    async findOrCreate(sub: string) {
      provisioned.push(sub);
      return { id: `local-${sub}`, role: "user", isDisabled: false };
    }
  }

  before(async () => {
    base = await createServerBase(routes);
    base.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure({ ...issuer.config, realm: "api" }) });
    base.server.addManager({ name: "users", manager: RecordingUsers });
    base.server.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
    await base.server.start();
    key = await proofKey();
    htu = `${base.url}/api/me`;
    subscribe(OIDC_CHANNELS.auth, listen);
  });
  after(async () => {
    unsubscribe(OIDC_CHANNELS.auth, listen);
    await base?.close();
  });

  it("a refused proof provisions nothing, and the auth channel reports the refusal's code", async () => {
    const sub = `dpop-${randomUUID()}`;
    const token = await issuer.mint({ sub, cnf: { jkt: key.jkt } });
    outcomes.length = 0;
    await refused(base, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu, token, htm: "POST" }) }, "ERR_AUTH_DPOP_INVALID", INVALID_PROOF);
    assert.deepEqual(provisioned, [], "findOrCreate was not asked for a token refused for its proof");
    assert.deepEqual(outcomes.map(({ transport, outcome }) => ({ transport, outcome })), [{ transport: "http", outcome: "ERR_AUTH_DPOP_INVALID" }]);

    outcomes.length = 0;
    const ok = await call(base, { authorization: `DPoP ${token}`, dpop: await proof(key, { htu, token }) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(provisioned, [sub], "provisioned once the proof held");
    assert.deepEqual(outcomes.map(({ outcome }) => outcome), ["success"]);
  });
});
