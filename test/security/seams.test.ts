/**
 * Where features meet: identity (issuer, subject) across recovery, refresh,
 * revocation and logout; only access tokens as access tokens; revocations
 * that hold on every way back in; what a client learns from a refusal.
 * Real issuers (keys, JWKS on 127.0.0.1), a real IOServer, real
 * socket.io-client connections.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { BaseService } from "ioserver";
import { OidcConfigManager, OidcSessionManager, OidcSocketMiddleware, oidcRoom, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import type { TestIssuer } from "../../src/testing/index.js";
import { startTwoIssuers, type TwoIssuers } from "../helpers/issuers.js";
import { bothTransports, call, connected, connectedTo, createServerBase, httpGet, next, outcome, routesFolder, startApp, type ServerBase, type TestApp } from "../helpers/app.js";
import { proof, proofKey } from "../helpers/dpop.js";
import { startLogoutApp, type LogoutApp } from "../helpers/logoutApp.js";
import type { OidcRevokedPayload } from "../../src/client/index.js";

let a: TestIssuer, b: TestIssuer, twoIssuers: OidcConfigInput, issuers: TwoIssuers;
before(async () => void ({ a, b, config: twoIssuers } = issuers = await startTwoIssuers()));
after(() => issuers.close());

const dropTransport = (socket: ClientSocket) => (socket.io as unknown as { engine: { close(): void } }).engine.close();

/** Put the socket in an app room, then cut its transport: the session stays on the server, for recovery. */
async function joinThenDrop(socket: ClientSocket, room: string): Promise<void> {
  const joined = next(socket, "chat:joined");
  await call(socket, "join", { room });
  await joined;
  const dropped = next(socket, "disconnect");
  dropTransport(socket);
  await dropped;
}

for (const [mode, recovery] of [
  ["the middlewares skipped", true],
  ["the middlewares run (skipMiddlewares: false)", "run-middlewares"],
] as const) {
  describe(`connection-state recovery is for the same (issuer, sub) only, ${mode}`, () => {
    let app: TestApp;
    before(async () => {
      app = await startApp({ config: twoIssuers, managers: { session: OidcSessionManager }, recovery });
    });
    after(async () => {
      await app.close();
    });

    it("a session of issuer A's sub is not restored to issuer B's token for the same sub (nor to another user's)", async () => {
      for (const [name, intruder] of [
        ["issuer B, same sub", () => b.mint({ sub: "same" })],
        ["issuer A, another sub", () => a.mint({ sub: "someone-else" })],
      ] as const) {
        const socket = await connectedTo(app, "chat", await a.mint({ sub: "same" }), { reconnection: false });
        const joined = next(socket, "chat:joined");
        await call(socket, "join", { room: `private-of-a-${name}` });
        await joined; // an event: the client now has a recovery offset
        const dropped = next(socket, "disconnect");
        dropTransport(socket);
        await dropped;
        // The same session id (pid) comes back, with someone else's valid token.
        socket.auth = { token: await intruder() };
        const outcome = new Promise<{ connected: boolean; code?: string; rooms?: string[] }>((resolve) => {
          socket.once("connect_error", (err: Error) => resolve({ connected: false, code: err.message }));
          socket.once("oidc:revoked", (payload: { code: string }) => resolve({ connected: false, code: payload.code }));
          socket.once("connect", () => {
            // Wait a moment for a revocation that may follow the connect; else ask for the rooms.
            call<{ rooms: string[] }>(socket, "rooms", {}, 2_000).then(
              (reply) => resolve({ connected: socket.connected, rooms: reply.rooms }),
              () => resolve({ connected: false }),
            );
          });
        });
        socket.connect();
        const result = await outcome;
        socket.disconnect();
        assert.equal(result.connected, false, `${name}: restored into ${JSON.stringify(result.rooms)}`);
      }
    });

    it("a subject revoked while away is not restored, by its own token either; issuer B's equal sub is untouched", async () => {
      const token = await a.mint({ sub: "away" });
      const socket = await connectedTo(app, "chat", token, { reconnection: false });
      const bystander = await connectedTo(app, "chat", await b.mint({ sub: "away" }));
      await joinThenDrop(socket, "while-away");
      const session = app.appHandle["session"] as OidcSessionManager;
      for (let i = 0; i < 200 && (await session.listBySubject("away", { iss: a.issuer })).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(await session.disconnectSubject("away", { iss: a.issuer, reason: "while away" }), 0);
      const refused = new Promise<string>((resolve) => {
        socket.once("connect_error", (err: Error) => resolve(err.message));
        socket.once("oidc:revoked", (payload: { code: string }) => resolve(payload.code));
      });
      socket.connect();
      assert.equal(await refused, "ERR_AUTH_REVOKED");
      socket.disconnect();
      assert.equal((await call<{ sub: string }>(bystander, "whoami")).sub, "away");
      bystander.disconnect();
    });
  });
}

describe("connection-state recovery with the middlewares run keeps a DPoP-bound session on its key", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: a.config, managers: { session: OidcSessionManager }, recovery: "run-middlewares" });
  });
  after(async () => {
    await app.close();
  });

  it("the same user's token bound to another key, with that key's valid proof, does not take the session back", async () => {
    const [first, second] = await Promise.all([proofKey(), proofKey()]);
    const htu = `${app.url}/socket.io/`;
    const token = await a.mint({ sub: "keyed", cnf: { jkt: first.jkt } });
    const socket = app.connect("chat", { auth: { token, dpop: await proof(first, { htu, token }) }, reconnection: false });
    const opened = await outcome(socket);
    assert.equal(opened.connected, true, opened.connected ? "" : opened.message);
    await joinThenDrop(socket, "bound-room");
    const other = await a.mint({ sub: "keyed", cnf: { jkt: second.jkt } });
    socket.auth = { token: other, dpop: await proof(second, { htu, token: other }) };
    socket.connect();
    const back = await outcome(socket);
    socket.disconnect();
    assert.equal(back.connected, false, "restored onto another key");
    assert.equal(back.connected ? "" : back.message, "ERR_AUTH_TOKEN_INVALID");
  });
});

