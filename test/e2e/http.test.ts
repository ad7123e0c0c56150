import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import { type TestIssuer } from "../../src/testing/index.js";
import { startApp, type TestApp } from "../helpers/app.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
useTestIssuer((created) => (issuer = created));

async function get(app: TestApp, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}${path}`, { headers, signal: AbortSignal.timeout(8_000) });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, body };
}

async function expectError(
  app: TestApp,
  path: string,
  headers: Record<string, string>,
  status: number,
  code: string,
  challenge?: RegExp,
) {
  const res = await get(app, path, headers);
  assert.equal(res.status, status);
  assert.equal(res.body.code, code);
  assert.equal(res.body.statusCode, status);
  assert.deepEqual(Object.keys(res.body).sort(), ["code", "error", "message", "statusCode"]);
  if (challenge === undefined) assert.equal(res.headers.get("www-authenticate"), null);
  else assert.match(res.headers.get("www-authenticate") ?? "", challenge);
  return res;
}

describe("OidcHttpMiddleware", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...issuer.config, realm: "api" } });
  });
  after(async () => {
    await app.close();
  });

  it("injects the context, as the controller handler sees it", async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const token = await issuer.mint({ exp, sub: "alice", roles: ["admin", "ops"], permissions: ["a", "b"], features: { x: 1 }, email: "a@x.test" });
    const res = await get(app, "/api/me", { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200);
    assert.equal(res.body.sub, "alice");
    assert.equal(res.body.userId, "alice");
    assert.equal(res.body.userRole, "admin");
    assert.deepEqual(res.body.roles, ["admin", "ops"]);
    assert.deepEqual(res.body.permissions, ["a", "b"]);
    assert.deepEqual(res.body.features, { x: 1 });
    const { claims, ...auth } = res.body.auth as Record<string, unknown>;
    assert.equal((claims as Record<string, unknown>).sub, "alice");
    assert.deepEqual(auth, {
      sub: "alice",
      userId: "alice",
      email: "a@x.test",
      name: null,
      userRole: "admin",
      roles: ["admin", "ops"],
      permissions: ["a", "b"],
      features: { x: 1 },
      scopes: [],
      expiresAt: exp * 1000,
    });
  });

  it("matches the Bearer scheme case-insensitively", async () => {
    const token = await issuer.mint();
    for (const scheme of ["bearer", "BEARER", "BeArEr"]) {
      const res = await get(app, "/api/me", { authorization: `${scheme} ${token}` });
      assert.equal(res.status, 200, scheme);
    }
  });

  it("401 ERR_AUTH_TOKEN_REQUIRED with a bare challenge (and the realm) without a token", async () => {
    await expectError(app, "/api/me", {}, 401, "ERR_AUTH_TOKEN_REQUIRED", /^Bearer realm="api"$/);
  });

  it("401 ERR_AUTH_TOKEN_REQUIRED for another scheme", async () => {
    const token = await issuer.mint();
    await expectError(app, "/api/me", { authorization: `Basic ${token}` }, 401, "ERR_AUTH_TOKEN_REQUIRED", /^Bearer realm="api"$/);
    await expectError(app, "/api/me", { authorization: token }, 401, "ERR_AUTH_TOKEN_REQUIRED", /^Bearer/);
  });

  it('401 ERR_AUTH_TOKEN_INVALID with error="invalid_token" for a bad token', async () => {
    const token = await issuer.mint({ iss: "https://evil.example" });
    const res = await expectError(app, "/api/me", { authorization: `Bearer ${token}` }, 401, "ERR_AUTH_TOKEN_INVALID", /^Bearer realm="api", error="invalid_token"/);
    assert.doesNotMatch(String(res.body.message), /iss|evil/);
    assert.ok(app.logs.some((l) => l.text.includes('iss was "https://evil.example"')));
  });

  it("403 ERR_FORBIDDEN from OidcHttpAdminMiddleware without the admin role", async () => {
    const token = await issuer.mint({ roles: ["user"] });
    await expectError(app, "/admin/stats", { authorization: `Bearer ${token}` }, 403, "ERR_FORBIDDEN", /error="insufficient_scope"/);
  });

  it("200 on the admin route with the admin role", async () => {
    const token = await issuer.mint({ sub: "root", roles: ["admin"] });
    const res = await get(app, "/admin/stats", { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ok: true, userId: "root" });
  });

  it("the middleware runs before body validation on POST routes too", async () => {
    const response = await fetch(`${app.url}/api/echo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ hello: "world" }),
      signal: AbortSignal.timeout(8_000),
    });
    assert.equal(response.status, 401);
    const token = await issuer.mint({ sub: "poster" });
    const ok = await fetch(`${app.url}/api/echo`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ hello: "world" }),
      signal: AbortSignal.timeout(8_000),
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { body: { hello: "world" }, userId: "poster" });
  });
});

describe("OidcHttpMiddleware with a users manager", () => {
  let mode: "ok" | "disabled" | "throw" | "garbage" = "ok";
  class Users {
    constructor(_appHandle: AppHandle) {}
    async findOrCreate(sub: string) {
      if (mode === "throw") throw new Error("db down");
      if (mode === "garbage") return null;
      return { id: 7, role: "member", isDisabled: mode === "disabled" && sub === "blocked" };
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users } });
  });
  after(async () => {
    await app.close();
  });

  it("userId and role come from the users manager", async () => {
    mode = "ok";
    const res = await get(app, "/api/me", { authorization: `Bearer ${await issuer.mint({ sub: "u1" })}` });
    assert.equal(res.status, 200);
    assert.equal(res.body.userId, "7");
    assert.equal(res.body.userRole, "member");
  });

  it("403 ERR_USER_DISABLED", async () => {
    mode = "disabled";
    await expectError(app, "/api/me", { authorization: `Bearer ${await issuer.mint({ sub: "blocked" })}` }, 403, "ERR_USER_DISABLED", /^Bearer error="insufficient_scope"/);
  });

  it("500 ERR_USER_PROVISION_FAILED when findOrCreate throws or returns garbage", async () => {
    mode = "throw";
    await expectError(app, "/api/me", { authorization: `Bearer ${await issuer.mint()}` }, 500, "ERR_USER_PROVISION_FAILED");
    mode = "garbage";
    await expectError(app, "/api/me", { authorization: `Bearer ${await issuer.mint()}` }, 500, "ERR_USER_PROVISION_FAILED");
    mode = "ok";
  });
});

describe("OidcHttpMiddleware when the provider's keys cannot be obtained", () => {
  let app: TestApp;
  before(async () => {
    // Port 9 (discard) on loopback: nothing listens, the fetch fails at once.
    app = await startApp({ config: { ...issuer.config, jwksUri: "http://127.0.0.1:9/jwks" } });
  });
  after(async () => {
    await app.close();
  });

  it("503 ERR_AUTH_UNAVAILABLE with Retry-After, not 401: the token may be fine", async () => {
    const res = await get(app, "/api/me", { authorization: `Bearer ${await issuer.mint()}` });
    assert.equal(res.status, 503);
    assert.equal(res.body.code, "ERR_AUTH_UNAVAILABLE");
    assert.equal(res.headers.get("retry-after"), "5");
    assert.equal(res.headers.get("www-authenticate"), null);
    assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("http://127.0.0.1:9/jwks could not be obtained")));
  });
});
