/**
 * Back-channel logout driven by a real OpenID Provider (panva's
 * oidc-provider 8, `features.backchannelLogout`, see test/helpers/logoutProvider.ts): users log
 * in through the provider's HTTP endpoints, connect to the app with the JWT
 * access token it issued (carrying the session's `sid`), then one of them
 * signs out at the provider's end_session endpoint. The provider itself POSTs
 * the `logout_token` to the app's route, and only that user's socket goes.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeJwt, decodeProtectedHeader } from "jose";
import type { OidcLogoutToken } from "../../src/index.js";
import { freePort } from "../helpers/app.js";
import { disconnectedWithin, startLogoutApp, stillConnected, type LogoutApp } from "../helpers/logoutApp.js";
import { startLogoutProvider, type LogoutProvider } from "../helpers/logoutProvider.js";

describe("back-channel logout from a real oidc-provider", () => {
  let op: LogoutProvider;
  let app: LogoutApp;
  const received: OidcLogoutToken[] = [];

  before(async () => {
    const appPort = await freePort();
    op = await startLogoutProvider({ backchannelLogoutUri: `http://127.0.0.1:${appPort}/oidc/backchannel-logout` });
    // The app trusts the provider (keys through discovery); access tokens are for the API, logout tokens for the client.
    app = await startLogoutApp({
      port: appPort,
      config: { issuer: op.issuer, audience: op.resource, strict: true },
      logout: { audience: op.clientId, onLogout: (logout) => void received.push(logout) },
    });
  });

  after(async () => {
    await app?.close();
    await op?.close();
  });

  test("signing out at the provider posts a logout token that disconnects that session's socket only", async () => {
    const alice = await op.login("alice");
    const bob = await op.login("bob");
    const aliceClaims = decodeJwt(alice.accessToken);
    assert.equal(decodeProtectedHeader(alice.accessToken).typ, "at+jwt");
    assert.equal(typeof aliceClaims.sid, "string", "the access token carries the session id");
    assert.notEqual(aliceClaims.sid, decodeJwt(bob.accessToken).sid);

    const aliceSocket = await app.connect(alice.accessToken);
    const bobSocket = await app.connect(bob.accessToken);

    await op.signOut(alice);

    assert.equal(await disconnectedWithin(aliceSocket), "io server disconnect");
    assert.deepEqual(aliceSocket.revoked, [{ code: "ERR_AUTH_REVOKED", reason: "logged out at the identity provider" }]);
    assert.equal(await stillConnected(bobSocket), true);
    assert.deepEqual(bobSocket.revoked, []);
    // The provider got its 200.
    assert.deepEqual(op.outcomes, [{ event: "success", detail: `${op.clientId} alice ${String(aliceClaims.sid)}` }]);
    assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes(`sid "${String(aliceClaims.sid)}" sub "alice"`) && l.text.includes("1 socket(s)")));
    // What the provider sent: its Logout Token as validated (typ logout+jwt, exp = iat + 120 in oidc-provider 8).
    assert.equal(received.length, 1);
    const { iat, exp, jti, ...identity } = received[0]!;
    assert.deepEqual(identity, { iss: op.issuer, sub: "alice", sid: aliceClaims.sid });
    assert.equal(exp, iat + 120);
    assert.equal(typeof jti, "string");
    bobSocket.socket.disconnect();
  });
});