describe("only access tokens are access tokens, on every way in", () => {
  const nowS = () => Math.floor(Date.now() / 1000);
  const LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";
  let app: TestApp;
  before(async () => {
    // Issuer A follows RFC 9068 strictly; issuer B is lenient (typ absent, JWT or at+jwt).
    const entry = (issuer: TestIssuer, strict: boolean) => ({ issuer: issuer.issuer, audience: "test-app", jwksUri: issuer.config.jwksUri as string, strict });
    app = await startApp({ config: { issuers: [entry(a, true), entry(b, false)], refreshLimit: 20 }, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  const rfc9068 = () => ({ client_id: "c", jti: crypto.randomUUID(), iat: nowS() });

  it("in-band refresh: a logout token, an ID token and a token of another type are refused, the connection keeps its token", async () => {
    const socket = await connectedTo(app, "chat", await b.mint({ sub: "tt" }));
    const others = [
      await b.mint({ sub: "tt", jti: crypto.randomUUID(), iat: nowS(), events: { [LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } }),
      await b.mint({ sub: "tt", jti: crypto.randomUUID(), iat: nowS(), events: { [LOGOUT_EVENT]: {} } }),
      await b.mint({ sub: "tt", nonce: "n", auth_time: nowS() }),
      await b.mint({ sub: "tt", at_hash: "77QmUPtjPfzWtF2AnpK9RQ" }),
      await b.mint({ sub: "tt" }, { header: { typ: "refresh+jwt" } }),
    ];
    for (const token of others) assert.deepEqual(await call(socket, "oidc:refresh", { token }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await b.mint({ sub: "tt" }) })).ok, true);
    socket.disconnect();
  });

  it("a strict issuer: at+jwt in any spelling is accepted on HTTP, the handshake and a refresh; JWT and no typ are refused; the lenient issuer is unaffected", async () => {
    for (const typ of ["at+jwt", "AT+JWT", "application/at+jwt"]) {
      const token = await a.mint({ sub: "strict", ...rfc9068() }, { header: { typ } });
      const { http, socket } = await bothTransports(app, token);
      assert.deepEqual({ typ, http, socket }, { typ, http: 200, socket: "ok" });
    }
    for (const typ of ["JWT", undefined]) {
      const token = await a.mint({ sub: "strict", ...rfc9068() }, { header: { typ: typ as string } });
      const { http, code, socket } = await bothTransports(app, token);
      assert.deepEqual({ typ, http, code, socket }, { typ, http: 401, code: "ERR_AUTH_TOKEN_INVALID", socket: "ERR_AUTH_TOKEN_INVALID" });
    }
    const live = await connectedTo(app, "chat", await a.mint({ sub: "strict", ...rfc9068() }, { header: { typ: "at+jwt" } }));
    assert.deepEqual(await call(live, "oidc:refresh", { token: await a.mint({ sub: "strict", ...rfc9068() }) }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    assert.equal((await call<{ ok: boolean }>(live, "oidc:refresh", { token: await a.mint({ sub: "strict", ...rfc9068() }, { header: { typ: "application/at+jwt" } }) })).ok, true);
    live.disconnect();
    const lenient = await b.mint({ sub: "lenient" });
    const { http } = await bothTransports(app, lenient);
    assert.equal(http, 200);
  });
});

describe("a refusal tells the client a code, never why nor the token", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...a.config, realm: "api" }, managers: { session: OidcSessionManager }, recovery: true });
  });
  after(async () => {
    await app.close();
  });

  /** No token text, no claim value, no reason: only what the docs promise. */
  const assertSilent = (text: string, secrets: string[]) => {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${JSON.stringify(secret.slice(0, 40))} leaked in ${text}`);
    assert.doesNotMatch(text, /expired|aud|kid|signature|iss |sub |guard|requires/i);
  };

  it("HTTP: the body is { statusCode, error, code, message } and the challenge is RFC 6750's, for each kind of refusal", async () => {
    const expired = await a.mint({ sub: "late", exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 900 });
    const wrongAud = await a.mint({ sub: "elsewhere", aud: "another-api" });
    const member = await a.mint({ sub: "member-1", roles: ["member"] });
    const cases: Array<[string, string | undefined, string, number, string, string]> = [
      ["no token", undefined, "/api/me", 401, "ERR_AUTH_TOKEN_REQUIRED", 'Bearer realm="api"'],
      ["expired", expired, "/api/me", 401, "ERR_AUTH_TOKEN_INVALID", 'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"'],
      ["another audience", wrongAud, "/api/me", 401, "ERR_AUTH_TOKEN_INVALID", 'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"'],
      ["not an admin", member, "/admin/stats", 403, "ERR_FORBIDDEN", 'Bearer realm="api", error="insufficient_scope", error_description="Access is forbidden"'],
    ];
    for (const [name, token, path, status, code, challenge] of cases) {
      const response = await fetch(`${app.url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(8_000) });
      const text = await response.text();
      const body = JSON.parse(text) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ["code", "error", "message", "statusCode"], name);
      assert.deepEqual([response.status, body["code"], body["statusCode"], response.headers.get("www-authenticate")], [status, code, status, challenge], name);
      assertSilent(text + (response.headers.get("www-authenticate") ?? ""), token === undefined ? [] : [token, token.split(".")[1]!]);
    }
  });

  it("Socket.IO: connect_error data is { code, message }; a refused refresh acks { ok: false, code }", async () => {
    const bad = await a.mint({ sub: "s", aud: "another-api" });
    const refused = await new Promise<{ message: string; data: unknown }>((resolve) => {
      const client = app.connect("chat", { auth: { token: bad } });
      client.once("connect_error", (err: Error & { data?: unknown }) => resolve({ message: err.message, data: err.data }));
    });
    assert.deepEqual(refused, { message: "ERR_AUTH_TOKEN_INVALID", data: { code: "ERR_AUTH_TOKEN_INVALID", message: "The access token is invalid" } });
    const socket = await connectedTo(app, "chat", await a.mint({ sub: "s" }));
    const ack = await call(socket, "oidc:refresh", { token: bad });
    assert.deepEqual(ack, { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    socket.disconnect();
  });

  it("a socket refused once restored by recovery gets oidc:revoked with the refusal's code only, a code the client's types name", async () => {
    const socket = await connectedTo(app, "chat", await a.mint({ sub: "back" }), { reconnection: false });
    await joinThenDrop(socket, "r");
    const bad = await a.mint({ sub: "back", aud: "another-api" });
    socket.auth = { token: bad };
    const revoked = next<OidcRevokedPayload>(socket, "oidc:revoked", 8_000);
    socket.connect();
    const payload = await revoked;
    socket.disconnect();
    const expected: OidcRevokedPayload = { code: "ERR_AUTH_TOKEN_INVALID" };
    assert.deepEqual(payload, expected);
  });
});

