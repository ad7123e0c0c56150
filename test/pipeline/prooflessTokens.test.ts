/**
 * Tokens bound to something the client must prove (`cnf`, RFC 7800) are
 * refused wherever no proof is checked, whatever the confirmation method:
 * `verifyOidcToken` (which checks no proof at all) and a Bearer request to a
 * real IOServer route. Fail closed: a `cnf` the package does not understand
 * is not treated as no `cnf`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { verifyOidcToken } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { httpGet, startApp, type TestApp } from "../helpers/app.js";

const CONFIRMATIONS: Array<[string, unknown]> = [
  ["cnf.jkt", { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }],
  ["cnf.x5t#S256", { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }],
  ["cnf.jwk", { jwk: { kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" } }],
  ["cnf.kid", { kid: "client-key-1" }],
  ["cnf.jku", { jku: "https://client.example/jwks", kid: "1" }],
  ["a numeric cnf.jkt", { jkt: 42 }],
  ["an empty cnf.jkt", { jkt: "" }],
  ["an empty cnf", {}],
  ["a string cnf", "bound"],
];

describe("tokens with a confirmation, where no proof is checked", { timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: issuer.config });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });

  it("verifyOidcToken refuses every one of them, and accepts the same token without cnf", async () => {
    for (const [name, cnf] of CONFIRMATIONS) {
      await assert.rejects(verifyOidcToken(await issuer.mint({ cnf }), issuer.config), (error: { code?: string; reason?: string }) => {
        assert.equal(error.code, "ERR_AUTH_TOKEN_INVALID", name);
        assert.match(error.reason ?? "", /cnf/, name);
        return true;
      });
    }
    assert.equal((await verifyOidcToken(await issuer.mint({ sub: "plain" }), issuer.config)).sub, "plain");
  });

  it("verifyOidcToken refuses a token of an issuer that requires DPoP", async () => {
    await assert.rejects(verifyOidcToken(await issuer.mint(), { ...issuer.config, dpop: { policy: "required" } }), { code: "ERR_AUTH_TOKEN_INVALID" });
  });

  it("a Bearer request refuses every one of them", async () => {
    for (const [name, cnf] of CONFIRMATIONS) {
      const response = await httpGet(app, await issuer.mint({ cnf }));
      assert.equal(response.status, 401, name);
      assert.equal(response.code, "ERR_AUTH_TOKEN_INVALID", name);
    }
  });
});
