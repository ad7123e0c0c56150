/**
 * The demo end to end without a browser: the provider (demo/idp) and the app
 * (demo/app) on free ports, signed into over plain HTTP exactly as the page
 * does it (Authorization Code + PKCE through the real login form), then the
 * app's HTTP API and /chat namespace with socket.io-client: chat, an
 * administrator disabling and re-enabling a user, and an in-band refresh.
 *
 * Needs the built package (`npm run build`): the demo imports `ioserver-oidc`.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { get as httpGet } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import type { Socket } from "socket.io-client";
import { openSqlite } from "../../demo/app/sqlite.js";
import type { MeView as Me } from "../../demo/app/ApiController.js";
import type { ChatMessage } from "../../demo/app/ChatService.js";
import type { SessionView } from "../../demo/app/sessions.js";
import type { DemoUser } from "../../demo/app/UsersManager.js";
import { callApi, HttpSpa, nextEvent, openSocket, startDemo, STEP_TIMEOUT_MS, type Credential, type RunningDemo, type Tokens } from "../helpers/demo.js";
import { connected } from "../helpers/app.js";
import { nextSecond } from "../helpers/wait.js";

type UserView = Pick<DemoUser, "id" | "sub" | "name" | "email" | "isDisabled">;

describe("demo end to end over HTTP and socket.io-client", { timeout: 60_000 }, () => {
  let demo: RunningDemo;
  let spa: HttpSpa;
  let alice: Tokens;
  let bob: Tokens;
  let aliceMe: Me;
  let bobMe: Me;
  let aliceChat: Socket;
  let bobChat: Socket;
  const sockets: Socket[] = [];

  /** Every socket opened here is closed in `after`. */
  function chatSocket(credential: Credential): Socket {
    const socket = openSocket(demo, "chat", credential);
    sockets.push(socket);
    return socket;
  }

  before(async () => {
    demo = await startDemo();
    spa = new HttpSpa(demo);
  });

  after(async () => {
    for (const socket of sockets) socket.disconnect();
    await demo?.close();
  });

  it("signs alice and bob in: Authorization Code + PKCE through the provider's login form, DPoP-bound tokens", async () => {
    [alice, bob] = await Promise.all([spa.signIn("alice", "alice-password"), spa.signIn("bob", "bob-password")]);
    for (const tokens of [alice, bob]) {
      assert.equal(tokens.expiresIn, 120);
      assert.equal(tokens.accessToken.split(".").length, 3, "a JWT access token for the API");
      assert.equal(tokens.tokenType, "DPoP");
      assert.deepEqual(decodeJwt(tokens.accessToken).cnf, { jkt: tokens.key.jkt }, "bound to the key that signed the token request's proof");
    }
    assert.notEqual(alice.accessToken, bob.accessToken);
    assert.notEqual(alice.key.jkt, bob.key.jkt);
  });

  it("GET /api/me: the app reads name and roles from each access token", async () => {
    const a = await callApi<Me>(demo, "GET", "/api/me", alice);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    aliceMe = a.body;
    assert.equal(aliceMe.sub, "alice");
    assert.equal(aliceMe.name, "Alice Admin");
    assert.equal(aliceMe.email, "alice@example.com");
    assert.deepEqual(aliceMe.roles, ["admin"]);
    assert.deepEqual(aliceMe.permissions, ["chat:write", "sessions:manage"]);
    assert.match(aliceMe.userId, /^\d+$/, "the app's own user id (its SQLite row)");

    const b = await callApi<Me>(demo, "GET", "/api/me", bob);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    bobMe = b.body;
    assert.equal(bobMe.sub, "bob");
    assert.equal(bobMe.name, "Bob Member");
    assert.deepEqual(bobMe.roles, ["member"]);
    assert.notEqual(bobMe.userId, aliceMe.userId);

    const anonymous = await fetch(`${demo.appOrigin}/api/me`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { code?: string }).code, "ERR_AUTH_TOKEN_REQUIRED");
  });

  it("the API takes a bound token only with a proof by its key", async () => {
    const asBearer = await callApi<{ code?: string }>(demo, "GET", "/api/me", alice.accessToken);
    assert.deepEqual([asBearer.status, asBearer.body.code], [401, "ERR_AUTH_TOKEN_INVALID"]);
    const withBobsKey = await callApi<{ code?: string }>(demo, "GET", "/api/me", { accessToken: alice.accessToken, key: bob.key });
    assert.deepEqual([withBobsKey.status, withBobsKey.body.code], [401, "ERR_AUTH_TOKEN_INVALID"]);
    const noProof = await fetch(`${demo.appOrigin}/api/me`, {
      headers: { authorization: `DPoP ${alice.accessToken}` },
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    assert.equal(noProof.status, 401);
    assert.equal(((await noProof.json()) as { code?: string }).code, "ERR_AUTH_DPOP_INVALID");
    // the same token with its key still works
    assert.equal((await callApi(demo, "GET", "/api/me", alice)).status, 200);

    // Proofs name the app's public origin (dpop.publicOrigin), not whatever the Host header says:
    // a proof made for another host is refused even when the request's Host header names that host.
    const { port } = new URL(demo.appOrigin);
    const elsewhere = `http://localhost:${port}/api/me`;
    const proof = await alice.key.proof({ method: "GET", url: elsewhere, accessToken: alice.accessToken });
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpGet(
        `${demo.appOrigin}/api/me`,
        { headers: { host: `localhost:${port}`, authorization: `DPoP ${alice.accessToken}`, dpop: proof }, timeout: STEP_TIMEOUT_MS },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on("timeout", () => request.destroy(new Error("GET /api/me timed out")));
      request.on("error", reject);
    });
    assert.equal(status, 401);
  });

  it("the socket handshake takes a bound token only with a proof by its key", async () => {
    for (const [credential, code] of [
      [alice.accessToken, "ERR_AUTH_TOKEN_INVALID"],
      [{ accessToken: alice.accessToken, key: bob.key }, "ERR_AUTH_TOKEN_INVALID"],
    ] as const) {
      const socket = chatSocket(credential);
      const [error] = await nextEvent<[Error & { data?: { code?: string } }]>(socket, "connect_error");
      assert.equal(error.message, code);
      assert.equal(error.data?.code, code);
      socket.disconnect();
    }
  });

  it("both join /chat; bob's message reaches alice as chat:message", async () => {
    aliceChat = chatSocket(alice);
    const welcome = nextEvent<[{ text: string }]>(aliceChat, "chat:system");
    bobChat = chatSocket(bob);
    await Promise.all([connected(aliceChat), connected(bobChat)]);
    assert.match((await welcome)[0].text, /Welcome, Alice Admin/);

    const text = `hello from bob ${Date.now()}`;
    const received = nextEvent<[ChatMessage]>(aliceChat, "chat:message", STEP_TIMEOUT_MS, (message) => message.text === text);
    const ack = (await bobChat.timeout(STEP_TIMEOUT_MS).emitWithAck("message", { text })) as { ok: boolean };
    assert.deepEqual(ack, { ok: true });
    const [message] = await received;
    assert.equal(message.from, "Bob Member");
    assert.equal(message.userId, bobMe.userId);
    assert.equal(typeof message.at, "number");
  });

  it("GET /metrics: Prometheus text with the authentications so far and the live sockets; /admin/metrics sums them up for admins", async () => {
    const response = await fetch(`${demo.appOrigin}/metrics`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    assert.match(text, /^# TYPE ioserver_oidc_authentications_total counter$/m);
    const successes = [...text.matchAll(/^ioserver_oidc_authentications_total\{transport="http",issuer="([^"]+)",outcome="success",[^}]*\} (\d+)$/gm)];
    assert.ok(successes.length > 0, text);
    assert.ok(successes.every(([, issuer]) => issuer === demo.idp.issuer));
    assert.ok(successes.reduce((sum, [, , count]) => sum + Number(count), 0) >= 2, "alice's and bob's GET /api/me");
    assert.match(text, /^ioserver_oidc_authentications_total\{transport="http",issuer="unknown",outcome="ERR_AUTH_TOKEN_REQUIRED",cache="none",path="none"\} 1$/m);
    assert.match(text, /^ioserver_oidc_live_sockets\{namespace="\/chat"\} 2$/m);
    assert.match(text, /^ioserver_oidc_jwks_state\{issuer="[^"]+",state="fresh"\} 1$/m);
    for (const secret of [alice.accessToken, bob.accessToken, "sub=\"alice\"", "\"bob\""]) assert.ok(!text.includes(secret), "no token and no sub in a label");

    const summary = await callApi<{ authentications: Record<string, number>; liveSockets: Record<string, number>; keySets: Array<{ state: string; keys: number }> }>(demo, "GET", "/admin/metrics", alice);
    assert.equal(summary.status, 200);
    assert.ok((summary.body.authentications.success ?? 0) >= 2);
    assert.equal(summary.body.liveSockets["/chat"], 2);
    assert.equal(summary.body.keySets[0]?.state, "fresh");
    assert.equal((await callApi(demo, "GET", "/admin/metrics", bob)).status, 403);
  });

  it("the admin API is for admins only", async () => {
    const refused = await callApi<{ code?: string }>(demo, "GET", "/admin/sessions", bob);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, "ERR_FORBIDDEN");
  });

  it("alice lists the sessions and disables bob: his socket gets oidc:revoked and is disconnected", async () => {
    const sessions = await callApi<SessionView[]>(demo, "GET", "/admin/sessions", alice);
    assert.equal(sessions.status, 200, JSON.stringify(sessions.body));
    const chatSessions = sessions.body.filter((session) => session.namespace === "/chat");
    assert.deepEqual(chatSessions.map((session) => session.socketId).sort(), [aliceChat.id, bobChat.id].sort());
    const bobSession = chatSessions.find((session) => session.sub === "bob");
    assert.equal(bobSession?.userId, bobMe.userId);
    assert.equal(bobSession?.name, "Bob Member");
    assert.ok((bobSession?.expiresAt ?? 0) > Date.now());

    const users = await callApi<UserView[]>(demo, "GET", "/admin/users", alice);
    assert.equal(users.status, 200);
    const bobRow = users.body.find((user) => user.sub === "bob");
    assert.ok(bobRow, "bob is in the app's user table");
    assert.equal(String(bobRow.id), bobMe.userId);
    assert.equal(bobRow.isDisabled, false);

    const revoked = nextEvent<[{ code: string; reason?: string }]>(bobChat, "oidc:revoked");
    const gone = nextEvent<[string]>(bobChat, "disconnect");
    const aliceDropped: string[] = [];
    aliceChat.on("disconnect", (reason) => aliceDropped.push(reason));

    const disabled = await callApi(demo, "POST", `/admin/users/${bobRow.id}/disable`, alice);
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.deepEqual(disabled.body, { ok: true, disconnected: 1 });

    assert.deepEqual((await revoked)[0], { code: "ERR_AUTH_REVOKED", reason: "disabled by an administrator" });
    assert.equal((await gone)[0], "io server disconnect");
    assert.equal(bobChat.connected, false);

    const listed = await callApi<UserView[]>(demo, "GET", "/admin/users", alice);
    assert.equal(listed.body.find((user) => user.sub === "bob")?.isDisabled, true);
    const remaining = await callApi<SessionView[]>(demo, "GET", "/admin/sessions", alice);
    assert.deepEqual(
      remaining.body.filter((session) => session.namespace === "/chat").map((session) => session.sub),
      ["alice"],
    );
    assert.equal(aliceChat.connected, true, "alice keeps her connection");
    assert.deepEqual(aliceDropped, []);

    const self = await callApi<{ message?: string }>(demo, "POST", `/admin/users/${aliceMe.userId}/disable`, alice);
    assert.equal(self.status, 409, "an admin cannot lock herself out");
  });

  it("a disabled bob is refused everywhere, even with his unexpired token", async () => {
    const retry = chatSocket(bob);
    await assert.rejects(connected(retry), (error: Error) => {
      assert.equal(error.message, "refused: ERR_USER_DISABLED");
      return true;
    });
    assert.equal(retry.connected, false);

    const me = await callApi<{ code?: string }>(demo, "GET", "/api/me", bob);
    assert.equal(me.status, 403);
    assert.equal(me.body.code, "ERR_USER_DISABLED");

    // a fresh sign-in does not help either: disabling is the app's decision, not the provider's
    const again = await spa.signIn("bob", "bob-password");
    assert.equal((await callApi<{ code?: string }>(demo, "GET", "/api/me", again)).body.code, "ERR_USER_DISABLED");
  });

  it("re-enabled by alice, bob connects and chats again", async () => {
    const enabled = await callApi(demo, "POST", `/admin/users/${bobMe.userId}/enable`, alice);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    assert.deepEqual(enabled.body, { ok: true });

    // Disabling revoked the tokens bob had: they stay refused; he signs in again.
    const stale = await callApi<{ code?: string }>(demo, "GET", "/api/me", bob);
    assert.deepEqual([stale.status, stale.body.code], [401, "ERR_AUTH_REVOKED"]);
    await nextSecond();
    bob = await spa.signIn("bob", "bob-password");

    const me = await callApi<Me>(demo, "GET", "/api/me", bob);
    assert.equal(me.status, 200);
    assert.equal(me.body.userId, bobMe.userId, "the same app user as at his first sign-in");

    bobChat = await connected(chatSocket(bob));
    const text = `bob is back ${Date.now()}`;
    const received = nextEvent<[ChatMessage]>(aliceChat, "chat:message", STEP_TIMEOUT_MS, (message) => message.text === text);
    assert.deepEqual(await bobChat.timeout(STEP_TIMEOUT_MS).emitWithAck("message", { text }), { ok: true });
    assert.equal((await received)[0].from, "Bob Member");
  });

  it("a refresh grant gives alice a new token, handed over on the same socket with oidc:refresh", async () => {
    const socketId = aliceChat.id;
    const before = await callApi<Me>(demo, "GET", "/api/me", alice);
    // The refresh token is bound to alice's key too: another key's proof is refused.
    await assert.rejects(spa.refresh({ refreshToken: alice.refreshToken, key: bob.key }), /invalid_grant/);
    const refreshed = await spa.refresh(alice);
    assert.notEqual(refreshed.accessToken, alice.accessToken);
    assert.notEqual(refreshed.refreshToken, alice.refreshToken, "rotated");
    assert.equal(decodeJwt<{ cnf?: { jkt?: string } }>(refreshed.accessToken).cnf?.jkt, alice.key.jkt, "bound to the same key");

    const reconnects: string[] = [];
    aliceChat.on("disconnect", (reason) => reconnects.push(reason));
    // the connection stays bound to alice's key: the new token with a proof by another key is refused
    const foreign = (await aliceChat.timeout(STEP_TIMEOUT_MS).emitWithAck("oidc:refresh", {
      token: refreshed.accessToken,
      dpop: await bob.key.socketProof(demo.appOrigin, refreshed.accessToken),
    })) as { ok: boolean; code?: string };
    assert.equal(foreign.ok, false);
    assert.match(foreign.code ?? "", /^ERR_AUTH_(TOKEN|DPOP)_INVALID$/);
    const reply = (await aliceChat.timeout(STEP_TIMEOUT_MS).emitWithAck("oidc:refresh", {
      token: refreshed.accessToken,
      dpop: await alice.key.socketProof(demo.appOrigin, refreshed.accessToken),
    })) as {
      ok: boolean;
      expiresAt?: number;
      code?: string;
    };
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.equal(typeof reply.expiresAt, "number");
    assert.ok((reply.expiresAt ?? 0) >= before.body.expiresAt, "the connection now lives on the new token's expiry");
    assert.equal(aliceChat.id, socketId, "same socket, no reconnect");
    assert.equal(aliceChat.connected, true);
    assert.deepEqual(reconnects, []);

    const sessions = await callApi<SessionView[]>(demo, "GET", "/admin/sessions", refreshed);
    assert.equal(sessions.status, 200);
    assert.equal(sessions.body.find((session) => session.socketId === socketId)?.expiresAt, reply.expiresAt);

    // the refreshed socket still works
    const text = `alice after refresh ${Date.now()}`;
    const received = nextEvent<[ChatMessage]>(bobChat, "chat:message", STEP_TIMEOUT_MS, (message) => message.text === text);
    assert.deepEqual(await aliceChat.timeout(STEP_TIMEOUT_MS).emitWithAck("message", { text }), { ok: true });
    assert.equal((await received)[0].from, "Alice Admin");
    alice = refreshed;
  });

  it("the /admin namespace is for admins and offers the same actions: list, disconnect, disable, enable", async () => {
    const refused = openSocket(demo, "admin", bob);
    sockets.push(refused);
    const error = await nextEvent<[Error]>(refused, "connect_error");
    assert.equal(error[0].message, "ERR_FORBIDDEN");

    const admin = openSocket(demo, "admin", alice);
    sockets.push(admin);
    await connected(admin);
    type Result = { status: number; body: Record<string, unknown> };
    const emit = (event: string, data: unknown) => admin.timeout(STEP_TIMEOUT_MS).emitWithAck(event, data) as Promise<Result>;

    const listed = (await admin.timeout(STEP_TIMEOUT_MS).emitWithAck("sessions", {})) as SessionView[];
    const bobSocket = listed.find((session) => session.sub === "bob" && session.namespace === "/chat");
    assert.ok(bobSocket, "bob's chat socket is listed");

    const kicked = nextEvent<[{ code: string; reason?: string }]>(bobChat, "oidc:revoked");
    assert.deepEqual(await emit("disconnectSession", { socketId: bobSocket.socketId }), { status: 200, body: { ok: true } });
    assert.deepEqual((await kicked)[0], { code: "ERR_AUTH_REVOKED", reason: "disconnected by an administrator" });
    assert.equal((await emit("disconnectSession", { socketId: "nope" })).status, 404);

    bobChat = await connected(chatSocket(bob)); // a disconnect is not a ban
    const revoked = nextEvent<[{ code: string; reason?: string }]>(bobChat, "oidc:revoked");
    const disabled = await emit("disableUser", { userId: bobMe.userId });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal((await revoked)[0].reason, "disabled by an administrator");
    assert.equal((await emit("disableUser", { userId: aliceMe.userId })).status, 409, "not yourself");
    assert.equal((await emit("disableUser", { userId: "x" })).status, 400);
    assert.deepEqual(await emit("enableUser", { userId: bobMe.userId }), { status: 200, body: { ok: true } });
    await nextSecond(); // the disable revoked bob's tokens: he signs in again
    bob = await spa.signIn("bob", "bob-password");
    bobChat = await connected(chatSocket(bob));
  });

  it("kept the users in the SQLite database in dataDir", () => {
    const file = join(demo.dataDir, "demo.sqlite");
    assert.ok(existsSync(file), `${file} exists`);
    assert.ok(statSync(file).size > 0);
    const db = openSqlite(file, { readOnly: true }); // the demo's own driver choice (node:sqlite, or better-sqlite3 on Node 20)
    try {
      const rows = db.prepare("SELECT sub, is_disabled FROM users ORDER BY id").all();
      assert.deepEqual(rows, [
        { sub: "alice", is_disabled: 0 },
        { sub: "bob", is_disabled: 0 },
      ]);
    } finally {
      db.close();
    }
  });
});