for (const [mode, managers] of [
  ["without a session tracker", {}],
  ["with OidcSessionManager", { session: OidcSessionManager }],
] as const) {
  describe(`a back-channel logout covers the tokens issued up to the logout, not those issued after it, ${mode}`, () => {
    const nowS = () => Math.floor(Date.now() / 1000);
    let app: LogoutApp;
    before(async () => {
      app = await startLogoutApp({ config: twoIssuers, managers });
    });
    after(async () => {
      await app.close();
    });
    const logoutToken = (issuer: TestIssuer, claims: Record<string, unknown>) =>
      issuer.mint({ jti: crypto.randomUUID(), events: { "http://schemas.openid.net/event/backchannel-logout": {} }, ...claims }, { header: { typ: "logout+jwt" } });
    const opens = async (token: string) => {
      try {
        (await app.connect(token)).socket.disconnect();
        return "ok";
      } catch (error) {
        return (error as Error).message;
      }
    };

    for (const [what, claims] of [
      ["sub only", { sub: "ola" }],
      ["sid and sub (the sid-less tokens)", { sub: "ola", sid: "op-ola" }],
    ] as const) {
      it(`${what}: a logout delivered late refuses the tokens issued before it, accepts a sign-in after it, and leaves issuer B's equal sub alone`, async () => {
        const sub = `${claims.sub}-${what.length}`;
        const at = nowS() - 60; // the user logged out at the provider a minute ago; the logout arrives now
        const before = await a.mint({ sub, iat: at - 30 });
        const after = await a.mint({ sub, iat: at + 30 }); // signed in again meanwhile
        const theirs = await b.mint({ sub, iat: at - 30 });
        const response = await app.logout(await logoutToken(a, { ...claims, sub, iat: at }));
        assert.equal(response.status, 200, response.text);
        assert.deepEqual([await opens(before), await opens(after), await opens(theirs)], ["handshake refused: ERR_AUTH_REVOKED", "ok", "ok"]);
      });
    }
  });
}

