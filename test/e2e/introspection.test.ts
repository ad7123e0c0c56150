/**
 * Opaque access tokens accepted through introspection (RFC 7662), end to
 * end: a real IOServer, real socket.io-client connections and a real
 * `oidc-provider` that issues opaque tokens and answers introspection.
 * Loopback endpoints answer for what the provider does not give: JWTs it
 * knows (`introspect: "always"`), a DPoP-bound token, no `sub`, no `aud`.
 */
import assert from "node:assert/strict";
import { subscribe, tracingChannel, unsubscribe } from "node:diagnostics_channel";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { OIDC_CHANNELS, type OidcAuthMessage, type OidcConfigManager } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, handshake, httpGet, outcome, startApp, type TestApp } from "../helpers/app.js";
import { startIntrospectionProvider, type IntrospectionProvider } from "../helpers/introspectionProvider.js";
import { proof, proofKey, type ProofKey } from "../helpers/dpop.js";

const health = (app: TestApp) => (app.appHandle.oidcConfig as OidcConfigManager).getHealth();

/** No log line of the app names a token or a client secret. */
function assertNothingLeaked(app: TestApp, secrets: readonly string[]): void {
  for (const secret of secrets) for (const line of app.logs) assert.ok(!line.text.includes(secret), `a log line names a secret or a token: ${line.text}`);
}

