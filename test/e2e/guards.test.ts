/**
 * The authorization guards in a real IOServer: a scope-guarded controller, a
 * role-guarded namespace, and per-event guards inside a namespace, with real
 * tokens from the test issuer and real socket.io-client connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BaseController, BaseService, type IOServer } from "ioserver";
import type { Socket as ClientSocket } from "socket.io-client";
import type { Socket as ServerSocket } from "socket.io";
import {
  guardEvent,
  guarded,
  OidcConfigManager,
  OidcHttpMiddleware,
  OidcSocketMiddleware,
  requirePermissions,
  requireRoles,
  requireScopes,
} from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, createServerBase, httpGet, outcome, routesFolder, type LogLine, type ServerBase } from "../helpers/app.js";

type Ack = (value: unknown) => void;
interface Reply {
  send(body: unknown): unknown;
}


/** What the service handlers ran, in order. */
const ran: Array<{ event: string; sub: string; data: unknown; self: boolean }> = [];
let logs: LogLine[] = [];

class StatsController extends BaseController {
  async summary(request: { sub: string }, reply: Reply) {
    return reply.send({ ok: true, sub: request.sub });
  }
}

class StaffService extends BaseService {
  async ping(socket: ServerSocket, _data: unknown, callback?: Ack) {
    callback?.({ pong: socket.sub });
  }
}

class RoomsService extends BaseService {
  /** Set on the prototype below: IOServer only sees methods on the prototype. */
  declare deleteRoom: (socket: ServerSocket, data: { room: string }, callback?: Ack) => Promise<void>;

  /** Pitfall: a class field lives on the instance, so IOServer 2.0.6 never listens to `fieldEvent`. */
  fieldEvent = guardEvent(requireRoles("mod"), async function (socket: ServerSocket, data: unknown, callback?: Ack) {
    ran.push({ event: "fieldEvent", sub: socket.sub, data, self: false });
    callback?.({ status: "ok" });
  });

  /** No guard: any authenticated socket. */
  async message(socket: ServerSocket, data: { text: string }, callback?: Ack) {
    ran.push({ event: "message", sub: socket.sub, data, self: this instanceof RoomsService });
    callback?.({ status: "ok", echo: data.text });
  }

  /** Standard decorator form. */
  @guarded(requireRoles.any("mod", "admin"))
  async kick(socket: ServerSocket, data: { user: string }, callback?: Ack) {
    ran.push({ event: "kick", sub: socket.sub, data, self: this instanceof RoomsService });
    callback?.({ status: "ok", kicked: data.user });
  }
}

/** Prototype-assignment form (no decorator needed). */
RoomsService.prototype.deleteRoom = guardEvent(
  requirePermissions("rooms:delete"),
  async function (this: RoomsService, socket: ServerSocket, data: { room: string }, callback?: Ack) {
    ran.push({ event: "deleteRoom", sub: socket.sub, data, self: this instanceof RoomsService });
    callback?.({ status: "ok", deleted: data.room });
  },
);

let issuer: TestIssuer;
let app: ServerBase;
let server: IOServer;

before(async () => {
  issuer = await createTestIssuer();
  const summary = [{ method: "GET", url: "/summary", handler: "summary" }];
  app = await createServerBase(routesFolder("ioserver-oidc-guards-", { stats: summary, misordered: summary }));
  logs = app.logs;
  server = app.server;
  server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure({ ...issuer.config, realm: "api" }) });
  server.addController({ name: "stats", controller: StatsController, middlewares: [OidcHttpMiddleware, requireScopes("read:stats")] });
  // Wrong order: the guard runs before authentication and refuses everyone.
  server.addController({ name: "misordered", controller: StatsController, middlewares: [requireScopes("read:stats"), OidcHttpMiddleware] });
  server.addService({ name: "staff", service: StaffService, middlewares: [OidcSocketMiddleware, requireRoles.any("admin", "mod")] });
  server.addService({ name: "misordered", service: StaffService, middlewares: [requireRoles.any("admin", "mod"), OidcSocketMiddleware] });
  server.addService({ name: "rooms", service: RoomsService, middlewares: [OidcSocketMiddleware] });
  await server.start();
});

