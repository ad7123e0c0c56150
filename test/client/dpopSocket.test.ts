/**
 * `connectWithOidc` with a DPoP key end to end: a real IOServer guarded by
 * `OidcSocketMiddleware`, tokens bound to the key (`cnf.jkt`) by the test
 * issuer on 127.0.0.1, real socket.io-client. The handshake is accepted and
 * the connection bound to the key; `oidc:expiring` is answered by a refresh
 * the server accepts (same key, new token); a stolen token without the key
 * opens nothing; with server nonces the handshake and the refresh each get
 * their one retry.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import { connectWithOidc, createDpopKey, type DpopKey, type OidcClientSocket } from "../../src/client/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, startApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const nowS = (): number => Math.floor(Date.now() / 1000);

interface Run {
  socket: OidcClientSocket;
  refreshed: number[];
  failures: string[];
  errors: string[];
  connects: number;
  tokens: string[];
}

/** connectWithOidc to `chat` with tokens bound to `boundTo` (those of the handshake expiring in `firstLifetime` seconds, later ones in ten minutes), proofs by `key`. */
function open(app: TestApp, issuer: TestIssuer, key: DpopKey, boundTo: string, firstLifetime = 600): Run {
  const run = { refreshed: [], failures: [], errors: [], connects: 0, tokens: [] } as unknown as Run;
  run.socket = connectWithOidc(`${app.url}/chat`, {
    transports: ["websocket"],
    reconnection: false,
    dpop: key,
    getToken: async () => {
      const token = await issuer.mint({ sub: "dora", cnf: { jkt: boundTo }, exp: nowS() + (run.connects === 0 ? firstLifetime : 600) });
      run.tokens.push(token);
      return token;
    },
    onRefreshed: (expiresAt) => run.refreshed.push(expiresAt),
    onRefreshFailed: (code) => run.failures.push(code),
  });
  run.socket.on("connect", () => run.connects++);
  run.socket.on("connect_error", (error) => run.errors.push(error.message));
  return run;
}

describe("connectWithOidc with a DPoP key through a real IOServer", { timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: { ...issuer.config, clockTolerance: 1 } });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });

  it("the handshake is accepted and the connection is bound to the key; oidc:expiring is answered by a refresh the server accepts", async () => {
    const key = await createDpopKey();
    const run = open(app, issuer, key, key.jkt, 3);
    try {
      await waitFor("connect", () => run.socket.connected, 10_000, 10);
      const view = await call<{ dataAuth: { claims: { cnf: { jkt: string } } } }>(run.socket, "whoami");
      assert.equal(view.dataAuth.claims.cnf.jkt, key.jkt);
      await waitFor("refreshed", () => run.refreshed.length >= 1 || run.failures.length > 0, 15_000, 20);
      assert.deepEqual(run.failures, []);
      assert.equal(run.tokens.length, 2, "the refresh fetched a new token");
      assert.ok(run.refreshed[0]! > Date.now() + 60_000, "the new token's expiry");
      assert.equal(run.socket.connected, true);
      assert.equal(run.connects, 1, "no reconnect");
      assert.deepEqual(run.errors, []);
    } finally {
      run.socket.disconnect();
    }
  });

  it("a token bound to a key the client does not hold opens nothing", async () => {
    const owner = await createDpopKey();
    const thief = await createDpopKey();
    const run = open(app, issuer, thief, owner.jkt);
    try {
      await waitFor("refusal", () => run.errors.length > 0, 10_000, 10);
      assert.deepEqual(run.errors, ["ERR_AUTH_TOKEN_INVALID"]);
      assert.equal(run.socket.connected, false);
    } finally {
      run.socket.disconnect();
    }
  });
});

describe("connectWithOidc with a DPoP key: an app that requires server nonces", { timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: { ...issuer.config, clockTolerance: 1, dpop: { nonce: true } } });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });

  it("the handshake refused with ERR_AUTH_DPOP_NONCE is retried once with the nonce and accepted; a refresh without the nonce is too", async () => {
    const key = await createDpopKey();
    const run = open(app, issuer, key, key.jkt, 3);
    try {
      await waitFor("connect", () => run.socket.connected, 10_000, 10);
      assert.deepEqual(run.errors, ["ERR_AUTH_DPOP_NONCE"], "one refusal, then the retry");
      assert.equal(run.connects, 1);
      const nonce = key.getNonce(app.url);
      assert.ok(nonce, "the server's nonce is kept on the key");
      // Forget it, as if it had rotated: the refresh's first proof carries none, the ack names it, the retry carries it.
      key.setNonce(app.url, undefined);
      await waitFor("refreshed", () => run.refreshed.length >= 1 || run.failures.length > 0, 15_000, 20);
      assert.deepEqual(run.failures, []);
      // The server's current nonce: the same one, or the next if its time window turned meanwhile.
      assert.ok(typeof key.getNonce(app.url) === "string", "learnt again from the refresh's refusal");
      assert.equal(run.socket.connected, true);
      assert.equal(run.connects, 1);
      assert.equal(run.tokens.length, 3, "two handshakes, one refresh");
      assert.equal((decodeJwt(run.tokens[2]!).cnf as { jkt?: string } | undefined)?.jkt, key.jkt);
    } finally {
      run.socket.disconnect();
    }
  });
});
