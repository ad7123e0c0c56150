/**
 * An in-band refresh is a new handshake for authorization: the namespace's
 * package guards run again, in their order, against the refreshed token's
 * context, and a connection whose new token they refuse loses the namespace
 * (ack, `oidc:revoked`, disconnect) without the refused context ever becoming
 * the socket's. Real IOServer, real tokens from the test issuer, real
 * socket.io-client connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BaseService } from "ioserver";
import type { Server as SocketIoServer, Socket as ServerSocket } from "socket.io";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  OidcConfigManager,
  OidcSocketAdminMiddleware,
  OidcSocketMiddleware,
  requireClaims,
  requirePermissions,
  requireRoles,
  requireScopes,
  type OidcUserContext,
} from "../../src/index.js";
import { connectWithOidc, type OidcClientSocket, type OidcRevokedPayload } from "../../src/client/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connected, createServerBase, next, routesFolder, startApp, type LogLine, type TestApp } from "../helpers/app.js";
import { sleep, waitFor } from "../helpers/wait.js";

type Ack = (value: unknown) => void;
type RefreshReply = { ok: true; expiresAt: number } | { ok: false; code: string };

let issuer: TestIssuer;

before(async () => {
  issuer = await createTestIssuer();
});
after(async () => {
  await issuer?.close();
});

/** Resolve with the disconnect reason, bounded. */
function disconnected(socket: ClientSocket, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const onDisconnect = (reason: string) => {
      clearTimeout(timer);
      resolve(reason);
    };
    const timer = setTimeout(() => {
      socket.off("disconnect", onDisconnect);
      reject(new Error(`no disconnect within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("disconnect", onDisconnect);
  });
}

interface Refused {
  ack: RefreshReply;
  /** Missing when no `oidc:revoked` arrived in time. */
  revoked?: OidcRevokedPayload;
  /** The disconnect reason; missing when the socket stayed connected. */
  reason?: string;
  /** What the client saw, in order. */
  order: string[];
}

/**
 * A refresh the guards should refuse: the ack, `oidc:revoked` and the
 * server's disconnect, in the order they arrived (each wait bounded, none
 * left pending).
 */
async function refusedRefresh(socket: ClientSocket, token: string): Promise<Refused> {
  const order: string[] = [];
  const onRevoked = () => order.push("oidc:revoked");
  const onDisconnect = () => order.push("disconnect");
  socket.once("oidc:revoked", onRevoked);
  socket.once("disconnect", onDisconnect);
  const [ack, revoked, reason] = await Promise.allSettled([
    // The ack callback, not a promise: a promise would record it a microtask late, after packets that arrived in the same read.
    new Promise<RefreshReply>((resolve, reject) => {
      socket.timeout(3_000).emit("oidc:refresh", { token }, (error: Error | null, reply: RefreshReply) => {
        order.push("ack");
        if (error) reject(error);
        else resolve(reply);
      });
    }),
    next<OidcRevokedPayload>(socket, "oidc:revoked", 3_000),
    disconnected(socket, 3_000),
  ]);
  socket.off("oidc:revoked", onRevoked);
  socket.off("disconnect", onDisconnect);
  if (ack.status === "rejected") throw ack.reason;
  return {
    ack: ack.value,
    revoked: revoked.status === "fulfilled" ? revoked.value : undefined,
    reason: reason.status === "fulfilled" ? reason.value : undefined,
    order,
  };
}

/** Assert the full refusal: code in the ack and in `oidc:revoked`, ack first, then the server's disconnect. */
function assertRefused(refused: Refused): void {
  assert.deepEqual(refused.ack, { ok: false, code: "ERR_FORBIDDEN" });
  assert.equal(refused.revoked?.code, "ERR_FORBIDDEN");
  assert.deepEqual(Object.keys(refused.revoked ?? {}).filter((key) => key !== "code" && key !== "reason"), [], "only code and a reason");
  assert.deepEqual(refused.order, ["ack", "oidc:revoked", "disconnect"]);
  assert.equal(refused.reason, "io server disconnect");
}

/** Log lines about refused refreshes written since `from`. */
function refreshRefusals(logs: readonly LogLine[], from: number): LogLine[] {
  return logs.slice(from).filter((line) => line.text.includes("refresh") && line.text.includes("ERR_FORBIDDEN"));
}

describe("the shared test app: admin namespace (OidcSocketAdminMiddleware) and chat (no guard)", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config });
  });
  after(async () => {
    await app?.close();
  });

  it("a refresh whose token lost the admin role: ack ERR_FORBIDDEN, then oidc:revoked ERR_FORBIDDEN, then disconnect; the staff-only event no longer answers", async () => {
    const socket = await connected(app.connect("admin", { auth: { token: await issuer.mint({ sub: "alice", roles: ["admin"] }) } }));
    assert.equal(await call(socket, "ping"), "pong");
    const from = app.logs.length;

    assertRefused(await refusedRefresh(socket, await issuer.mint({ sub: "alice", roles: [] })));

    await assert.rejects(call(socket, "ping", {}, 300), "the staff-only event no longer answers");
    const lines = refreshRefusals(app.logs, from);
    assert.equal(lines.length, 1, JSON.stringify(app.logs.slice(from)));
    assert.equal(lines[0]!.level, 4);
    assert.match(lines[0]!.text, /RequireRoles\(admin\) refused user "alice"/);
    assert.match(lines[0]!.text, /\/admin/);
  });

  it("a refresh that keeps the admin role is accepted and the namespace keeps working", async () => {
    const socket = await connected(app.connect("admin", { auth: { token: await issuer.mint({ sub: "bob", roles: ["admin"] }) } }));
    const reply = await call<RefreshReply>(socket, "oidc:refresh", { token: await issuer.mint({ sub: "bob", roles: ["admin", "ops"] }) });
    assert.equal(reply.ok, true);
    assert.equal(await call(socket, "ping"), "pong");
    assert.deepEqual((await call<{ roles: string[] }>(socket, "whoami")).roles, ["admin", "ops"]);
    assert.ok(socket.connected);
    socket.disconnect();
  });

  it("a namespace without guards: a refresh with fewer roles is still accepted", async () => {
    const socket = await connected(app.connect("chat", { auth: { token: await issuer.mint({ sub: "carol", roles: ["admin", "mod"] }) } }));
    // The admin namespace's guard ran at handshakes of this app: it must not leak into chat.
    const admin = await connected(app.connect("admin", { auth: { token: await issuer.mint({ sub: "carol", roles: ["admin"] }) } }));
    const reply = await call<RefreshReply>(socket, "oidc:refresh", { token: await issuer.mint({ sub: "carol", roles: [] }) });
    assert.equal(reply.ok, true);
    assert.deepEqual((await call<{ roles: string[] }>(socket, "whoami")).roles, []);
    assert.ok(socket.connected);
    socket.disconnect();
    admin.disconnect();
  });
});

// ---------------------------------------------------------------------------
// An app of our own: one namespace per guard, a chain of two, and a window
// onto every assignment of socket.data.auth.
// ---------------------------------------------------------------------------

/** Each call of the chain's first predicate: the roles of the context it saw. */
const firstGuardCalls: string[][] = [];
const chainFirst = requireClaims((context: OidcUserContext) => {
  firstGuardCalls.push([...context.roles]);
  return context.claims["team"] === "red";
}, "team is red");

class GuardedService extends BaseService {
  async ping(socket: ServerSocket, _data: unknown, callback?: Ack) {
    callback?.({ pong: ((socket.data as { auth: unknown }).auth as OidcUserContext).sub });
  }
}

interface OwnApp {
  url: string;
  logs: LogLine[];
  /** Per socket id: the roles of every context assigned to `socket.data.auth`, and the one it held when it disconnected. */
  authHistory: Map<string, { assigned: string[][]; atDisconnect?: string[] }>;
  connect(namespace: string, token: string): ClientSocket;
  close(): Promise<void>;
}

async function startGuardedApp(): Promise<OwnApp> {
  const base = await createServerBase(routesFolder("ioserver-oidc-refresh-guards-", {}));
  const { server } = base;
  server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(issuer.config) });
  server.addService({ name: "staff", service: GuardedService, middlewares: [OidcSocketMiddleware, OidcSocketAdminMiddleware] });
  server.addService({ name: "scoped", service: GuardedService, middlewares: [OidcSocketMiddleware, requireScopes("reports:read")] });
  server.addService({ name: "permitted", service: GuardedService, middlewares: [OidcSocketMiddleware, requirePermissions("reports:write")] });
  server.addService({
    name: "tenant",
    service: GuardedService,
    middlewares: [OidcSocketMiddleware, requireClaims((context) => context.claims["tenant"] === "acme", "tenant is acme")],
  });
  server.addService({ name: "chain", service: GuardedService, middlewares: [OidcSocketMiddleware, chainFirst, requireRoles("mod")] });
  await server.start();

  // Watch socket.data.auth on the staff namespace: every context assigned to it, and the one held at disconnect.
  const authHistory: OwnApp["authHistory"] = new Map();
  const io = (server.getApp() as unknown as { io: SocketIoServer }).io;
  io.of("/staff").on("connection", (socket: ServerSocket) => {
    const data = socket.data as Record<string, unknown>;
    let current = data["auth"] as OidcUserContext;
    const entry: { assigned: string[][]; atDisconnect?: string[] } = { assigned: [[...current.roles]] };
    authHistory.set(socket.id, entry);
    Object.defineProperty(data, "auth", {
      configurable: true,
      enumerable: true,
      get: () => current,
      set: (value: OidcUserContext) => {
        entry.assigned.push([...value.roles]);
        current = value;
      },
    });
    socket.on("disconnect", () => {
      entry.atDisconnect = [...current.roles];
    });
  });

  return {
    url: base.url,
    logs: base.logs,
    authHistory,
    connect: (namespace, token) => base.connect(namespace, { auth: { token } }),
    close: base.close,
  };
}

describe("every package guard is re-run on refresh", () => {
  let app: OwnApp;
  before(async () => {
    app = await startGuardedApp();
  });
  after(async () => {
    await app?.close();
  });

  it("a refused refresh never makes the refused context the socket's: socket.data.auth holds the old one until the disconnect", async () => {
    const socket = await connected(app.connect("staff", await issuer.mint({ sub: "dave", roles: ["admin"] })));
    const id = socket.id!;
    assertRefused(await refusedRefresh(socket, await issuer.mint({ sub: "dave", roles: ["viewer"] })));
    await waitFor(() => app.authHistory.get(id)?.atDisconnect !== undefined, 5_000);
    const history = app.authHistory.get(id)!;
    assert.deepEqual(history.assigned, [["admin"]], "the refused context was never assigned");
    assert.deepEqual(history.atDisconnect, ["admin"]);
  });

  it("requireScopes is re-checked: a refresh without the scope is refused and disconnected; with it, accepted", async () => {
    const kept = await connected(app.connect("scoped", await issuer.mint({ sub: "erin", scope: "openid reports:read" })));
    assert.equal((await call<RefreshReply>(kept, "oidc:refresh", { token: await issuer.mint({ sub: "erin", scope: "reports:read" }) })).ok, true);
    assert.deepEqual(await call(kept, "ping"), { pong: "erin" });

    const socket = await connected(app.connect("scoped", await issuer.mint({ sub: "erin", scope: "openid reports:read" })));
    const from = app.logs.length;
    assertRefused(await refusedRefresh(socket, await issuer.mint({ sub: "erin", scope: "openid" })));
    assert.match(refreshRefusals(app.logs, from)[0]?.text ?? "", /RequireScopes\(reports:read\)/);
    kept.disconnect();
  });

  it("requirePermissions is re-checked: a refresh without the permission is refused and disconnected", async () => {
    const socket = await connected(app.connect("permitted", await issuer.mint({ sub: "frank", permissions: ["reports:write"] })));
    assert.deepEqual(await call(socket, "ping"), { pong: "frank" });
    const from = app.logs.length;
    assertRefused(await refusedRefresh(socket, await issuer.mint({ sub: "frank", permissions: ["reports:read"] })));
    assert.match(refreshRefusals(app.logs, from)[0]?.text ?? "", /RequirePermissions\(reports:write\)/);
  });

  it("requireClaims is re-checked: a refresh whose claims no longer satisfy the predicate is refused and disconnected", async () => {
    const socket = await connected(app.connect("tenant", await issuer.mint({ sub: "grace", tenant: "acme" })));
    const from = app.logs.length;
    assertRefused(await refusedRefresh(socket, await issuer.mint({ sub: "grace", tenant: "globex" })));
    assert.match(refreshRefusals(app.logs, from)[0]?.text ?? "", /RequireClaims\(tenant is acme\)/);
  });

  it("two guards in a chain: both re-run in order against the new context, once each however many handshakes ran; the first refusal wins", async () => {
    const token = (roles: string[], team: string) => issuer.mint({ sub: "heidi", roles, team });
    const sockets = [
      await connected(app.connect("chain", await token(["mod"], "red"))),
      await connected(app.connect("chain", await token(["mod"], "red"))),
      await connected(app.connect("chain", await token(["mod"], "red"))),
    ];
    const [accepted, secondFails, bothFail] = sockets as [ClientSocket, ClientSocket, ClientSocket];

    firstGuardCalls.length = 0;
    assert.equal((await call<RefreshReply>(accepted, "oidc:refresh", { token: await token(["mod", "new"], "red") })).ok, true);
    assert.deepEqual(firstGuardCalls, [["mod", "new"]], "the first guard ran once, with the new context");

    // The first guard passes, the second refuses: the second was re-run.
    let from = app.logs.length;
    assertRefused(await refusedRefresh(secondFails, await token([], "red")));
    let lines = refreshRefusals(app.logs, from);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!.text, /RequireRoles\(mod\)/);

    // Both refuse: the first guard's refusal is the one reported.
    from = app.logs.length;
    firstGuardCalls.length = 0;
    assertRefused(await refusedRefresh(bothFail, await token([], "blue")));
    lines = refreshRefusals(app.logs, from);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!.text, /RequireClaims\(team is red\)/);
    assert.doesNotMatch(lines[0]!.text, /RequireRoles/);
    assert.deepEqual(firstGuardCalls, [[]]);

    assert.deepEqual(await call(accepted, "ping"), { pong: "heidi" });
    accepted.disconnect();
  });

  it("ioserver-oidc/client: a refresh the guards refuse reaches onRefreshFailed as ERR_FORBIDDEN, then oidc:revoked and the disconnect", async () => {
    // A token that expires in 3 s, so the server sends oidc:expiring about a second before.
    const first = await issuer.mint({ sub: "ivan", roles: ["admin"], exp: Math.floor(Date.now() / 1000) + 3 });
    const demoted = await issuer.mint({ sub: "ivan", roles: [] });
    const tokens = [first, demoted];
    const events: string[] = [];
    let revoked: OidcRevokedPayload | undefined;
    let client: OidcClientSocket | undefined;
    try {
      client = connectWithOidc(`${app.url}/staff`, {
        getToken: () => tokens.shift() ?? demoted,
        transports: ["websocket"],
        reconnection: false,
        onRefreshed: () => events.push("refreshed"),
        onRefreshFailed: (code) => events.push(`failed ${code}`),
      });
      client.on("oidc:revoked", (payload) => {
        revoked = payload;
        events.push(`revoked ${payload.code}`);
      });
      client.on("disconnect", (reason) => events.push(`disconnect ${reason}`));
      await waitFor(() => client!.connected, 5_000);
      await waitFor(() => events.some((event) => event.startsWith("disconnect")), 10_000);
      await sleep(20);
      // onRefreshFailed runs once the ack's promise settles, which may be after packets read in the same chunk.
      assert.deepEqual([...events].sort(), ["disconnect io server disconnect", "failed ERR_FORBIDDEN", "revoked ERR_FORBIDDEN"]);
      assert.ok(events.indexOf("revoked ERR_FORBIDDEN") < events.indexOf("disconnect io server disconnect"), events.join(", "));
      // The client's types allow the code it receives.
      const expected: OidcRevokedPayload["code"] = "ERR_FORBIDDEN";
      assert.equal(revoked?.code, expected);
    } finally {
      client?.disconnect();
    }
  });
});