after(async () => {
  await app?.close();
  await issuer?.close();
});

async function get(path: string, token?: string) {
  const res = await httpGet(app, token, { path });
  return { status: res.status, challenge: res.headers.get("www-authenticate"), body: res.body };
}

function connect(namespace: string, token?: string): ClientSocket {
  return app.connect(namespace, token === undefined ? {} : { auth: { token } });
}

async function connected(namespace: string, token: string): Promise<ClientSocket> {
  const client = connect(namespace, token);
  const result = await outcome(client);
  assert.ok(result.connected, `expected /${namespace} to accept the socket, got ${result.connected ? "" : result.message}`);
  return client;
}

const CHALLENGE = 'Bearer realm="api", error="insufficient_scope", error_description="Access is forbidden"';

describe("controller guarded by [OidcHttpMiddleware, requireScopes('read:stats')]", () => {
  it("200 when the token's scope claim includes read:stats", async () => {
    const token = await issuer.mint({ sub: "reader", scope: "openid read:stats" });
    const res = await get("/stats/summary", token);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ok: true, sub: "reader" });
  });

  it("403 ERR_FORBIDDEN with an insufficient_scope challenge naming the scope otherwise", async () => {
    const token = await issuer.mint({ sub: "nosy", scope: "openid write:stats", roles: ["admin"] });
    const res = await get("/stats/summary", token);
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, { statusCode: 403, error: "Forbidden", code: "ERR_FORBIDDEN", message: "Access is forbidden" });
    assert.equal(res.challenge, `${CHALLENGE}, scope="read:stats"`);
    const line = logs.find((l) => l.text.includes('refused user "nosy"'));
    assert.ok(line, "the refusal is logged");
    assert.equal(line.level, 4);
    assert.match(line.text, /HTTP GET \/stats\/summary: ERR_FORBIDDEN: RequireScopes\(read:stats\) refused user "nosy": requires scopes all of \["read:stats"\], user has \["openid","write:stats"\]/);
  });

  it("still 401 without a token (authentication runs first)", async () => {
    const res = await get("/stats/summary");
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "ERR_AUTH_TOKEN_REQUIRED");
  });

  it("a guard listed before OidcHttpMiddleware refuses even a good token and says why in the log", async () => {
    const token = await issuer.mint({ sub: "early", scope: "read:stats" });
    const res = await get("/misordered/summary", token);
    assert.equal(res.status, 403);
    assert.equal(res.body.code, "ERR_FORBIDDEN");
    assert.ok(logs.some((l) => l.text.includes("RequireScopes(read:stats) found no authenticated user: list OidcHttpMiddleware before it")));
  });
});

describe("namespace guarded by [OidcSocketMiddleware, requireRoles.any('admin', 'mod')]", () => {
  it("accepts a socket with either role", async () => {
    for (const roles of [["mod"], ["admin", "user"]]) {
      const token = await issuer.mint({ sub: `staff-${roles[0]}`, roles });
      const client = await connected("staff", token);
      assert.deepEqual(await call(client, "ping"), { pong: `staff-${roles[0]}` });
      client.disconnect();
    }
  });

  it("connect_error ERR_FORBIDDEN without either role", async () => {
    const token = await issuer.mint({ sub: "pleb", roles: ["user"], permissions: ["admin"] });
    const result = await outcome(connect("staff", token));
    assert.equal(result.connected, false);
    if (!result.connected) {
      assert.equal(result.message, "ERR_FORBIDDEN");
      assert.deepEqual(result.data, { code: "ERR_FORBIDDEN", message: "Access is forbidden" });
    }
    assert.ok(logs.some((l) => /socket \/staff \S+: ERR_FORBIDDEN: RequireRoles\.any\(admin, mod\) refused user "pleb": requires roles one of \["admin","mod"\], user has \["user"\]/.test(l.text)));
  });

  it("a guard listed before OidcSocketMiddleware refuses and says why in the log", async () => {
    const token = await issuer.mint({ sub: "early-socket", roles: ["admin"] });
    const result = await outcome(connect("misordered", token));
    assert.equal(result.connected, false);
    if (!result.connected) assert.equal(result.message, "ERR_FORBIDDEN");
    assert.ok(logs.some((l) => l.text.includes("RequireRoles.any(admin, mod) found no authenticated user: list OidcSocketMiddleware before it")));
  });
});

