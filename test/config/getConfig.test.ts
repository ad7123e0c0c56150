/**
 * OidcConfigManager#getConfig() returns the configuration as it was given;
 * getResolvedConfig() the normalised view the package verifies with.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { OidcConfigError, type OidcConfigManager, type OidcConfigInput } from "../../src/index.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { type TestIssuer } from "../../src/testing/index.js";
import { httpGet, startApp, type TestApp } from "../helpers/app.js";
import { setOidcEnv } from "../helpers/env.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
let app: TestApp | undefined;
useTestIssuer((created) => (issuer = created), { appSlug: "shape-app" });
afterEach(async () => {
  await app?.close();
  app = undefined;
  setOidcEnv();
});

async function status(token: string): Promise<number> {
  return (await httpGet(app!, token)).status;
}

const managerOf = (test: TestApp) => test.appHandle.oidcConfig as OidcConfigManager;

describe("OidcConfigManager#getConfig(): the shape it was given", () => {
  it("configure({...}): the very options, frozen; a string audience stays a string; unset fields stay unset", async () => {
    const options: OidcConfigInput = { authServiceUrl: `${issuer.issuer}/`, appSlug: "shape-app", audience: "shape-api", clockTolerance: 10 };
    app = await startApp({ config: options });
    const given = managerOf(app).getConfig();
    assert.equal(given, options);
    assert.deepEqual({ ...given }, { authServiceUrl: `${issuer.issuer}/`, appSlug: "shape-app", audience: "shape-api", clockTolerance: 10 });
    assert.equal(typeof given.audience, "string");
    for (const unset of ["jwksUri", "issuer", "issuers", "algorithms", "tokenCache"]) assert.ok(!(unset in given), `${unset} stays unset`);
    assert.ok(Object.isFrozen(given));
    assert.equal(await status(await issuer.mint({ aud: "shape-api" })), 200);
  });

  it("configure({...}): getResolvedConfig() is the normalised view, the one requests use", async () => {
    app = await startApp({ config: { authServiceUrl: `${issuer.issuer}/`, appSlug: "shape-app", audience: "shape-api" } });
    const manager = managerOf(app);
    const resolved = manager.getResolvedConfig();
    assert.equal(manager.getResolvedConfig(), resolved, "the same object on every call");
    assert.equal(resolveConfig(app.appHandle), resolved);
    assert.deepEqual(resolved.audience, ["shape-api"]);
    assert.equal(resolved.issuer, issuer.issuer, "trailing slash stripped");
    assert.equal(resolved.jwksUri, `${issuer.issuer}/api/auth/jwks`, "derived from authServiceUrl");
    assert.equal(resolved.clockTolerance, 5);
    assert.equal(resolved.issuers.length, 1);
    assert.ok(Object.isFrozen(resolved));
  });

  it("environment: one field per variable that is set, holding its value as it is", async () => {
    setOidcEnv({ AUTH_SERVICE_URL: `${issuer.issuer}/`, AUTH_SERVICE_APP_SLUG: "shape-app", OIDC_AUDIENCE: "env-api" });
    app = await startApp({ config: "env" });
    const manager = managerOf(app);
    const given = manager.getConfig();
    assert.deepEqual({ ...given }, { authServiceUrl: `${issuer.issuer}/`, appSlug: "shape-app", audience: "env-api" });
    assert.ok(!("jwksUri" in given) && !("issuer" in given), "unset variables give no field");
    assert.ok(Object.isFrozen(given));
    assert.equal(manager.getConfig(), given, "read once");

    const resolved = manager.getResolvedConfig();
    assert.deepEqual(resolved.audience, ["env-api"]);
    assert.equal(resolved.issuer, issuer.issuer);
    assert.equal(resolved.jwksUri, `${issuer.issuer}/api/auth/jwks`);
    assert.equal(resolveConfig(app.appHandle), resolved);
    assert.equal(await status(await issuer.mint({ aud: "env-api" })), 200);
  });

  it("environment: both methods throw an OidcConfigError naming the variable when it is invalid", async () => {
    setOidcEnv({ AUTH_SERVICE_URL: issuer.issuer });
    app = await startApp({ config: "env" });
    const manager = managerOf(app);
    for (const read of [() => manager.getConfig(), () => manager.getResolvedConfig()]) {
      assert.throws(read, (error: Error) => error instanceof OidcConfigError && error.optionName.startsWith("AUTH_SERVICE_APP_SLUG"));
    }
  });
});
