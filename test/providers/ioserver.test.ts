/**
 * The whole path against a real OpenID provider (panva's oidc-provider):
 * discovery → JWKS → the HTTP and Socket.IO middlewares of a real IOServer,
 * with RFC 9068 JWT access tokens obtained over HTTP.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { call, httpGet, outcome, startApp, type TestApp } from "../helpers/app.js";
import { startOidcProvider, type TestProvider } from "../helpers/oidcProvider.js";

describe("oidc-provider → discovery → IOServer", () => {
  let provider: TestProvider;
  let app: TestApp;
  before(async () => {
    provider = await startOidcProvider();
    app = await startApp({ config: { issuer: provider.issuer, audience: provider.resource, strict: true } });
  });
  after(async () => {
    await app.close();
    await provider.close();
  });

  const me = (token: string) => httpGet(app, token);

  it("a client-credentials token (sub = client id) passes the HTTP middleware with its scopes", async () => {
    const token = await provider.clientCredentialsToken({ scope: "read:stats" });
    const res = await me(token);
    assert.equal(res.status, 200);
    assert.equal(res.body.sub, provider.clientId);
    assert.deepEqual((res.body.auth as { scopes: string[] }).scopes, ["read:stats"]);
    assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes(`trusting issuer ${provider.issuer}`) && l.text.includes("strict")));
  });

  it("an authorization-code + PKCE token of an admin opens the admin namespace", async () => {
    const token = await provider.authorizationCodeToken({ accountId: "alice" });
    const result = await outcome(app.connect("admin", { auth: { token } }));
    assert.ok(result.connected, result.connected ? "" : result.message);
    const view = await call<{ sub: string; roles: string[] }>(result.socket, "whoami");
    assert.equal(view.sub, "alice");
    assert.deepEqual(view.roles, ["admin"]);
    result.socket.disconnect();
  });

  it("a non-admin's token is refused there, accepted on chat", async () => {
    const token = await provider.authorizationCodeToken({ accountId: "bob" });
    const refused = await outcome(app.connect("admin", { auth: { token } }));
    assert.ok(!refused.connected);
    assert.equal(refused.message, "ERR_FORBIDDEN");
    const ok = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(ok.connected);
    ok.socket.disconnect();
  });

  it("a tampered provider token is refused", async () => {
    const [h, p, s] = (await provider.clientCredentialsToken()).split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "alice", roles: ["admin"] })).toString("base64url")}.${s}`;
    const res = await me(forged);
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "ERR_AUTH_TOKEN_INVALID");
  });
});

describe("the provider is down", () => {
  it("ERR_AUTH_UNAVAILABLE (503) when discovery cannot be reached, on both transports", async () => {
    const provider = await startOidcProvider();
    const token = await provider.clientCredentialsToken();
    await provider.close();
    const app = await startApp({ config: { issuer: provider.issuer, audience: provider.resource } });
    try {
      const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(8_000) });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "5");
      assert.equal(((await response.json()) as { code: string }).code, "ERR_AUTH_UNAVAILABLE");
      const result = await outcome(app.connect("chat", { auth: { token } }));
      assert.ok(!result.connected);
      assert.equal(result.message, "ERR_AUTH_UNAVAILABLE");
    } finally {
      await app.close();
    }
  });
});