describe("per-event guards in the rooms namespace", () => {
  it("IOServer registers the prototype-assigned and decorated methods, not the class field", () => {
    const methods = (server as unknown as { methodLists: Map<string, string[]> }).methodLists.get("rooms") ?? [];
    for (const name of ["deleteRoom", "kick", "message"]) assert.ok(methods.includes(name), `${name} in ${JSON.stringify(methods)}`);
    assert.ok(!methods.includes("fieldEvent"));
  });

  it("deleteRoom without rooms:delete: ack { status: 'error', code: 'ERR_FORBIDDEN' }, the handler never runs", async () => {
    const token = await issuer.mint({ sub: "member", roles: ["admin"], permissions: ["rooms:read"] });
    const client = await connected("rooms", token);
    const before = ran.length;
    assert.deepEqual(await call(client, "deleteRoom", { room: "lobby" }), { status: "error", code: "ERR_FORBIDDEN" });
    // message needs nothing: the socket is still usable
    assert.deepEqual(await call(client, "message", { text: "hi" }), { status: "ok", echo: "hi" });
    assert.deepEqual(
      ran.slice(before).map((r) => r.event),
      ["message"],
    );
    assert.ok(logs.some((l) => /socket \/rooms \S+ event "deleteRoom": ERR_FORBIDDEN: RequirePermissions\(rooms:delete\) refused user "member": requires permissions all of \["rooms:delete"\], user has \["rooms:read"\]/.test(l.text)));
    client.disconnect();
  });

  it("deleteRoom with rooms:delete runs the handler with the service as `this`", async () => {
    const token = await issuer.mint({ sub: "owner", permissions: ["rooms:read", "rooms:delete"] });
    const client = await connected("rooms", token);
    const before = ran.length;
    assert.deepEqual(await call(client, "deleteRoom", { room: "lobby" }), { status: "ok", deleted: "lobby" });
    assert.deepEqual(ran.slice(before), [{ event: "deleteRoom", sub: "owner", data: { room: "lobby" }, self: true }]);
    client.disconnect();
  });

  it("@guarded(requireRoles.any('mod', 'admin')) on kick", async () => {
    const member = await connected("rooms", await issuer.mint({ sub: "member2", roles: ["user"] }));
    const mod = await connected("rooms", await issuer.mint({ sub: "mod2", roles: ["mod"] }));
    const before = ran.length;
    assert.deepEqual(await call(member, "kick", { user: "x" }), { status: "error", code: "ERR_FORBIDDEN" });
    assert.deepEqual(await call(mod, "kick", { user: "x" }), { status: "ok", kicked: "x" });
    assert.deepEqual(ran.slice(before), [{ event: "kick", sub: "mod2", data: { user: "x" }, self: true }]);
    member.disconnect();
    mod.disconnect();
  });

  it("a refused event without an ack is dropped quietly and the socket stays connected", async () => {
    const client = await connected("rooms", await issuer.mint({ sub: "quiet" }));
    const before = ran.length;
    client.emit("deleteRoom", { room: "lobby" });
    assert.deepEqual(await call(client, "message", { text: "still here" }), { status: "ok", echo: "still here" });
    assert.deepEqual(
      ran.slice(before).map((r) => r.event),
      ["message"],
    );
    assert.ok(client.connected);
    client.disconnect();
  });

  it("the class-field form gets no answer at all (documents why it is unsupported)", async () => {
    const client = await connected("rooms", await issuer.mint({ sub: "field", roles: ["mod"] }));
    await assert.rejects(call(client, "fieldEvent", {}, 500), /operation has timed out/);
    assert.ok(!ran.some((r) => r.event === "fieldEvent"));
    client.disconnect();
  });
});
