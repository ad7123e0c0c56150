/**
 * The rarer outcomes of the diagnostics channels, through real traffic: a
 * socket revoked on recovery and once connected, and the back-channel logout
 * answers for a missing configuration, keys that cannot be fetched and an
 * `onLogout` that fails. A real IOServer, real socket.io-client connections,
 * keys served on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, it } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { BACKCHANNEL_LOGOUT_EVENT, OIDC_CHANNELS, OidcSessionManager, type OidcLogoutMessage, type OidcSocketMessage } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, next, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { startLogoutApp, type LogoutApp } from "../helpers/logoutApp.js";
import { waitFor } from "../helpers/wait.js";

const socketEvents: OidcSocketMessage[] = [];
const logoutAnswers: OidcLogoutMessage[] = [];
const onSocket = (message: unknown) => socketEvents.push(message as OidcSocketMessage);
const onLogout = (message: unknown) => logoutAnswers.push(message as OidcLogoutMessage);
subscribe(OIDC_CHANNELS.socket, onSocket);
subscribe(OIDC_CHANNELS.logout, onLogout);
after(() => {
  unsubscribe(OIDC_CHANNELS.socket, onSocket);
  unsubscribe(OIDC_CHANNELS.logout, onLogout);
});

const nowS = () => Math.floor(Date.now() / 1000);
const revokedOf = (socketId: string) => socketEvents.filter((m) => m.socketId === socketId && m.event === "revoked");

/** A session manager whose registrations take their time: a revocation can land while a handshake is still running. */
let registrationDelayMs = 0;
class SlowSessionManager extends OidcSessionManager {
  override async registerSocket(userId: string, socketId: string, sub: string): Promise<void> {
    if (registrationDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, registrationDelayMs));
    return super.registerSocket(userId, socketId, sub);
  }
}

describe("socket revoked: on recovery and once connected", { timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: issuer.config, managers: { session: SlowSessionManager }, recovery: true });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });
  const session = () => app.appHandle["session"] as OidcSessionManager;

  it("a user revoked while their socket was away: revoked with kind recovery when Socket.IO restores it", async () => {
    const sub = `away-${randomUUID()}`;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub }), { reconnection: false });
    const joined = next(socket, "chat:joined");
    await call(socket, "join", { room: "r" });
    await joined; // an event gives the client a recovery offset
    const id = socket.id!;
    const dropped = next(socket, "disconnect");
    (socket.io as unknown as { engine: { close(): void } }).engine.close();
    await dropped;
    await waitFor("the server saw the socket go", async () => (await session().listByUser(sub)).length === 0, 5_000);
    // Away: the revocation reaches no socket, but it is recorded.
    assert.equal(await session().disconnectUser(sub, "while away"), 0);
    const revoked = next<{ code: string }>(socket, "oidc:revoked", 8_000);
    socket.connect();
    assert.deepEqual(await revoked, { code: "ERR_AUTH_REVOKED", reason: "while away" }, "the app's reason, recorded with the revocation");
    assert.equal(socket.recovered, true, "Socket.IO restored the session (the middlewares were skipped)");
    await waitFor(() => revokedOf(id).length > 0, 5_000);
    assert.deepEqual(revokedOf(id), [{ event: "revoked", socketId: id, namespace: "/chat", issuer: issuer.issuer, code: "ERR_AUTH_REVOKED", kind: "recovery" }]);
    socket.disconnect();
  });

  it("a user revoked while their handshake was finishing: revoked with kind connection", async () => {
    const sub = `joining-${randomUUID()}`;
    registrationDelayMs = 600;
    let socket: ClientSocket | undefined;
    try {
      socket = app.connect("chat", { auth: { token: await issuer.mint({ sub }) }, reconnection: false });
      const revoked = next<{ code: string }>(socket, "oidc:revoked", 8_000);
      // Our middleware has admitted the token; its session is being registered.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await session().disconnectUser(sub, "during the handshake");
      assert.equal((await revoked).code, "ERR_AUTH_REVOKED");
      await waitFor(() => socketEvents.some((m) => m.event === "revoked" && m.kind === "connection"), 5_000);
      const events = socketEvents.filter((m) => m.event === "revoked" && m.kind === "connection");
      assert.equal(events.length, 1);
      assert.deepEqual({ ...events[0], socketId: "" }, { event: "revoked", socketId: "", namespace: "/chat", issuer: issuer.issuer, code: "ERR_AUTH_REVOKED", kind: "connection" });
    } finally {
      registrationDelayMs = 0;
      socket?.disconnect();
    }
  });
});

describe("back-channel logout answers: misconfigured, unavailable, failed", { timeout: 60_000 }, () => {
  const ISSUER = "https://op.logout-outcomes.test";
  const CLIENT = "logout-outcomes";
  let key: SigningKey;
  let jwks: JwksServer;
  const apps: LogoutApp[] = [];
  before(async () => {
    key = await makeKey("RS256");
    jwks = await startJwksServer([key.jwk]);
  });
  after(async () => {
    for (const app of apps) await app.close();
    await jwks?.close();
  });

  const logoutToken = () =>
    sign(key, { iss: ISSUER, aud: CLIENT, sub: `gone-${randomUUID()}`, iat: nowS(), exp: nowS() + 120, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } });
  const started = async (options: Parameters<typeof startLogoutApp>[0]) => {
    const app = await startLogoutApp(options);
    apps.push(app);
    return app;
  };
  async function answered(app: LogoutApp, status: number): Promise<Omit<OidcLogoutMessage, "durationMs">> {
    logoutAnswers.length = 0;
    assert.equal((await app.logout(await logoutToken())).status, status);
    assert.equal(logoutAnswers.length, 1);
    const { durationMs, ...rest } = logoutAnswers[0]!;
    assert.ok(typeof durationMs === "number" && durationMs >= 0);
    return rest;
  }

  it("no usable configuration: misconfigured, 500", async () => {
    // No config manager, and no OIDC_* variables in the environment.
    const app = await started({});
    assert.deepEqual(await answered(app, 500), { outcome: "misconfigured", status: 500, issuer: undefined, disconnected: undefined });
  });

  it("the issuer's keys cannot be fetched: unavailable, 503", async () => {
    const gone = await startJwksServer([key.jwk]);
    const jwksUri = gone.jwksUri;
    await gone.close();
    const app = await started({ config: { issuer: ISSUER, audience: CLIENT, jwksUri } });
    assert.deepEqual(await answered(app, 503), { outcome: "unavailable", status: 503, issuer: undefined, disconnected: undefined });
  });

  it("onLogout fails: failed, 400, with the verified issuer", async () => {
    const app = await started({
      config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri },
      logout: {
        onLogout: () => {
          throw new Error("the app's own clean-up failed");
        },
      },
    });
    assert.deepEqual(await answered(app, 400), { outcome: "failed", status: 400, issuer: ISSUER, disconnected: 0 });
  });
});
