/**
 * Live connections: expiry, in-band refresh, revocation, recovery. Tokens
 * live a few seconds so nothing waits long; every wait is bounded.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import type { Socket as ClientSocket } from "socket.io-client";
import { connectWithOidc } from "../../src/client/index.js";
import { OidcSessionManager, OidcSocketMiddleware } from "../../src/index.js";
import { type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, next, outcome, startApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
useTestIssuer((created) => (issuer = created));

const nowS = () => Math.floor(Date.now() / 1000);




describe("expiry and in-band refresh", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...issuer.config, clockTolerance: 1 } });
  });
  after(async () => {
    await app.close();
  });

  it("oidc:expiring before exp, then oidc:expired and a server disconnect after exp + tolerance", async () => {
    const exp = nowS() + 3;
    const socket = await connectedTo(app, "chat", await issuer.mint({ exp }));
    const events: Array<[string, unknown, number]> = [];
    socket.on("oidc:expiring", (p) => events.push(["expiring", p, Date.now()]));
    socket.on("oidc:expired", (p) => events.push(["expired", p, Date.now()]));
    const reason = await next<string>(socket, "disconnect", 10_000);
    assert.equal(reason, "io server disconnect");
    assert.deepEqual(events.map(([name]) => name), ["expiring", "expired"]);
    const [[, expiring, warnedAt], [, expired, expiredAt]] = events as [[string, { expiresAt: number }, number], [string, unknown, number]];
    assert.equal(expiring.expiresAt, exp * 1000);
    assert.ok(warnedAt < exp * 1000, "warned before exp");
    assert.deepEqual(expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
    assert.ok(expiredAt >= exp * 1000 + 1000 - 50, `expired ${expiredAt - exp * 1000} ms after exp`);
    assert.ok(expiredAt < exp * 1000 + 3000, "and not much later");
  });

  it("an app that replaces socket.data keeps the socket's identity and its expiry", async () => {
    const exp = nowS() + 3;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "dora", exp }));
    assert.deepEqual(await call(socket, "replaceData", { room: "lobby" }), { room: "lobby" });
    const view = await call<{ userId: string; dataAuth: unknown }>(socket, "whoami");
    assert.equal(view.userId, "dora", "socket.userId still reads the authenticated context");
    assert.equal(view.dataAuth, undefined, "socket.data is the app's own now");
    const expired = next<unknown>(socket, "oidc:expired", 10_000);
    assert.equal(await next<string>(socket, "disconnect", 10_000), "io server disconnect");
    assert.deepEqual(await expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
  });

  it("many sockets share the app's expiry queue: each expires at its own exp, one gone early does not disturb them", async () => {
    const base = nowS();
    const exps = [base + 4, base + 2, base + 3, base + 2];
    const sockets = await Promise.all(exps.map(async (exp, i) => connectedTo(app, "chat", await issuer.mint({ sub: `many-${i}`, exp }))));
    const gone = await connectedTo(app, "chat", await issuer.mint({ sub: "many-gone", exp: base + 2 }));
    gone.disconnect(); // its entry leaves the queue (released on disconnect) while the others stay in it
    const expiredAt = await Promise.all(
      sockets.map(async (socket) => {
        await next(socket, "oidc:expiring", 10_000);
        await next(socket, "oidc:expired", 10_000);
        return Date.now();
      }),
    );
    expiredAt.forEach((at, i) => {
      assert.ok(at >= exps[i]! * 1000 + 1000 - 50, `socket ${i} expired ${at - exps[i]! * 1000} ms after its exp`);
      assert.ok(at < exps[i]! * 1000 + 2500, `socket ${i} expired late: ${at - exps[i]! * 1000} ms after its exp`);
    });
  });

  it("a refresh before exp keeps the socket, its rooms and gives it the new context", async () => {
    const exp = nowS() + 3;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "ref", exp, roles: ["reader"] }));
    assert.deepEqual((await call<string[]>(socket, "join", { room: "lobby" })).includes("lobby"), true);
    await next(socket, "oidc:expiring");
    const fresh = await issuer.mint({ sub: "ref", roles: ["writer"], exp: nowS() + 60 });
    const ack = await call<{ ok: boolean; expiresAt: number }>(socket, "oidc:refresh", { token: fresh });
    assert.equal(ack.ok, true);
    assert.ok(ack.expiresAt >= (nowS() + 59) * 1000);
    const expired = next(socket, "oidc:expired", 4_500).then(
      () => "expired",
      () => "still here",
    );
    assert.equal(await expired, "still here", "no expiry past the first token's exp + tolerance");
    assert.ok(socket.connected);
    const view = await call<{ roles: string[]; userRole: string }>(socket, "whoami");
    assert.deepEqual(view.roles, ["writer"]);
    assert.equal(view.userRole, "writer");
    const rooms = await call<{ rooms: string[] }>(socket, "rooms");
    assert.ok(rooms.rooms.includes("lobby"));
    socket.disconnect();
  });

  it("refused refreshes keep the old context: another sub, expired, garbage, missing", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "keep", roles: ["a"] }));
    const cases: Array<[unknown, string]> = [
      [{ token: await issuer.mint({ sub: "someone-else" }) }, "ERR_AUTH_SUBJECT_MISMATCH"],
      [{ token: await issuer.mint({ sub: "keep", exp: nowS() - 60 }) }, "ERR_AUTH_TOKEN_INVALID"],
      [{ token: "garbage" }, "ERR_AUTH_TOKEN_INVALID"],
      [{}, "ERR_AUTH_TOKEN_REQUIRED"],
    ];
    for (const [payload, code] of cases) {
      assert.deepEqual(await call(socket, "oidc:refresh", payload), { ok: false, code });
    }
    const view = await call<{ sub: string; roles: string[] }>(socket, "whoami");
    assert.equal(view.sub, "keep");
    assert.deepEqual(view.roles, ["a"]);
    socket.disconnect();
  });

  it("refresh attempts are rate-limited per socket (5 per minute by default)", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "spam" }));
    const token = await issuer.mint({ sub: "spam" });
    for (let i = 0; i < 5; i++) assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token })).ok, true);
    assert.deepEqual(await call(socket, "oidc:refresh", { token }), { ok: false, code: "ERR_AUTH_RATE_LIMITED" });
    const other = await connectedTo(app, "chat", token);
    assert.equal((await call<{ ok: boolean }>(other, "oidc:refresh", { token })).ok, true, "the limit is per socket");
    socket.disconnect();
    other.disconnect();
  });

  it("a refresh on a socket that was never told to expire works too (no ack callback is harmless)", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "noack" }));
    socket.emit("oidc:refresh", { token: "x" }); // no ack: must not crash anything
    socket.emit("oidc:refresh", null, () => undefined);
    assert.equal((await call<{ sub: string }>(socket, "whoami")).sub, "noack");
    socket.disconnect();
  });
});

describe("ioserver-oidc/client against the real server", () => {
  it("refreshes automatically through three token lifetimes without reconnecting", { timeout: 30_000 }, async () => {
    const app = await startApp({ config: { ...issuer.config, clockTolerance: 0 } });
    const refreshed: number[] = [];
    const failures: string[] = [];
    let connects = 0;
    let minted = 0;
    const firstExp = nowS() + 3;
    const socket = connectWithOidc(`${app.url}/chat`, {
      transports: ["websocket"],
      reconnection: false,
      getToken: () => issuer.mint({ sub: "auto", exp: minted++ === 0 ? firstExp : nowS() + 3 }),
      onRefreshed: (expiresAt) => refreshed.push(expiresAt),
      onRefreshFailed: (code) => failures.push(code),
    });
    socket.on("connect", () => connects++);
    let expired = false;
    socket.on("oidc:expired", () => (expired = true));
    try {
      await waitFor(() => refreshed.length >= 3 && Date.now() > firstExp * 1000 + 6_000, 25_000);
      assert.deepEqual(failures, []);
      assert.equal(expired, false);
      assert.ok(socket.connected, "still connected after three lifetimes");
      assert.equal(connects, 1, "no reconnect");
      assert.ok(refreshed.every((at, i) => i === 0 || at >= refreshed[i - 1]!), "expiry moves forward");
    } finally {
      socket.disconnect();
      await app.close();
    }
  });

  it("a client that stops refreshing is disconnected with oidc:expired", async () => {
    const app = await startApp({ config: { ...issuer.config, clockTolerance: 0 } });
    let calls = 0;
    const socket = connectWithOidc(`${app.url}/chat`, {
      transports: ["websocket"],
      reconnection: false,
      getToken: () => (calls++ === 0 ? issuer.mint({ sub: "stale", exp: nowS() + 2 }) : Promise.reject(new Error("signed out"))),
    });
    try {
      const failed = new Promise<string>((resolve) => {
        const s = socket as unknown as ClientSocket;
        s.once("oidc:expired", (p: { code: string }) => resolve(p.code));
      });
      assert.equal(await Promise.race([failed, new Promise((r) => setTimeout(() => r("timeout"), 8_000))]), "ERR_AUTH_TOKEN_EXPIRED");
    } finally {
      socket.disconnect();
      await app.close();
    }
  });
});

describe("expiry can be turned off", () => {
  it("per middleware with OidcSocketMiddleware.configure({ expiry: false }); other namespaces still expire", async () => {
    const app = await startApp({ config: { ...issuer.config, clockTolerance: 0 } });
    try {
      const token = await issuer.mint({ exp: nowS() + 2 });
      const lenient = await connectedTo(app, "lenient", token);
      const strict = await connectedTo(app, "chat", token);
      const strictExpired = next(strict, "oidc:expired", 5_000);
      const lenientExpired = next(lenient, "oidc:expired", 3_500).then(
        () => "expired",
        () => "kept",
      );
      await strictExpired;
      assert.equal(await lenientExpired, "kept");
      assert.ok(lenient.connected);
      lenient.disconnect();
    } finally {
      await app.close();
    }
  });

  it("configure() validates its options", () => {
    assert.throws(() => OidcSocketMiddleware.configure({ expiry: "no" as never }), /"expiry" must be a boolean/);
  });

  it("globally with socketExpiry: false", async () => {
    const app = await startApp({ config: { ...issuer.config, clockTolerance: 0, socketExpiry: false } });
    try {
      const socket = await connectedTo(app, "chat", await issuer.mint({ exp: nowS() + 2 }));
      const got = await next(socket, "oidc:expired", 3_500).then(
        () => "expired",
        () => "kept",
      );
      assert.equal(got, "kept");
      assert.ok(socket.connected);
      socket.disconnect();
    } finally {
      await app.close();
    }
  });
});

describe("revocation with OidcSessionManager", () => {
  const disabled = new Set<string>();
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate(sub: string) {
      return { id: `id-${sub}`, isDisabled: disabled.has(sub) };
    }
  }
  let app: TestApp;
  let adminToken: string;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager } });
    adminToken = await issuer.mint({ sub: "boss", roles: ["admin"] });
  });
  after(async () => {
    await app.close();
  });

  const admin = async (method: "GET" | "POST", path: string, body?: unknown) => {
    const response = await fetch(`${app.url}/admin/${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(response.status, 200);
    return response.json() as Promise<Record<string, unknown>>;
  };

  it("list() shows every namespace's sockets with namespace, sub, connectedAt, expiresAt", async () => {
    const exp = nowS() + 120;
    const token = await issuer.mint({ sub: "lister", roles: ["admin"], exp });
    const a = await connectedTo(app, "chat", token);
    const b = await connectedTo(app, "admin", token);
    const { all } = (await admin("GET", "sessions")) as { all: Array<Record<string, unknown>> };
    const mine = all.filter((s) => s.sub === "lister").sort((x, y) => String(x.namespace).localeCompare(String(y.namespace)));
    assert.deepEqual(mine.map((s) => [s.namespace, s.userId, s.expiresAt]), [
      ["/admin", "id-lister", exp * 1000],
      ["/chat", "id-lister", exp * 1000],
    ]);
    assert.ok(mine.every((s) => typeof s.socketId === "string" && typeof s.connectedAt === "number"));
    const session = app.appHandle.session as OidcSessionManager;
    assert.equal((await session.listBySubject("lister")).length, 2);
    assert.equal((await session.listBySubject("lister", { iss: issuer.issuer })).length, 2);
    assert.equal((await session.listByUser("id-lister")).length, 2);
    assert.equal((await session.listByUser("lister")).length, 0, "a sub is not a user id when a users manager gives ids");
    a.disconnect();
    b.disconnect();
    await waitFor(async () => (await session.listByUser("id-lister")).length === 0);
  });

  it("disconnectUser from an HTTP controller disconnects the user on every namespace with oidc:revoked", async () => {
    const token = await issuer.mint({ sub: "bob", roles: ["admin"] });
    const chat = await connectedTo(app, "chat", token);
    const adm = await connectedTo(app, "admin", token);
    const bystander = await connectedTo(app, "chat", await issuer.mint({ sub: "carol" }));
    const revoked = Promise.all([next(chat, "oidc:revoked"), next(adm, "oidc:revoked")]);
    const gone = Promise.all([next(chat, "disconnect"), next(adm, "disconnect")]);
    assert.deepEqual(await admin("POST", "disconnect", { user: "id-bob", reason: "policy" }), { count: 2 });
    assert.deepEqual(await revoked, [
      { code: "ERR_AUTH_REVOKED", reason: "policy" },
      { code: "ERR_AUTH_REVOKED", reason: "policy" },
    ]);
    await gone;
    assert.ok(bystander.connected);
    assert.equal((await call<{ sub: string }>(bystander, "whoami")).sub, "carol");
    bystander.disconnect();
  });

  it("an app that replaces socket.data cannot take the socket out of a revocation, nor leave it listed once gone", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "ivy" }));
    await call(socket, "replaceData", { room: "lobby" });
    const session = app.appHandle.session as OidcSessionManager;
    assert.equal((await session.listByUser("id-ivy")).length, 1);
    const revoked = next(socket, "oidc:revoked");
    assert.equal(await session.disconnectUser("id-ivy", "policy"), 1);
    assert.deepEqual(await revoked, { code: "ERR_AUTH_REVOKED", reason: "policy" });
    await waitFor(async () => (await session.listByUser("id-ivy")).length === 0);
  });

  it("disconnectSocket disconnects one socket; unknown ids are reported", async () => {
    const token = await issuer.mint({ sub: "dan" });
    const one = await connectedTo(app, "chat", token);
    const two = await connectedTo(app, "chat", token);
    const session = app.appHandle.session as OidcSessionManager;
    const id = (await session.listByUser("id-dan")).find((s) => s.socketId === one.id)?.socketId;
    assert.ok(id, "the server-side id equals the client's");
    const gone = next(one, "disconnect");
    assert.equal(await session.disconnectSocket(id, "bye"), true);
    await gone;
    assert.ok(two.connected);
    assert.equal(await session.disconnectSocket("no-such-socket"), false);
    await assert.rejects(session.disconnectUser(""), TypeError);
    two.disconnect();
  });

  it("a refresh that finds the user disabled disconnects all of the user's sockets, on every namespace", async () => {
    const token = await issuer.mint({ sub: "eve", roles: ["admin"] });
    const chat = await connectedTo(app, "chat", token);
    const adm = await connectedTo(app, "admin", token);
    disabled.add("eve");
    try {
      const revokedElsewhere = next<{ code: string; reason: string }>(adm, "oidc:revoked");
      const goneHere = next(chat, "disconnect");
      chat.emit("oidc:refresh", { token: await issuer.mint({ sub: "eve" }) });
      assert.deepEqual(await revokedElsewhere, { code: "ERR_AUTH_REVOKED", reason: "user disabled" });
      await goneHere;
    } finally {
      disabled.delete("eve");
    }
  });

  it("a new connection that finds the user disabled also disconnects the user's open sockets", async () => {
    const open = await connectedTo(app, "chat", await issuer.mint({ sub: "frank" }));
    disabled.add("frank");
    try {
      const revoked = next(open, "oidc:revoked");
      const refused = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "frank" }) } }));
      assert.ok(!refused.connected);
      assert.equal(refused.message, "ERR_USER_DISABLED");
      await revoked;
    } finally {
      disabled.delete("frank");
    }
  });
});

describe("connection-state recovery", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...issuer.config, clockTolerance: 0 }, recovery: true });
  });
  after(async () => {
    await app.close();
  });

  async function dropAndRecover(socket: ClientSocket): Promise<void> {
    const back = next(socket, "connect", 8_000);
    (socket.io as unknown as { engine: { close(): void } }).engine.close();
    await back;
  }

  it("a recovered socket keeps its identity (its user properties restored from socket.data.auth) and its expiry", async () => {
    const exp = nowS() + 4;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "rec", roles: ["r1"], exp }), {
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    const joined = next(socket, "chat:joined");
    await call(socket, "join", { room: "kept" });
    await joined;
    await dropAndRecover(socket);
    assert.equal(socket.recovered, true, "Socket.IO recovered the session (middlewares skipped)");
    const view = await call<{ sub: string; userId: string; roles: string[] }>(socket, "whoami");
    assert.equal(view.sub, "rec");
    assert.equal(view.userId, "rec");
    assert.deepEqual(view.roles, ["r1"]);
    assert.ok((await call<{ rooms: string[] }>(socket, "rooms")).rooms.includes("kept"));
    const expired = await next<{ code: string }>(socket, "oidc:expired", 8_000);
    assert.deepEqual(expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
    assert.ok(Date.now() >= exp * 1000 - 50);
    socket.disconnect();
  });

  it("the session id alone recovers nothing: without a token, or with another user's, the restored socket is revoked", async () => {
    for (const [name, token, code] of [
      ["no token", undefined, "ERR_AUTH_TOKEN_REQUIRED"],
      ["another user's token", await issuer.mint({ sub: "thief" }), "ERR_AUTH_SUBJECT_MISMATCH"],
      ["a forged token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2ln", "ERR_AUTH_TOKEN_INVALID"],
    ] as const) {
      const victim = await connectedTo(app, "chat", await issuer.mint({ sub: "victim" }), { reconnection: false });
      const joined = next(victim, "chat:joined");
      await call(victim, "join", { room: "victim-room" });
      await joined;
      const { _pid: pid, _lastOffset: offset } = victim as unknown as { _pid: string; _lastOffset: string };
      assert.ok(pid !== undefined && offset !== undefined, "the victim has a session to recover");
      const dropped = next(victim, "disconnect");
      (victim.io as unknown as { engine: { close(): void } }).engine.close();
      await dropped;
      const thief = app.connect("chat", { auth: token === undefined ? { pid, offset } : { token, pid, offset }, reconnection: false });
      // Socket.IO restores the session (the middlewares are skipped: a refusal there would be a connect_error); the package revokes it.
      const revoked = next<{ code: string }>(thief, "oidc:revoked", 8_000);
      assert.equal((await revoked).code, code, name);
      thief.disconnect();
    }
  });

  it("a socket whose token expired while it was away is disconnected on recovery", async () => {
    const exp = nowS() + 2;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "late", exp }), { reconnection: false });
    const joined = next(socket, "chat:joined");
    await call(socket, "join", { room: "r" });
    await joined;
    // Keep the client from reconnecting until after exp, then reconnect by hand with the same session.
    const manager = socket.io as unknown as { engine: { close(): void } };
    const dropped = next(socket, "disconnect");
    manager.engine.close();
    await dropped;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now() + 300)));
    const expired = next<{ code: string }>(socket, "oidc:expired", 8_000);
    socket.connect();
    assert.deepEqual(await expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
    socket.disconnect();
  });
});