describe("opaque tokens through introspection (oidc-provider)", { timeout: 90_000 }, () => {
  let op: IntrospectionProvider;
  let app: TestApp;
  const tokens: string[] = [];
  const heard: OidcAuthMessage[] = [];
  const listener = (message: unknown) => heard.push(message as OidcAuthMessage);

  async function token(): Promise<string> {
    const value = await op.token();
    tokens.push(value);
    return value;
  }

  before(async () => {
    op = await startIntrospectionProvider({ extraClaims: { sub: "alice", roles: ["reader"], email: "alice@example.test" } });
    // Discovery finds both the keys and the introspection endpoint.
    app = await startApp({ config: { issuer: op.issuer, audience: op.resource, introspection: { ...op.basic } } });
    subscribe(OIDC_CHANNELS.auth, listener);
  });
  after(async () => {
    unsubscribe(OIDC_CHANNELS.auth, listener);
    await app.close();
    await op.close();
    assertNothingLeaked(app, [...tokens, op.basic.clientSecret]);
  });

  it("accepts an opaque token on an HTTP route: identity, roles, scopes and expiry from the introspection response", async () => {
    const opaque = await token();
    assert.ok(!opaque.includes("."), "the provider issues opaque tokens");
    const before = op.introspections;
    const res = await httpGet(app, opaque);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body["sub"], "alice");
    assert.equal(res.body["userId"], "alice");
    assert.equal(res.body["userRole"], "reader");
    assert.deepEqual(res.body["roles"], ["reader"]);
    const auth = res.body["auth"] as Record<string, unknown>;
    const claims = auth["claims"] as Record<string, unknown>;
    assert.deepEqual(auth["scopes"], ["read:stats", "chat:write"]);
    assert.equal(auth["email"], "alice@example.test");
    assert.equal(claims["iss"], op.issuer);
    assert.equal(typeof claims["exp"], "number");
    assert.equal(auth["expiresAt"], (claims["exp"] as number) * 1000);
    assert.equal(op.introspections, before + 1);
    const message = heard.findLast((each) => each.transport === "http");
    assert.equal(message?.path, "introspection");
    assert.equal(message?.outcome, "success");
    assert.equal(message?.issuer, op.issuer);
  });

  it("a second request with the same token is answered from the cache: no second introspection call", async () => {
    const opaque = await token();
    assert.equal((await httpGet(app, opaque)).status, 200);
    const calls = op.introspections;
    assert.equal((await httpGet(app, opaque)).status, 200);
    assert.equal((await httpGet(app, opaque)).status, 200);
    assert.equal(op.introspections, calls);
    const message = heard.findLast((each) => each.transport === "http");
    assert.equal(message?.path, "introspection", "a cached answer is reported on the introspection path too");
    assert.equal(message?.outcome, "success");
    const reported = health(app).introspection[0]!;
    assert.equal(reported.issuer, op.issuer);
    assert.equal(reported.endpoint, op.introspectionEndpoint);
    assert.equal(reported.circuit, "closed");
    assert.ok((reported.cache?.hits ?? 0) >= 2);
  });

  it("a cached answer decides at once, like a cached JWT: the authentication is traced without an asynchronous part", async () => {
    const opaque = await token();
    assert.equal((await httpGet(app, opaque)).status, 200);
    const events: string[] = [];
    const record = (event: string) => (context: unknown) => {
      if ((context as { transport?: string }).transport === "http") events.push(event);
    };
    const handlers = { start: record("start"), end: record("end"), asyncStart: record("asyncStart"), asyncEnd: record("asyncEnd"), error: record("error") };
    const tracing = tracingChannel(OIDC_CHANNELS.authenticate);
    tracing.subscribe(handlers);
    try {
      assert.equal((await httpGet(app, opaque)).status, 200);
    } finally {
      tracing.unsubscribe(handlers);
    }
    assert.deepEqual(events, ["start", "end"]);
  });

  it("accepts an opaque token on a Socket.IO handshake, and an in-band oidc:refresh with another opaque token", async () => {
    const socket = await connectedTo(app, "chat", await token());
    try {
      const view = await call<Record<string, unknown>>(socket, "whoami");
      assert.equal(view["sub"], "alice");
      assert.deepEqual(view["roles"], ["reader"]);
      const ack = await call<{ ok: boolean; expiresAt: number }>(socket, "oidc:refresh", { token: await token() });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.ok(ack.expiresAt > Date.now());
    } finally {
      socket.disconnect();
    }
  });

  it("an opaque token's claims are frozen all the way down and share their lists, as a verified JWT's", async () => {
    const first = await connectedTo(app, "chat", await token());
    const second = await connectedTo(app, "chat", await token());
    try {
      await call(first, "whoami");
      await call(second, "whoami");
      const [a, b] = app.seen.slice(-2) as Array<{ roles: string[]; dataAuth: { claims: { roles: string[] } } }>;
      assert.deepEqual(a!.roles, ["reader"]);
      assert.ok(Object.isFrozen(a!.dataAuth.claims.roles), "the introspection answer's own list is frozen");
      assert.equal(a!.roles, a!.dataAuth.claims.roles, "the context's roles are the claims' own list");
      assert.equal(b!.dataAuth.claims.roles, a!.dataAuth.claims.roles, "two tokens with equal roles share one list");
    } finally {
      first.disconnect();
      second.disconnect();
    }
  });

  it("refuses a revoked (inactive) token: 401 invalid_token on HTTP, ERR_AUTH_TOKEN_INVALID on the handshake and on a refresh", async () => {
    const revoked = await token();
    await op.revoke(revoked);
    const res = await httpGet(app, revoked);
    assert.equal(res.status, 401);
    assert.equal(res.code, "ERR_AUTH_TOKEN_INVALID");
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer .*error="invalid_token"/);
    assert.equal((await handshake(app, revoked)).code, "ERR_AUTH_TOKEN_INVALID");
    const socket = await connectedTo(app, "chat", await token());
    try {
      assert.deepEqual(await call(socket, "oidc:refresh", { token: revoked }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    } finally {
      socket.disconnect();
    }
  });

  it("refuses a string that is neither a JWT nor a token the provider knows", async () => {
    const res = await httpGet(app, "not-a-token-the-provider-issued");
    assert.equal(res.status, 401);
    assert.equal(res.code, "ERR_AUTH_TOKEN_INVALID");
  });

  it("refuses tokens that cannot be Bearer tokens, or are over introspection.maxTokenLength, without asking the provider", async () => {
    const before = op.introspections;
    for (const junk of ["<script>alert(1)</script>", 'abc"def', "abc%41", "a".repeat(2049)]) {
      const res = await httpGet(app, junk);
      assert.equal(res.status, 401);
      assert.equal(res.code, "ERR_AUTH_TOKEN_INVALID");
    }
    assert.equal(op.introspections, before, "none reached the introspection endpoint");
    assert.ok((await httpGet(app, await token())).status === 200, "a real token is still introspected");
    assert.equal(op.introspections, before + 1);
  });

  it("answers 503 ERR_AUTH_UNAVAILABLE while the endpoint fails, and getHealth() says so", async () => {
    const opaque = await token();
    op.failWith = 503;
    try {
      const res = await httpGet(app, opaque);
      assert.equal(res.status, 503);
      assert.equal(res.code, "ERR_AUTH_UNAVAILABLE");
      assert.equal((await handshake(app, await token())).code, "ERR_AUTH_UNAVAILABLE");
      const reported = health(app);
      assert.equal(reported.introspection[0]?.circuit, "open");
      assert.equal(reported.status, "unavailable");
    } finally {
      op.failWith = undefined;
    }
  });
});

