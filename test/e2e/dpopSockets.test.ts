/**
 * Sender-constrained tokens on Socket.IO, which carries no DPoP proof yet:
 * a token bound to a key (`cnf.jkt`) or to a TLS client certificate
 * (`cnf.x5t#S256`) opens no socket and refreshes none, and an issuer that
 * requires DPoP admits no socket (fail closed). HTTP refuses a
 * certificate-bound token too. A real IOServer, real socket.io-client
 * connections, the test issuer's keys on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, httpGet, outcome, startApp, type TestApp } from "../helpers/app.js";

const JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

describe("bound tokens on Socket.IO, which carries no proof yet", { timeout: 60_000 }, () => {
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

  it("a DPoP-bound token opens no socket; a certificate-bound one neither; a plain token does", async () => {
    for (const cnf of [{ jkt: JKT }, { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }]) {
      const refused = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ cnf }) }, reconnection: false }));
      assert.equal(refused.connected, false, JSON.stringify(cnf));
      assert.equal((refused.data as { code?: string }).code, "ERR_AUTH_TOKEN_INVALID");
    }
    const plain = await outcome(app.connect("chat", { auth: { token: await issuer.mint() }, reconnection: false }));
    assert.equal(plain.connected, true);
    plain.socket?.disconnect();
  });

  it("an in-band refresh with a DPoP-bound token is refused and the connection keeps its token", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "refresher" }), { reconnection: false });
    assert.deepEqual(await call(socket, "oidc:refresh", { token: await issuer.mint({ sub: "refresher", cnf: { jkt: JKT } }) }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    assert.equal(socket.connected, true);
    socket.disconnect();
  });

  it("HTTP: a certificate-bound token is refused (TLS client certificates are not checked)", async () => {
    const response = await httpGet(app, await issuer.mint({ cnf: { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" } }));
    assert.equal(response.status, 401);
    assert.equal(response.code, "ERR_AUTH_TOKEN_INVALID");
    assert.equal((await httpGet(app, await issuer.mint())).status, 200, "a plain token is accepted");
  });
});

describe("an issuer that requires DPoP admits no socket", { timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: { ...issuer.config, dpop: { policy: "required" } } });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });

  it("a plain token of that issuer is refused at the handshake", async () => {
    const refused = await outcome(app.connect("chat", { auth: { token: await issuer.mint() }, reconnection: false }));
    assert.equal(refused.connected, false);
    assert.equal((refused.data as { code?: string }).code, "ERR_AUTH_TOKEN_INVALID");
  });
});
