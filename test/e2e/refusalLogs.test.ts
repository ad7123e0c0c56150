/**
 * The refusal log through real traffic: a real IOServer, real HTTP requests
 * and socket.io-client connections, a JWKS served on 127.0.0.1. A structured
 * logger captures the records the app's config names; without one the
 * refusals are text lines through `appHandle.log`.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { BaseController, BaseMiddleware, BaseService } from "ioserver";
import type { AppHandle } from "ioserver";
import Fastify, { type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction } from "fastify";
import type { Socket } from "socket.io";
import { OidcConfigManager, OidcHttpMiddleware, OidcSocketMiddleware, requireRoles } from "../../src/index.js";
import type { OidcConfigInput, OidcLogger } from "../../src/index.js";
import type { TestIssuer } from "../../src/testing/index.js";
import { call, connected, createServerBase, outcome, routesFolder, type LogLine, type ServerBase } from "../helpers/app.js";
import { useTestIssuer } from "../helpers/fixtures.js";
import { waitFor } from "../helpers/wait.js";

let issuer: TestIssuer;
useTestIssuer((created) => (issuer = created));

interface Entry {
  method: keyof OidcLogger;
  fields: Record<string, unknown>;
  message: string;
}

/** A pino-shaped logger that keeps what it is given. */
function capturingLogger(): OidcLogger & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (method: keyof OidcLogger) => (fields: object, message: string) => {
    entries.push({ method, fields: { ...(fields as Record<string, unknown>) }, message });
  };
  return { entries, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}

const routes = routesFolder("ioserver-oidc-refusal-logs-", {
  api: [{ method: "GET", url: "/me", handler: "me" }],
  staff: [{ method: "GET", url: "/panel", handler: "panel" }],
});

/** Ids the server gave refused requests and sockets, recorded before the package's middleware runs. */
const requestIds: string[] = [];
const socketIds: string[] = [];

/** Puts Fastify's request id in the `x-request-id` response header, and notes each socket's id: listed before the OIDC middleware. */
class RecordIds extends BaseMiddleware {
  handle(_appHandle: AppHandle) {
    return (target: unknown, second: unknown, third?: unknown): void => {
      if (third === undefined && typeof second === "function") {
        socketIds.push((target as Socket).id);
        return (second as () => void)();
      }
      const request = target as FastifyRequest;
      requestIds.push(request.id);
      (second as FastifyReply).header("x-request-id", request.id);
      (third as HookHandlerDoneFunction)();
    };
  }
}

class ApiController extends BaseController {
  async me(request: { userId?: string }, reply: { send(body: unknown): unknown }) {
    return reply.send({ userId: request.userId });
  }
  async panel(_request: unknown, reply: { send(body: unknown): unknown }) {
    return reply.send({ ok: true });
  }
}

class ChatService extends BaseService {
  async ping(_socket: unknown, _data: unknown, callback?: (value: unknown) => void) {
    callback?.("pong");
  }
}

/** An IOServer app trusting the test issuer with `extra` config; `/api/me`, `/staff/panel` (admins), `/chat`. */
async function startLogApp(extra: Partial<OidcConfigInput> = {}): Promise<ServerBase> {
  const base = await createServerBase(routes);
  const { server } = base;
  server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure({ ...issuer.config, ...extra }) });
  server.addController({ name: "api", controller: ApiController, middlewares: [RecordIds, OidcHttpMiddleware] });
  server.addController({ name: "staff", controller: ApiController, middlewares: [OidcHttpMiddleware, requireRoles("admin"), RecordIds] });
  server.addService({ name: "chat", service: ChatService, middlewares: [RecordIds, OidcSocketMiddleware] });
  await server.start();
  return base;
}

