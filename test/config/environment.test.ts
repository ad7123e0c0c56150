import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { type TestIssuer } from "../../src/testing/index.js";
import { httpGet, outcome, startApp, type TestApp } from "../helpers/app.js";
import { setOidcEnv } from "../helpers/env.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
let app: TestApp | undefined;
useTestIssuer((created) => (issuer = created), { appSlug: "env-app" });
afterEach(async () => {
  await app?.close();
  app = undefined;
  setOidcEnv();
});

const httpStatus = (path: string, token?: string) => httpGet<{ code?: string }>(app!, token, { path });

describe("configuration resolution", () => {
  it("reads the environment when no oidcConfig manager is registered", async () => {
    setOidcEnv({ AUTH_SERVICE_URL: `${issuer.issuer}/`, AUTH_SERVICE_APP_SLUG: "env-app" });
    app = await startApp();
    const res = await httpStatus("/api/me", await issuer.mint());
    assert.equal(res.status, 200, "trailing slash stripped, default JWKS path and audience used");
  });

  it("OidcConfigManager reads the five variables, and logs once at level 6 what it trusts", async () => {
    setOidcEnv({
      AUTH_SERVICE_URL: "http://idp.invalid",
      AUTH_SERVICE_APP_SLUG: "env-app",
      AUTH_SERVICE_JWKS_URI: issuer.jwksUri,
      AUTH_SERVICE_ISSUER: issuer.issuer,
      AUTH_SERVICE_AUDIENCE: "api://custom",
    });
    app = await startApp({ config: "env" });
    assert.equal((await httpStatus("/api/me", await issuer.mint({ aud: "api://custom" }))).status, 200);
    assert.equal((await httpStatus("/api/me", await issuer.mint({ aud: "env-app" }))).status, 401, "the explicit audience replaces appSlug");
    const trusted = app.logs.filter((l) => l.text.includes("trusting issuer"));
    assert.equal(trusted.length, 1);
    assert.equal(trusted[0]!.level, 6);
    assert.match(trusted[0]!.text, /api:\/\/custom/);
  });

  it("generic OIDC_ISSUER + OIDC_AUDIENCE alone: keys found through discovery", async () => {
    setOidcEnv({ OIDC_ISSUER: issuer.issuer, OIDC_AUDIENCE: "generic-api" });
    app = await startApp({ config: "env" });
    assert.equal((await httpStatus("/api/me", await issuer.mint({ aud: "generic-api" }))).status, 200);
    assert.equal((await httpStatus("/api/me", await issuer.mint({ aud: "env-app" }))).status, 401);
    assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes("keys from discovery")));
  });

  it("AUTH_SERVICE_* variables take precedence over OIDC_* ones", async () => {
    setOidcEnv({
      AUTH_SERVICE_URL: issuer.issuer,
      AUTH_SERVICE_APP_SLUG: "env-app",
      AUTH_SERVICE_AUDIENCE: "from-auth-service",
      OIDC_AUDIENCE: "from-oidc",
      AUTH_SERVICE_ISSUER: issuer.issuer,
      OIDC_ISSUER: "https://ignored.test",
    });
    app = await startApp({ config: "env" });
    assert.equal((await httpStatus("/api/me", await issuer.mint({ aud: "from-auth-service" }))).status, 200);
    assert.equal((await httpStatus("/api/me", await issuer.mint({ aud: "from-oidc" }))).status, 401);
  });

  it("the manager's config wins over the environment", async () => {
    setOidcEnv({ AUTH_SERVICE_URL: "http://127.0.0.1:9", AUTH_SERVICE_APP_SLUG: "wrong" });
    app = await startApp({ config: issuer.config });
    assert.equal((await httpStatus("/api/me", await issuer.mint())).status, 200);
  });

  it("a user-written manager returning a plain object is honoured", async () => {
    const config = { authServiceUrl: issuer.issuer, appSlug: issuer.appSlug };
    class MyConfig {
      getConfig() {
        return config;
      }
    }
    app = await startApp({ managers: { oidcConfig: MyConfig } });
    assert.equal((await httpStatus("/api/me", await issuer.mint())).status, 200);
  });
});

describe("misconfiguration fails closed", () => {
  it("missing AUTH_SERVICE_APP_SLUG: start-up logs the variable; requests get 500 / connect_error ERR_AUTH_MISCONFIGURED", async () => {
    setOidcEnv({ AUTH_SERVICE_URL: issuer.issuer });
    app = await startApp({ config: "env" });
    const token = await issuer.mint();
    const res = await httpStatus("/api/me", token);
    assert.equal(res.status, 500);
    assert.equal(res.body.code, "ERR_AUTH_MISCONFIGURED");
    const started = Date.now();
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(!result.connected);
    assert.equal(result.message, "ERR_AUTH_MISCONFIGURED");
    assert.ok(Date.now() - started < 5_000, "refused promptly");
    assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("AUTH_SERVICE_APP_SLUG")), "the log names the variable");
  });

  it("a request without a token still gets ERR_AUTH_TOKEN_REQUIRED (extraction before config)", async () => {
    setOidcEnv({});
    app = await startApp();
    const res = await httpStatus("/api/me");
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "ERR_AUTH_TOKEN_REQUIRED");
    const result = await outcome(app.connect("chat"));
    assert.ok(!result.connected);
    assert.equal(result.message, "ERR_AUTH_TOKEN_REQUIRED");
  });

  it("no manager and no environment: ERR_AUTH_MISCONFIGURED naming AUTH_SERVICE_URL", async () => {
    setOidcEnv({});
    app = await startApp();
    const token = await issuer.mint();
    const res = await httpStatus("/api/me", token);
    assert.equal(res.status, 500);
    assert.equal(res.body.code, "ERR_AUTH_MISCONFIGURED");
    assert.ok(app.logs.some((l) => l.text.includes("AUTH_SERVICE_URL is required (an http or https URL), or AUTH_SERVICE_ISSUER or OIDC_ISSUER")));
  });

  it("a malformed AUTH_SERVICE_URL is named in the log", async () => {
    setOidcEnv({ AUTH_SERVICE_URL: "not a url", AUTH_SERVICE_APP_SLUG: "x" });
    app = await startApp({ config: "env" });
    const res = await httpStatus("/api/me", await issuer.mint());
    assert.equal(res.body.code, "ERR_AUTH_MISCONFIGURED");
    assert.ok(app.logs.some((l) => l.text.includes("AUTH_SERVICE_URL is not a valid URL")));
  });

  it("OidcConfigManager.configure() validates eagerly with a TypeError naming the option", async () => {
    await assert.rejects(
      startApp({ config: { authServiceUrl: "ftp://x", appSlug: "a" } }),
      (error: Error) => error instanceof TypeError && error.message.includes('"authServiceUrl" must use http or https'),
    );
  });
});