describe("DPoP-bound opaque tokens (oidc-provider binds them: cnf.jkt and token_type DPoP in its answers)", { timeout: 90_000 }, () => {
  let op: IntrospectionProvider;
  let app: TestApp;
  let key: ProofKey;
  let other: ProofKey;

  before(async () => {
    op = await startIntrospectionProvider({ extraClaims: { sub: "grace", roles: ["reader"] } });
    app = await startApp({ config: { issuer: op.issuer, audience: op.resource, introspection: { ...op.basic } } });
    key = await proofKey();
    other = await proofKey();
  });
  after(async () => {
    await app.close();
    await op.close();
  });

  /** An opaque token the provider binds to `key`: the token request carries a proof by it. */
  const boundToken = async () => op.token(undefined, await proof(key, { htm: "POST", htu: op.tokenEndpoint }));

  async function get(headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${app.url}/api/me`, { headers, signal: AbortSignal.timeout(8_000) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("accepts one on an HTTP route with a proof by its key, its binding in the claims", async () => {
    const token = await boundToken();
    assert.ok(!token.includes("."), "the provider issues opaque tokens");
    const res = await get({ authorization: `DPoP ${token}`, dpop: await proof(key, { htu: `${app.url}/api/me`, token }) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body["sub"], "grace");
    const claims = (res.body["auth"] as Record<string, unknown>)["claims"] as Record<string, unknown>;
    assert.deepEqual(claims["cnf"], { jkt: key.jkt });
    assert.equal(claims["token_type"], "DPoP");
  });

  it("refuses it as a Bearer token, without a proof, and with a proof by another key", async () => {
    const token = await boundToken();
    const url = `${app.url}/api/me`;
    assert.equal((await get({ authorization: `Bearer ${token}` })).status, 401);
    assert.equal((await get({ authorization: `Bearer ${token}`, dpop: await proof(key, { htu: url, token }) })).status, 401);
    const noProof = await get({ authorization: `DPoP ${token}` });
    assert.equal(noProof.status, 401);
    const wrongKey = await get({ authorization: `DPoP ${token}`, dpop: await proof(other, { htu: url, token }) });
    assert.equal(wrongKey.status, 401);
    assert.equal(wrongKey.body["code"], "ERR_AUTH_TOKEN_INVALID");
    // Still good with its own proof: the refusals above did not spoil it.
    assert.equal((await get({ authorization: `DPoP ${token}`, dpop: await proof(key, { htu: url, token }) })).status, 200);
  });

  it("opens a socket with the proof in auth.dpop, refreshes it in band with another bound token and its proof, and refuses the handshake without one", async () => {
    const token = await boundToken();
    const htu = `${app.url}/socket.io/`;
    const opened = await outcome(app.connect("chat", { auth: { token, dpop: await proof(key, { htu, token }) }, reconnection: false }));
    assert.ok(opened.connected, opened.connected ? "" : `refused: ${opened.message}`);
    try {
      const view = await call<Record<string, unknown>>(opened.socket, "whoami");
      assert.equal(view["sub"], "grace");
      const next = await boundToken();
      assert.deepEqual(await call(opened.socket, "oidc:refresh", { token: next }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" }, "a bound token without its proof");
      const ack = await call<{ ok: boolean }>(opened.socket, "oidc:refresh", { token: next, dpop: await proof(key, { htu, token: next }) });
      assert.equal(ack.ok, true, JSON.stringify(ack));
    } finally {
      opened.socket.disconnect();
    }
    assert.equal((await handshake(app, token)).code, "ERR_AUTH_TOKEN_INVALID");
  });
});

describe('introspect: "always" (JWTs verified locally, then introspected)', { timeout: 60_000 }, () => {
  // oidc-provider keeps no record of the JWT access tokens it issues (its introspection answers
  // active: false for them), so the JWTs come from the package's test issuer and a loopback
  // endpoint answers for them: active unless revoked, with the JWT's own subject.
  let issuer: TestIssuer;
  let app: TestApp;
  let server: Server;
  let calls = 0;
  let failWith: number | undefined;
  const revoked = new Set<string>();
  const subjects = new Map<string, string>();
  /** The `cnf` the endpoint's answer names for a token, if any. */
  const answerCnf = new Map<string, unknown>();

  before(async () => {
    issuer = await createTestIssuer();
    server = createServer((req, res) => {
      calls++;
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => {
        if (failWith !== undefined) {
          res.writeHead(failWith, { "content-type": "application/json" }).end('{"error":"server_error"}');
          return;
        }
        const token = new URLSearchParams(body).get("token") ?? "";
        const active = !revoked.has(token) && subjects.has(token);
        const answer = active ? { active, sub: subjects.get(token), iss: issuer.issuer, exp: Math.floor(Date.now() / 1000) + 300, cnf: answerCnf.get(token) } : { active };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
    // cacheTtl 0: every request asks, so a revocation is seen at once.
    app = await startApp({ config: { ...issuer.config, introspection: { endpoint, clientId: "rs", clientSecret: "rs-secret", cacheTtl: 0 }, introspect: "always" } });
  });
  after(async () => {
    await app.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await issuer.close();
  });

  async function jwt(sub: string, answerSub = sub): Promise<string> {
    const token = await issuer.mint({ sub });
    subjects.set(token, answerSub);
    return token;
  }

  it("accepts a JWT that verifies and is active, asks on every request, and refuses it once revoked", async () => {
    const token = await jwt("carol");
    const before = calls;
    const first = await httpGet(app, token);
    assert.equal(first.status, 200, app.logs.map((line) => line.text).join("\n"));
    assert.equal(first.body["sub"], "carol");
    assert.equal(calls, before + 1, "the JWT was introspected");
    // Verified-token cache or not, every request asks the provider.
    assert.equal((await httpGet(app, token)).status, 200);
    assert.equal((await httpGet(app, token)).status, 200);
    assert.equal(calls, before + 3);
    const socket = await connectedTo(app, "chat", token);
    socket.disconnect();
    revoked.add(token);
    const res = await httpGet(app, token);
    assert.equal(res.status, 401);
    assert.equal(res.code, "ERR_AUTH_TOKEN_INVALID");
    assert.equal((await handshake(app, token)).code, "ERR_AUTH_TOKEN_INVALID");
  });

  /** GET /api/me with `Authorization: DPoP` and a proof by `key` for it. */
  async function withProof(token: string, key: ProofKey): Promise<[number, string]> {
    const url = `${app.url}/api/me`;
    const response = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof(key, { htu: url, token }) }, signal: AbortSignal.timeout(8_000) });
    const body = (await response.json()) as Record<string, unknown>;
    return [response.status, response.ok ? "ok" : String(body["code"])];
  }

  it("accepts a DPoP-bound JWT with its proof when the provider binds it to the same key (RFC 9449 section 6.2), and refuses it as Bearer", async () => {
    const key = await proofKey();
    const token = await issuer.mint({ sub: "grace", cnf: { jkt: key.jkt } });
    subjects.set(token, "grace");
    answerCnf.set(token, { jkt: key.jkt });
    assert.deepEqual(await withProof(token, key), [200, "ok"]);
    assert.equal((await httpGet(app, token)).code, "ERR_AUTH_TOKEN_INVALID");
  });

  it("refuses a JWT the provider binds otherwise than the token itself, even with a valid proof for the token's key", async () => {
    const key = await proofKey();
    const other = await proofKey();
    const bound = await issuer.mint({ sub: "heidi", cnf: { jkt: key.jkt } });
    subjects.set(bound, "heidi");
    answerCnf.set(bound, { jkt: other.jkt });
    assert.deepEqual(await withProof(bound, key), [401, "ERR_AUTH_TOKEN_INVALID"]);
    // A JWT bound to nothing that the provider says is bound (to a key, or to a TLS certificate).
    for (const cnf of [{ jkt: key.jkt }, { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }]) {
      const plain = await issuer.mint({ sub: "ivan" });
      subjects.set(plain, "ivan");
      answerCnf.set(plain, cnf);
      assert.equal((await httpGet(app, plain)).code, "ERR_AUTH_TOKEN_INVALID", JSON.stringify(cnf));
    }
  });

  it("refuses a JWT the endpoint describes as another subject's", async () => {
    const token = await jwt("dave", "mallory");
    const res = await httpGet(app, token);
    assert.equal(res.status, 401);
    assert.equal(res.code, "ERR_AUTH_TOKEN_INVALID");
  });

  it("refuses a JWT that does not verify, without asking the endpoint", async () => {
    const token = await jwt("erin");
    const [header, payload, signature] = token.split(".");
    const forged = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;
    const before = calls;
    const res = await httpGet(app, forged);
    assert.equal(res.status, 401);
    assert.equal(calls, before);
  });

  it("answers 503 for a valid JWT while the endpoint fails", async () => {
    const token = await jwt("frank");
    failWith = 500;
    try {
      const res = await httpGet(app, token);
      assert.equal(res.status, 503);
      assert.equal(res.code, "ERR_AUTH_UNAVAILABLE");
    } finally {
      failWith = undefined;
    }
  });
});

describe("introspection answers the provider above does not give (a loopback endpoint)", { timeout: 60_000 }, () => {
  const issuer = "https://idp.introspection-e2e.test";
  const audience = "api://e2e";
  let server: Server;
  let endpoint: string;
  let answer: Record<string, unknown> = {};
  let app: TestApp;
  let down: TestApp;
  let aged: TestApp;

  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
    const introspection = { endpoint, clientId: "rs", clientSecret: "rs-secret", cacheTtl: 0, negativeCacheTtl: 0 };
    app = await startApp({ config: { issuer, audience, jwksUri: `${endpoint}/jwks`, introspection } });
    // A closed port: nothing answers.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    down = await startApp({ config: { issuer, audience, jwksUri: `${endpoint}/jwks`, introspection: { ...introspection, endpoint: `http://127.0.0.1:${closedPort}/introspect` } } });
    aged = await startApp({ config: { issuer, audience, jwksUri: `${endpoint}/jwks`, introspection, maxTokenAge: 60 } });
  });
  after(async () => {
    await app.close();
    await down.close();
    await aged.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const active = () => ({ active: true, iss: issuer, sub: "bob", aud: audience, exp: Math.floor(Date.now() / 1000) + 300, token_type: "Bearer" });

  async function status(token: string): Promise<[number, string]> {
    const res = await httpGet(app, token);
    return [res.status, res.code];
  }

  it("accepts a plain active answer (the baseline of the refusals below)", async () => {
    answer = active();
    assert.deepEqual(await status("opaque-1"), [200, "ok"]);
  });

  it("refuses a DPoP-bound token (cnf.jkt) presented as Bearer", async () => {
    answer = { ...active(), cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } };
    assert.deepEqual(await status("opaque-2"), [401, "ERR_AUTH_TOKEN_INVALID"]);
  });

  it("refuses token_type DPoP without a key to check a proof against (no cnf.jkt)", async () => {
    answer = { ...active(), token_type: "DPoP" };
    assert.deepEqual(await status("opaque-10"), [401, "ERR_AUTH_TOKEN_INVALID"]);
  });

  it("refuses an answer without sub (a client_credentials token)", async () => {
    const { sub: _sub, ...rest } = active();
    answer = rest;
    assert.deepEqual(await status("opaque-3"), [401, "ERR_AUTH_TOKEN_INVALID"]);
  });

  it("refuses an answer without aud, and one for another audience", async () => {
    const { aud: _aud, ...rest } = active();
    answer = rest;
    assert.deepEqual(await status("opaque-4"), [401, "ERR_AUTH_TOKEN_INVALID"]);
    answer = { ...active(), aud: "api://other" };
    assert.deepEqual(await status("opaque-5"), [401, "ERR_AUTH_TOKEN_INVALID"]);
  });

  it("refuses an answer naming another issuer, and a token_type other than Bearer", async () => {
    answer = { ...active(), iss: "https://evil.test" };
    assert.deepEqual(await status("opaque-6"), [401, "ERR_AUTH_TOKEN_INVALID"]);
    answer = { ...active(), token_type: "refresh_token" };
    assert.deepEqual(await status("opaque-7"), [401, "ERR_AUTH_TOKEN_INVALID"]);
  });

  it("refuses an active answer whose exp has passed as ERR_AUTH_TOKEN_INVALID, like an expired JWT", async () => {
    answer = { ...active(), exp: Math.floor(Date.now() / 1000) - 60 };
    assert.deepEqual(await status("opaque-9"), [401, "ERR_AUTH_TOKEN_INVALID"]);
  });

  it("with maxTokenAge, refuses an answer without iat, one issued too long ago, and one issued in the future, as for a JWT", async () => {
    const seconds = Math.floor(Date.now() / 1000);
    const cases: Array<[number | undefined, number]> = [
      [seconds - 10, 200],
      [undefined, 401],
      [seconds - 120, 401],
      [seconds + 120, 401],
    ];
    for (const [iat, expected] of cases) {
      answer = iat === undefined ? active() : { ...active(), iat };
      const res = await httpGet(aged, `opaque-aged-${iat ?? "none"}`);
      assert.equal(res.status, expected, `iat ${iat}: ${res.code}`);
    }
  });

  it("answers 503 when the endpoint is down (nothing listening)", async () => {
    const res = await httpGet(down, "opaque-8");
    assert.equal(res.status, 503);
    assert.equal(res.code, "ERR_AUTH_UNAVAILABLE");
    assertNothingLeaked(down, ["opaque-8", "rs-secret"]);
  });
});