async function get(app: ServerBase, path: string, token?: string, localAddress?: string): Promise<{ status: number; requestId: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${app.url}${path}`,
      { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, localAddress, timeout: 8_000 },
      (response) => {
        response.resume();
        response.on("end", () => resolve({ status: response.statusCode ?? 0, requestId: response.headers["x-request-id"] as string | undefined }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** No token, nor any of its three parts, in anything logged. */
function assertNoToken(logged: unknown, tokens: readonly string[]): void {
  const text = JSON.stringify(logged);
  for (const token of tokens) {
    for (const part of [token, ...token.split(".")]) assert.ok(!text.includes(part), "a token (or part of one) reached the log");
  }
}

const refusals = (logger: { entries: Entry[] }) => logger.entries.filter((entry) => entry.message === "authentication refused");

describe("refusal logs with a structured logger", () => {
  const logger = capturingLogger();
  let app: ServerBase;
  const tokens: string[] = [];
  before(async () => {
    app = await startLogApp({ logger });
  });
  after(async () => {
    await app?.close();
  });

  it("an HTTP refusal carries Fastify's request id, the client address, the route, the issuer, the code and the reason", async () => {
    const token = await issuer.mint({ aud: "someone-else" });
    tokens.push(token);
    const from = logger.entries.length;
    const answer = await get(app, "/api/me", token);
    assert.equal(answer.status, 401);
    assert.ok(answer.requestId !== undefined && answer.requestId !== "");
    const records = refusals({ entries: logger.entries.slice(from) });
    assert.equal(records.length, 1, JSON.stringify(logger.entries.slice(from)));
    const [record] = records;
    assert.equal(record!.method, "warn");
    assert.deepEqual(Object.keys(record!.fields).sort(), ["address", "code", "component", "issuer", "reason", "requestId", "route", "transport"]);
    assert.equal(record!.fields.requestId, answer.requestId);
    assert.equal(record!.fields.address, "127.0.0.1");
    assert.equal(record!.fields.transport, "http");
    assert.equal(record!.fields.route, "GET /api/me");
    assert.equal(record!.fields.issuer, issuer.issuer);
    assert.equal(record!.fields.code, "ERR_AUTH_TOKEN_INVALID");
    assert.match(String(record!.fields.reason), /aud was "someone-else"/);
    assert.equal(record!.fields.component, "ioserver-oidc");
    assert.equal(app.logs.filter((line) => line.text.includes("ERR_AUTH_TOKEN_INVALID")).length, 0, "not logged twice");
  });

  it("a request without a token is logged at debug, without an issuer", async () => {
    const from = logger.entries.length;
    const answer = await get(app, "/api/me");
    assert.equal(answer.status, 401);
    const [record] = refusals({ entries: logger.entries.slice(from) });
    assert.equal(record?.method, "debug");
    assert.equal(record.fields.code, "ERR_AUTH_TOKEN_REQUIRED");
    assert.equal(record.fields.requestId, answer.requestId);
    assert.equal("issuer" in record.fields, false);
  });

  it("a guard's refusal names the guard and the verified issuer", async () => {
    const token = await issuer.mint({ sub: "pleb", roles: ["user"] });
    tokens.push(token);
    const from = logger.entries.length;
    const answer = await get(app, "/staff/panel", token);
    assert.equal(answer.status, 403);
    const [record] = refusals({ entries: logger.entries.slice(from) });
    assert.equal(record?.fields.code, "ERR_FORBIDDEN");
    assert.equal(record.fields.guard, "RequireRoles(admin)");
    assert.equal(record.fields.issuer, issuer.issuer);
    assert.equal(record.fields.route, "GET /staff/panel");
    assert.equal(record.fields.transport, "http");
  });

  it("a handshake refusal carries the socket id and the handshake's address", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.mint({ iat: now - 7_200, exp: now - 3_600 });
    tokens.push(token);
    const from = logger.entries.length;
    const idsBefore = socketIds.length;
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.equal(result.connected, false);
    assert.equal(socketIds.length, idsBefore + 1);
    const [record] = refusals({ entries: logger.entries.slice(from) });
    assert.equal(record?.fields.code, "ERR_AUTH_TOKEN_INVALID");
    assert.match(String(record.fields.reason), /expired/);
    assert.equal(record.method, "warn");
    assert.equal(record.fields.transport, "handshake");
    assert.equal(record.fields.requestId, socketIds[idsBefore]);
    assert.equal(record.fields.address, "127.0.0.1");
    assert.equal(record.fields.route, "/chat");
    assert.equal(record.fields.issuer, issuer.issuer);
  });

  it("a refused refresh carries the connected socket's id and the new token's issuer", async () => {
    const good = await issuer.mint({ sub: "alice" });
    const bad = await issuer.mint({ sub: "alice", aud: "another-app" });
    tokens.push(good, bad);
    const client = await connected(app.connect("chat", { auth: { token: good } }));
    const from = logger.entries.length;
    const reply = await call<{ ok: boolean; code?: string }>(client, "oidc:refresh", { token: bad });
    assert.deepEqual(reply, { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    const [record] = refusals({ entries: logger.entries.slice(from) });
    assert.equal(record?.fields.transport, "refresh");
    assert.equal(record.fields.requestId, client.id);
    assert.equal(record.fields.address, "127.0.0.1");
    assert.equal(record.fields.route, "/chat");
    assert.equal(record.fields.issuer, issuer.issuer);
    assert.equal(record.fields.code, "ERR_AUTH_TOKEN_INVALID");
    assert.equal(await call(client, "ping"), "pong", "the connection keeps its context");
  });

  it("a hostile token reaches the log only escaped and shortened, with no issuer it did not earn", async () => {
    const hostileKid = `evil\n[ioserver-oidc] forged line\u2028${"x".repeat(5_000)}`;
    const token = await issuer.mint({ iss: "https://evil.example\nforged" }, { kid: hostileKid });
    const known = await issuer.mint({}, { kid: hostileKid });
    tokens.push(token, known);
    const from = logger.entries.length;
    assert.equal((await get(app, "/api/me", token)).status, 401);
    assert.equal((await get(app, "/api/me", known)).status, 401);
    const records = refusals({ entries: logger.entries.slice(from) });
    assert.equal(records.length, 2);
    assert.equal("issuer" in records[0]!.fields, false, "an unknown iss is never a field");
    assert.equal(records[1]!.fields.issuer, issuer.issuer, "a configured issuer the token names is");
    for (const record of records) {
      for (const value of Object.values(record.fields)) {
        assert.equal(typeof value, "string");
        assert.ok((value as string).length <= 1_000, `a field of ${(value as string).length} characters`);
        assert.ok(!/[\n\r\u2028\u2029]/.test(value as string), `an unescaped line break in ${JSON.stringify(value)}`);
      }
    }
  });

  it("a logger that throws changes no decision: the refusal falls back to a text line", async () => {
    const throwing = { error: boom, warn: boom, info: boom, debug: boom };
    function boom(): never {
      throw new Error("logger down");
    }
    const other = await startLogApp({ logger: throwing });
    try {
      const token = await issuer.mint({ aud: "someone-else" });
      tokens.push(token);
      const answer = await get(other, "/api/me", token);
      assert.equal(answer.status, 401);
      const good = await issuer.mint({ sub: "bob" });
      tokens.push(good);
      assert.equal((await get(other, "/api/me", good)).status, 200);
      const line = other.logs.find((entry) => entry.text.includes("ERR_AUTH_TOKEN_INVALID"));
      assert.ok(line !== undefined, JSON.stringify(other.logs));
      assert.ok(line.text.includes(`requestId="${answer.requestId}"`), line.text);
      assertNoToken(other.logs, tokens);
    } finally {
      await other.close();
    }
  });

  it("the package's other messages go to the same logger, as text with the component field", () => {
    const trusting = logger.entries.find((entry) => entry.message.startsWith(`trusting issuer ${issuer.issuer}`));
    assert.ok(trusting !== undefined, JSON.stringify(logger.entries.slice(0, 3)));
    assert.equal(trusting.method, "info");
    assert.deepEqual(trusting.fields, { component: "ioserver-oidc" });
    assert.equal(app.logs.filter((line) => line.text.includes("trusting issuer")).length, 0);
  });

  it("no token reaches the structured log", () => {
    assert.ok(tokens.length > 0);
    assertNoToken(logger.entries, tokens);
    assertNoToken(app.logs, tokens);
  });
});

describe("refusal logs through Fastify's own logger (pino)", () => {
  it("each refusal is one JSON line with the fields; no token in any", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const fastify = Fastify({ logger: { level: "debug", stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } } });
    const app = await startLogApp({ logger: fastify.log });
    try {
      const token = await issuer.mint({ aud: "someone-else" });
      const answer = await get(app, "/api/me", token);
      assert.equal(answer.status, 401);
      const line = lines.find((entry) => entry.msg === "authentication refused");
      assert.ok(line !== undefined, JSON.stringify(lines));
      assert.equal(line.level, 40, "pino's warn");
      assert.equal(line.requestId, answer.requestId);
      assert.equal(line.address, "127.0.0.1");
      assert.equal(line.transport, "http");
      assert.equal(line.route, "GET /api/me");
      assert.equal(line.issuer, issuer.issuer);
      assert.equal(line.code, "ERR_AUTH_TOKEN_INVALID");
      assert.ok(lines.some((entry) => entry.component === "ioserver-oidc" && String(entry.msg).startsWith("trusting issuer")));
      assertNoToken(lines, [token]);
    } finally {
      await app.close();
      await fastify.close();
    }
  });
});

describe("refusal logs as text lines", () => {
  let app: ServerBase;
  before(async () => {
    app = await startLogApp();
  });
  after(async () => {
    await app?.close();
  });

  it("one line: where, code and reason, then the fields as quoted key=\"value\" pairs", async () => {
    const token = await issuer.mint({ aud: "someone-else" });
    const from = app.logs.length;
    const answer = await get(app, "/api/me", token);
    assert.equal(answer.status, 401);
    const lines = app.logs.slice(from).filter((line) => line.text.includes("ERR_AUTH_TOKEN_INVALID"));
    assert.equal(lines.length, 1, JSON.stringify(app.logs.slice(from)));
    const { level, text } = lines[0]!;
    assert.equal(level, 4);
    assert.ok(text.startsWith("[ioserver-oidc] HTTP GET /api/me: ERR_AUTH_TOKEN_INVALID: "), text);
    for (const pair of [`requestId="${answer.requestId}"`, 'address="127.0.0.1"', 'transport="http"', 'route="GET /api/me"', `issuer="${issuer.issuer}"`]) {
      assert.ok(text.includes(pair), `${pair} in ${text}`);
    }
    assertNoToken(app.logs, [token]);
  });

  it("a hostile kid is quoted, escaped and shortened on the line", async () => {
    const token = await issuer.mint({}, { kid: `evil\n[ioserver-oidc] forged${"y".repeat(3_000)}` });
    const from = app.logs.length;
    assert.equal((await get(app, "/api/me", token)).status, 401);
    const lines = app.logs.slice(from);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.ok(!lines[0]!.text.includes("\n"));
    assert.ok(lines[0]!.text.includes('kid "evil\\n[ioserver-oidc] forged'), lines[0]!.text);
    assert.ok(lines[0]!.text.length <= 2_000);
    assert.ok(!lines[0]!.text.includes("y".repeat(200)), "the kid is shortened");
    assertNoToken(app.logs, [token]);
  });

  it("a handshake refusal's line names the socket id and the address", async () => {
    const from = app.logs.length;
    const idsBefore = socketIds.length;
    const result = await outcome(app.connect("chat", { auth: {} }));
    assert.equal(result.connected, false);
    const line = app.logs.slice(from).find((entry) => entry.text.includes("ERR_AUTH_TOKEN_REQUIRED"));
    assert.ok(line !== undefined);
    const id = socketIds[idsBefore]!;
    assert.ok(line.text.startsWith(`[ioserver-oidc] socket /chat ${id}: ERR_AUTH_TOKEN_REQUIRED`), line.text);
    assert.ok(line.text.includes(`requestId="${id}" address="127.0.0.1" transport="handshake" route="/chat"`), line.text);
  });
});

describe("refusal log sampling", () => {
  const LIMIT = 10;
  // Long enough for the 200 requests below on a slow host (they take well under a second), short enough not to hold the suite.
  const WINDOW = 4_000;
  const logger = capturingLogger();
  let app: ServerBase;
  before(async () => {
    app = await startLogApp({ logger, logSampling: { limit: LIMIT, window: WINDOW } });
  });
  after(async () => {
    await app?.close();
  });

  it("a flood of 200 identical refusals from one address logs the first ten, then one line with the count", async () => {
    const token = await issuer.mint({ aud: "flooder" });
    const from = logger.entries.length;
    let done = 0;
    const worker = async () => {
      while (done < 200) {
        done++;
        assert.equal((await get(app, "/api/me", token)).status, 401);
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    const flood = () => logger.entries.slice(from).filter((entry) => entry.fields.code === "ERR_AUTH_TOKEN_INVALID");
    assert.equal(refusals({ entries: flood() }).length, LIMIT, "the first ten are logged");

    // Another address is another source: its refusal is logged at once.
    const other = await get(app, "/api/me", token, "127.0.0.2");
    assert.equal(other.status, 401);
    assert.ok(refusals({ entries: flood() }).some((entry) => entry.fields.address === "127.0.0.2"));

    // The count comes when the window ends (the app's sweep timer), bounded wait.
    await waitFor("the suppressed count", () => flood().some((entry) => entry.message === "authentication refusals suppressed"), WINDOW + 10_000);
    const lines = flood().filter((entry) => entry.fields.address === "127.0.0.1");
    assert.ok(lines.length <= LIMIT + 1, `${lines.length} lines for one source`);
    const summary = lines.find((entry) => entry.message === "authentication refusals suppressed")!;
    assert.equal(summary.fields.suppressed, 200 - LIMIT);
    assert.equal(summary.fields.window, WINDOW);
    assert.equal(summary.fields.transport, "http");
    assert.equal(summary.method, "warn");
    assertNoToken(logger.entries, [token]);
  });

  it("varying the token buys no more lines: one address is held to five times the limit over all its reasons", async () => {
    const strict = capturingLogger();
    const limited = await startLogApp({ logger: strict, logSampling: { limit: 2, window: 3_000 } });
    try {
      const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => issuer.mint({ aud: `varied-${i}` })));
      for (const token of tokens) assert.equal((await get(limited, "/api/me", token)).status, 401);
      const varied = () => strict.entries.filter((entry) => entry.fields.address === "127.0.0.1" && entry.fields.code !== "ERR_AUTH_TOKEN_REQUIRED");
      const logged = refusals({ entries: varied() });
      assert.equal(logged.length, 10, "2 × 5 lines for the address");
      assert.equal(new Set(logged.map((entry) => entry.fields.reason)).size, 10, "each a different reason");
      await waitFor("the address's count", () => varied().some((entry) => entry.message === "authentication refusals suppressed"), 15_000);
      const summary = varied().find((entry) => entry.message === "authentication refusals suppressed")!;
      assert.equal(summary.fields.suppressed, 20);
      assert.equal(summary.fields.code, "(any)");
      assertNoToken(strict.entries, tokens);
    } finally {
      await limited.close();
    }
  });

  it("sampling off: every refusal is logged", async () => {
    const plain: LogLine[] = [];
    const open = await startLogApp({ logSampling: false });
    try {
      const token = await issuer.mint({ aud: "flooder" });
      for (let i = 0; i < 30; i++) assert.equal((await get(open, "/api/me", token)).status, 401);
      plain.push(...open.logs.filter((line) => line.text.includes("ERR_AUTH_TOKEN_INVALID")));
      assert.equal(plain.length, 30);
    } finally {
      await open.close();
    }
  });
});