describe("opaque tokens (introspection) beside JWTs: identity, token kinds, revocation", () => {
  const nowS = () => Math.floor(Date.now() / 1000);
  /** What the introspection endpoint answers, by token. */
  const answers = new Map<string, Record<string, unknown>>();
  let endpoint: Server;
  let app: TestApp;
  let config: OidcConfigInput;
  before(async () => {
    endpoint = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const token = new URLSearchParams(Buffer.concat(chunks).toString()).get("token") ?? "";
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answers.get(token) ?? { active: false }));
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/introspect`;
    // Issuer A issues JWTs; issuer B's tokens are opaque, checked at B's introspection endpoint.
    config = {
      issuers: [
        { issuer: a.issuer, audience: "test-app", jwksUri: a.config.jwksUri },
        { issuer: b.issuer, audience: "test-app", jwksUri: b.config.jwksUri, introspection: { endpoint: url, clientId: "rs", clientSecret: "rs-secret", cacheTtl: 0, negativeCacheTtl: 0 } },
      ],
    };
    app = await startApp({ config, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
    endpoint.closeAllConnections();
    await new Promise<void>((resolve) => endpoint.close(() => resolve()));
  });

  let n = 0;
  /** An opaque token of issuer B whose introspection answer is `claims` (active, for the API, unless overridden). */
  const opaque = (claims: Record<string, unknown>) => {
    const token = `opaque-${++n}-${crypto.randomUUID()}`;
    answers.set(token, { active: true, iss: b.issuer, aud: "test-app", iat: nowS() - 5, exp: nowS() + 300, token_type: "Bearer", ...claims });
    return token;
  };

  it("issuer B's opaque token and issuer A's JWT with the same sub are two users; a refresh cannot cross between them", async () => {
    const fromB = opaque({ sub: "shared" });
    const fromA = await a.mint({ sub: "shared" });
    assert.equal((await httpGet(app, fromB)).body["userId"], `${b.issuer}#shared`);
    assert.equal((await httpGet(app, fromA)).body["userId"], `${a.issuer}#shared`);
    const socket = await connectedTo(app, "chat", fromA);
    assert.deepEqual(await call(socket, "oidc:refresh", { token: opaque({ sub: "shared" }) }), { ok: false, code: "ERR_AUTH_SUBJECT_MISMATCH" });
    socket.disconnect();
  });

  it("an answer that is no Bearer access token is refused on HTTP, the handshake and verifyOidcToken: a refresh token's (no token_type, no aud), token_type refresh_token, any cnf", async () => {
    const kinds: Array<[string, string]> = [
      ["oidc-provider's refresh token answer", opaque({ sub: "r1", aud: undefined, token_type: undefined })],
      ["token_type refresh_token", opaque({ sub: "r2", token_type: "refresh_token" })],
      ["cnf.jwk", opaque({ sub: "r3", cnf: { jwk: { kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" } } })],
      ["cnf.jkt", opaque({ sub: "r4", cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } })],
      ["a logout token's events", opaque({ sub: "r5", events: { "http://schemas.openid.net/event/backchannel-logout": {} } })],
    ];
    for (const [name, token] of kinds) {
      const { http, code, socket } = await bothTransports(app, token);
      assert.deepEqual({ name, http, code, socket }, { name, http: 401, code: "ERR_AUTH_TOKEN_INVALID", socket: "ERR_AUTH_TOKEN_INVALID" });
      await assert.rejects(verifyOidcToken(token, config), (error: { code?: string }) => error.code === "ERR_AUTH_TOKEN_INVALID", name);
    }
  });

  it("verifyOidcToken: with several issuers the userId is <iss>#<sub>, for a JWT and for an opaque token", async () => {
    assert.equal((await verifyOidcToken(await a.mint({ sub: "v" }), config)).userId, `${a.issuer}#v`);
    assert.equal((await verifyOidcToken(opaque({ sub: "v" }), config)).userId, `${b.issuer}#v`);
    assert.equal((await verifyOidcToken(await a.mint({ sub: "v" }), a.config)).userId, "v", "one issuer: the sub");
  });

  it("a revocation of issuer A's subject leaves issuer B's opaque token for the same sub alone, and B's covers it", async () => {
    const fromB = opaque({ sub: "rev" });
    const fromA = await a.mint({ sub: "rev" });
    const session = app.appHandle["session"] as OidcSessionManager;
    await session.disconnectSubject("rev", { iss: a.issuer });
    assert.equal((await bothTransports(app, fromA)).code, "ERR_AUTH_REVOKED");
    assert.equal((await bothTransports(app, fromB)).http, 200);
    await session.disconnectSubject("rev", { iss: b.issuer });
    assert.equal((await bothTransports(app, fromB)).code, "ERR_AUTH_REVOKED");
  });
});

describe("a namespace without the middleware: its sockets have no oidc: room of their own", () => {
  let base: ServerBase;
  before(async () => {
    base = await createServerBase(routesFolder("ioserver-oidc-seams-", {}));
    /** A service that joins whatever room the client names (a common pattern). */
    class Rooms extends BaseService {
      async join(socket: { join(room: string): void; rooms: Set<string> }, data: { room: string }, callback?: (value: unknown) => void) {
        socket.join(data.room);
        callback?.([...socket.rooms]);
      }
    }
    base.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(a.config) });
    base.server.addManager({ name: "session", manager: OidcSessionManager });
    base.server.addService({ name: "chat", service: Rooms, middlewares: [OidcSocketMiddleware] });
    base.server.addService({ name: "public", service: Rooms });
    await base.server.start();
  });
  after(async () => {
    await base.close();
  });

  it("an unauthenticated socket that joins another user's room is taken out: it never hears that user's revocation nor counts in it", async () => {
    const early = await connected(base.connect("public")); // joins before any authenticated socket exists
    const room = oidcRoom.issuerSub(a.issuer, "victim");
    await call(early, "join", { room });
    const victim = await connected(base.connect("chat", { auth: { token: await a.mint({ sub: "victim" }) } }));
    const late = await connected(base.connect("public"));
    assert.ok(!(await call<string[]>(late, "join", { room })).includes(room), "taken out at once");
    const heard: unknown[] = [];
    for (const snoop of [early, late]) snoop.on("oidc:revoked", (payload: unknown) => heard.push(payload));
    const gone = next(victim, "oidc:revoked");
    const count = await (base.appHandle["session"] as OidcSessionManager).disconnectSubject("victim", { iss: a.issuer, reason: "a private reason" });
    await gone;
    assert.equal(count, 1, "only the victim's socket");
    // The snoopers are still connected, and heard nothing.
    assert.deepEqual(await call<string[]>(late, "join", { room: "harmless" }), [late.id, "harmless"]);
    assert.ok(early.connected && late.connected);
    assert.deepEqual(heard, []);
    assert.ok(base.logs.some((line) => line.level === 4 && /\/public .* was put in .*victim.*taken out/.test(line.text)), JSON.stringify(base.logs.slice(-3)));
  });
});
