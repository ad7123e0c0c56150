/**
 * The diagnostics channels through real traffic: a real IOServer, real
 * socket.io-client connections, key sets and discovery documents served on
 * 127.0.0.1, a real back-channel logout route. Every channel is subscribed
 * for the whole file; each test asserts the messages its traffic produced,
 * and the last one that no message ever carried a token or a `sub`.
 */
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { subscribe, tracingChannel, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import { Adapter, type BroadcastOptions } from "socket.io-adapter";
import {
  OIDC_CHANNELS,
  OidcSessionManager,
  verifyOidcToken,
  BACKCHANNEL_LOGOUT_EVENT,
  type OidcAuthMessage,
  type OidcAuthTraceContext,
  type OidcDiscoveryMessage,
  type OidcJwksMessage,
  type OidcLogoutMessage,
  type OidcRevocation,
  type OidcRevocationStore,
  type OidcRevocationMessage,
  type OidcSocketMessage,
} from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, httpGet, next, outcome, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { disconnectedWithin, startLogoutApp, type LogoutApp } from "../helpers/logoutApp.js";
import { sleep, waitFor } from "../helpers/wait.js";

// --- every channel, recorded for the whole file

const PLAIN = ["auth", "jwks", "discovery", "socket", "revocation", "logout", "backend"] as const;
type Plain = (typeof PLAIN)[number];

const heard: { [K in Plain]: unknown[] } = { auth: [], jwks: [], discovery: [], socket: [], revocation: [], logout: [], backend: [] };
/** Every message and trace context of the file, never cleared (for the last test). */
const allHeard: unknown[] = [];
const listeners = new Map<Plain, (message: unknown) => void>();
for (const name of PLAIN) {
  const listener = (message: unknown) => {
    heard[name].push(message);
    allHeard.push({ channel: name, message });
  };
  listeners.set(name, listener);
  subscribe(OIDC_CHANNELS[name], listener);
}

type TraceEvent = "start" | "end" | "asyncStart" | "asyncEnd" | "error";
const traced: Array<{ event: TraceEvent; context: OidcAuthTraceContext }> = [];
const tracing = tracingChannel<unknown, OidcAuthTraceContext>(OIDC_CHANNELS.authenticate);
const trace = (event: TraceEvent) => (context: OidcAuthTraceContext) => {
  traced.push({ event, context });
  allHeard.push({ trace: event, context, error: context.error });
};
const traceHandlers = { start: trace("start"), end: trace("end"), asyncStart: trace("asyncStart"), asyncEnd: trace("asyncEnd"), error: trace("error") };
tracing.subscribe(traceHandlers);

after(() => {
  for (const [name, listener] of listeners) unsubscribe(OIDC_CHANNELS[name], listener);
  tracing.unsubscribe(traceHandlers);
});

const auths = () => heard.auth as OidcAuthMessage[];
const sockets = () => heard.socket as OidcSocketMessage[];
function clear(): void {
  for (const name of PLAIN) heard[name].length = 0;
  traced.length = 0;
}

// --- secrets: every token minted and every sub used, none of which may appear in a message

const secrets = new Set<string>();
const subject = (prefix = "sub"): string => {
  const sub = `${prefix}-${randomUUID()}`;
  secrets.add(sub);
  return sub;
};
const kept = (token: string): string => {
  secrets.add(token);
  return token;
};
const nowS = () => Math.floor(Date.now() / 1000);

function assertDuration(message: { durationMs: number }): void {
  assert.equal(typeof message.durationMs, "number");
  assert.ok(message.durationMs >= 0 && message.durationMs < 30_000, `durationMs ${message.durationMs}`);
}

describe("diagnostics channels", { timeout: 120_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  const mint = async (claims: Record<string, unknown> = {}) => kept(await issuer.mint(claims));

  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: { ...issuer.config, clockTolerance: 1 }, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });

  describe("auth: HTTP", () => {
    it("an accepted request: transport http, the issuer, success, a duration, and how the token was verified", async () => {
      const token = await mint({ sub: subject() });
      clear();
      assert.equal((await httpGet(app, token)).status, 200);
      assert.equal(auths().length, 1);
      const [message] = auths();
      assert.deepEqual({ ...message, durationMs: 0 }, { transport: "http", issuer: issuer.issuer, outcome: "success", durationMs: 0, cache: "miss", path: "fast" });
      assertDuration(message!);
      // Kept at its second verification, a hit from the third on.
      assert.equal((await httpGet(app, token)).status, 200);
      assert.equal((await httpGet(app, token)).status, 200);
      assert.deepEqual(
        auths().map((each) => [each.cache, each.path]),
        [
          ["miss", "fast"],
          ["miss", "fast"],
          ["hit", "cache"],
        ],
      );
    });

    it("refusals carry the code; the issuer only when the token names a configured one", async () => {
      const expired = await mint({ sub: subject(), exp: nowS() - 120, iat: nowS() - 300 });
      const foreign = await mint({ sub: subject(), iss: "https://unknown-issuer.example" });
      // The last member: how far verification got (every refusal past the signature check is jose's decision).
      const cases: Array<[string | undefined, string, string | undefined, string | undefined]> = [
        [undefined, "ERR_AUTH_TOKEN_REQUIRED", undefined, undefined],
        [expired, "ERR_AUTH_TOKEN_INVALID", issuer.issuer, "jose"],
        [foreign, "ERR_AUTH_TOKEN_INVALID", undefined, undefined],
        [kept("not.a.token"), "ERR_AUTH_TOKEN_INVALID", undefined, undefined],
      ];
      for (const [token, code, expectedIssuer, path] of cases) {
        clear();
        assert.equal((await httpGet(app, token)).code, code);
        assert.equal(auths().length, 1, code);
        const [message] = auths();
        assert.equal(message!.transport, "http");
        assert.equal(message!.outcome, code);
        assert.equal(message!.issuer, expectedIssuer, code);
        assert.equal(message!.path, path, code);
        assert.equal(message!.cache, path === undefined ? undefined : "miss", code);
        assertDuration(message!);
      }
    });
  });

  describe("auth and socket: handshake, refresh, expiry", () => {
    it("a handshake: auth (transport handshake) and socket connected with its id, namespace and issuer", async () => {
      const token = await mint({ sub: subject() });
      clear();
      const socket = await connectedTo(app, "chat", token);
      await waitFor(() => sockets().some((m) => m.event === "connected"));
      assert.deepEqual(auths().map(({ transport, issuer: iss, outcome: result }) => ({ transport, iss, result })), [{ transport: "handshake", iss: issuer.issuer, result: "success" }]);
      assert.deepEqual(sockets(), [{ event: "connected", socketId: socket.id, namespace: "/chat", issuer: issuer.issuer, recovered: false }]);
      socket.disconnect();
    });

    it("a refused handshake: auth with the code, no socket message", async () => {
      clear();
      const result = await outcome(app.connect("chat", { auth: { token: kept(await issuer.mint({ sub: subject(), aud: "someone-else" })) } }));
      assert.equal(result.connected, false);
      assert.deepEqual(auths().map(({ transport, outcome: code, issuer: iss }) => ({ transport, code, iss })), [{ transport: "handshake", code: "ERR_AUTH_TOKEN_INVALID", iss: issuer.issuer }]);
      assert.deepEqual(sockets(), []);
    });

    it("refreshes: refreshed, and refresh-refused with the code (auth says what the token itself was)", async () => {
      const sub = subject();
      const socket = await connectedTo(app, "chat", await mint({ sub }));
      clear();
      assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await mint({ sub }) })).ok, true);
      assert.deepEqual(auths().map((m) => [m.transport, m.outcome, m.issuer]), [["refresh", "success", issuer.issuer]]);
      assert.deepEqual(sockets(), [{ event: "refreshed", socketId: socket.id, namespace: "/chat", issuer: issuer.issuer }]);

      clear();
      assert.deepEqual(await call(socket, "oidc:refresh", { token: kept("garbage") }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
      assert.deepEqual(auths().map((m) => [m.transport, m.outcome, m.issuer]), [["refresh", "ERR_AUTH_TOKEN_INVALID", undefined]]);
      assert.deepEqual(sockets(), [{ event: "refresh-refused", socketId: socket.id, namespace: "/chat", issuer: issuer.issuer, code: "ERR_AUTH_TOKEN_INVALID" }]);

      clear();
      assert.deepEqual(await call(socket, "oidc:refresh", { token: await mint({ sub: subject() }) }), { ok: false, code: "ERR_AUTH_SUBJECT_MISMATCH" });
      assert.deepEqual(auths().map((m) => [m.transport, m.outcome]), [["refresh", "success"]], "the other user's token itself is valid");
      assert.deepEqual(sockets().map((m) => [m.event, "code" in m ? m.code : undefined]), [["refresh-refused", "ERR_AUTH_SUBJECT_MISMATCH"]]);
      socket.disconnect();
    });

    it("a refresh the namespace's guards refuse: refresh-refused, then revoked (kind guards)", async () => {
      const sub = subject();
      const socket = await connectedTo(app, "admin", await mint({ sub, roles: ["admin"] }));
      const id = socket.id;
      clear();
      const revoked = next(socket, "oidc:revoked");
      assert.deepEqual(await call(socket, "oidc:refresh", { token: await mint({ sub, roles: ["user"] }) }), { ok: false, code: "ERR_FORBIDDEN" });
      await revoked;
      const base = { socketId: id, namespace: "/admin", issuer: issuer.issuer };
      assert.deepEqual(sockets(), [
        { event: "refresh-refused", ...base, code: "ERR_FORBIDDEN" },
        { event: "revoked", ...base, code: "ERR_FORBIDDEN", kind: "guards" },
      ]);
    });

    it("expiry: expiring, then expired with its code", async () => {
      const socket = await connectedTo(app, "chat", await mint({ sub: subject(), exp: nowS() + 2 }));
      const id = socket.id;
      clear();
      assert.equal(await next<string>(socket, "disconnect", 10_000), "io server disconnect");
      const base = { socketId: id, namespace: "/chat", issuer: issuer.issuer };
      assert.deepEqual(sockets(), [
        { event: "expiring", ...base },
        { event: "expired", ...base, code: "ERR_AUTH_TOKEN_EXPIRED" },
      ]);
    });
  });

  describe("revocation and socket revoked", () => {
    it("disconnectUser, disconnectSubject, disconnectSessionId: one revocation message each (kind, counts, duration) and the sockets' revoked", async () => {
      const session = app.appHandle["session"] as OidcSessionManager;
      const cases: Array<["user" | "subject" | "session", (sub: string, sid: string) => Promise<number>]> = [
        ["user", (sub) => session.disconnectUser(sub, "by the test")],
        ["subject", (sub) => session.disconnectSubject(sub, { iss: issuer.issuer })],
        ["session", (_sub, sid) => session.disconnectSessionId(sid, undefined, issuer.issuer)],
      ];
      for (const [kind, revoke] of cases) {
        const sub = subject();
        const sid = subject("sid");
        const first = await connectedTo(app, "chat", await mint({ sub, sid }));
        const second = await connectedTo(app, "lenient", await mint({ sub, sid }));
        const ids = [first.id, second.id];
        clear();
        assert.equal(await revoke(sub, sid), 2);
        const [message, ...more] = heard.revocation as OidcRevocationMessage[];
        assert.deepEqual(more, []);
        assert.deepEqual({ ...message, durationMs: 0 }, { kind, local: 2, cluster: 2, durationMs: 0 });
        assertDuration(message!);
        const revoked = sockets().filter((m) => m.event === "revoked");
        assert.deepEqual(
          revoked.map((m) => ({ ...m })).sort((a, b) => a.namespace.localeCompare(b.namespace)),
          [
            { event: "revoked", socketId: ids[0], namespace: "/chat", issuer: issuer.issuer, code: "ERR_AUTH_REVOKED", kind },
            { event: "revoked", socketId: ids[1], namespace: "/lenient", issuer: issuer.issuer, code: "ERR_AUTH_REVOKED", kind },
          ],
        );
      }
    });

    it("disconnectSocket: the socket's revoked (kind socket), no revocation message (nothing is deny-listed)", async () => {
      const session = app.appHandle["session"] as OidcSessionManager;
      const socket = await connectedTo(app, "chat", await mint({ sub: subject() }));
      const id = socket.id!;
      clear();
      assert.equal(await session.disconnectSocket(id, "bye"), true);
      assert.deepEqual(sockets(), [{ event: "revoked", socketId: id, namespace: "/chat", issuer: issuer.issuer, code: "ERR_AUTH_REVOKED", kind: "socket" }]);
      assert.deepEqual(heard.revocation, []);
    });
  });

  describe("revocation: other nodes that do not answer", () => {
    /** An adapter whose cluster-wide lookups fail, as when the other nodes cannot be reached; this node's own work is untouched. */
    class UnreachableCluster extends Adapter {
      override fetchSockets(options: BroadcastOptions): Promise<unknown[]> {
        return options.flags?.local === true ? super.fetchSockets(options) : Promise.reject(new Error("the other nodes did not answer"));
      }
    }
    let partial: TestApp;
    before(async () => {
      partial = await startApp({ config: issuer.config, managers: { session: OidcSessionManager }, adapter: UnreachableCluster });
    });
    after(async () => {
      await partial?.close();
    });

    it("cluster is undefined when some nodes could not be counted; local still counts this node's sockets", async () => {
      const sub = subject();
      const socket = await connectedTo(partial, "chat", await mint({ sub }));
      const id = socket.id;
      clear();
      assert.equal(await (partial.appHandle["session"] as OidcSessionManager).disconnectUser(sub), 1);
      assert.deepEqual((heard.revocation as OidcRevocationMessage[]).map(({ durationMs: _, ...rest }) => rest), [{ kind: "user", local: 1, cluster: undefined }]);
      assert.deepEqual(sockets().map((m) => [m.event, m.socketId, "kind" in m ? m.kind : undefined]), [["revoked", id, "user"]]);
    });
  });

  describe("revocation heard from another node", () => {
    /** A revocation store two apps of this process share, telling each what the other adds (as Redis would). */
    class SharedStore implements OidcRevocationStore {
      private readonly entries: OidcRevocation[] = [];
      private readonly listeners = new Set<{ added(entry: OidcRevocation): void; resync(): void }>();
      add(entry: OidcRevocation): void {
        this.entries.push(entry);
        for (const listener of this.listeners) listener.added(entry);
      }
      list(): OidcRevocation[] {
        return [...this.entries];
      }
      subscribe(listener: { added(entry: OidcRevocation): void; resync(): void }): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      }
    }
    let here: TestApp;
    let there: TestApp;
    before(async () => {
      const store = new SharedStore();
      here = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ revocationStore: store }) } });
      there = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ revocationStore: store }) } });
    });
    after(async () => {
      await here?.close();
      await there?.close();
    });

    it("the revoking node reports the revocation; the node that ends the socket reports it revoked (kind deny-list)", async () => {
      const sub = subject();
      const socket = await connectedTo(there, "chat", await mint({ sub }));
      const id = socket.id;
      clear();
      const gone = next(socket, "disconnect");
      await (here.appHandle["session"] as OidcSessionManager).disconnectUser(sub);
      await gone;
      assert.deepEqual((heard.revocation as OidcRevocationMessage[]).map((m) => [m.kind, m.local]), [["user", 0]], "nothing of the revoking node's own");
      assert.deepEqual(sockets(), [{ event: "revoked", socketId: id, namespace: "/chat", issuer: issuer.issuer, code: "ERR_AUTH_REVOKED", kind: "deny-list" }]);
    });
  });

  describe("auth: verifyOidcToken", () => {
    it("transport verify, success and refusal", async () => {
      clear();
      await verifyOidcToken(await mint({ sub: subject() }), issuer.config);
      await assert.rejects(verifyOidcToken(await mint({ sub: subject(), aud: "nobody" }), issuer.config));
      assert.deepEqual(auths().map((m) => [m.transport, m.outcome, m.issuer]), [
        ["verify", "success", issuer.issuer],
        ["verify", "ERR_AUTH_TOKEN_INVALID", issuer.issuer],
      ]);
    });
  });

  describe("the authenticate tracing channel", () => {
    const als = new AsyncLocalStorage<OidcAuthTraceContext>();
    const storesSeen: Array<OidcAuthTraceContext | undefined> = [];
    let users: TestApp;

    before(async () => {
      tracing.start.bindStore(als, (context) => context);
      class Users {
        constructor(_app: AppHandle) {}
        async findOrCreate(sub: string) {
          storesSeen.push(als.getStore());
          await sleep(5);
          return { id: `local-${randomUUID()}`, isDisabled: sub.startsWith("disabled-") };
        }
      }
      users = await startApp({ config: issuer.config, managers: { users: Users } });
    });
    after(async () => {
      tracing.start.unbindStore(als);
      await users?.close();
    });

    it("a decision at once (a cached token): start and end on the same context, no promise events", async () => {
      const token = await mint({ sub: subject() });
      assert.equal((await httpGet(app, token)).status, 200);
      clear();
      assert.equal((await httpGet(app, token)).status, 200);
      assert.deepEqual(traced.map((t) => t.event), ["start", "end"]);
      assert.equal(traced[0]!.context, traced[1]!.context);
      assert.deepEqual({ ...traced[1]!.context }, { transport: "http", outcome: "success", issuer: issuer.issuer });
    });

    it("a refusal at once: start, error, end; the error is an OidcAuthError with the code and the client message only", async () => {
      clear();
      assert.equal((await httpGet(app, undefined)).status, 401);
      assert.deepEqual(traced.map((t) => t.event), ["start", "error", "end"]);
      const { error } = traced[1]!.context;
      assert.equal(error?.code, "ERR_AUTH_TOKEN_REQUIRED");
      assert.equal(error?.reason, error?.message, "no server-side reason");
      assert.equal(error?.cause, undefined);
    });

    it("an authentication that waits (a users manager): start, end, asyncStart, asyncEnd; a bound store reaches the users manager", async () => {
      clear();
      storesSeen.length = 0;
      assert.equal((await httpGet(users, await mint({ sub: subject() }))).status, 200);
      assert.deepEqual(traced.map((t) => t.event), ["start", "end", "asyncStart", "asyncEnd"]);
      const context = traced[0]!.context;
      assert.ok(traced.every((t) => t.context === context), "one context object for the whole trace");
      assert.deepEqual({ ...context }, { transport: "http", outcome: "success", issuer: issuer.issuer });
      assert.deepEqual(storesSeen, [context], "findOrCreate ran in the trace's store");
    });

    it("a refusal that waits (a disabled user): start, end, error, asyncStart, asyncEnd", async () => {
      clear();
      assert.equal((await httpGet(users, await mint({ sub: subject("disabled") }))).code, "ERR_USER_DISABLED");
      assert.deepEqual(traced.map((t) => t.event), ["start", "end", "error", "asyncStart", "asyncEnd"]);
      const { context } = traced[2]!;
      assert.equal(context.outcome, "ERR_USER_DISABLED");
      assert.equal(context.error?.code, "ERR_USER_DISABLED");
      assert.equal(context.error?.reason, context.error?.message);
      assert.deepEqual(auths().map((m) => [m.transport, m.outcome, m.issuer]), [["http", "ERR_USER_DISABLED", issuer.issuer]]);
    });
  });

  describe("jwks: fetches, an outage and its end", () => {
    const ISSUER = "https://op.diagnostics.test";
    const AUDIENCE = "diagnostics-app";
    let key: SigningKey;
    let jwks: JwksServer;

    before(async () => {
      key = await makeKey("RS256");
      jwks = await startJwksServer([key.jwk]);
    });
    after(async () => {
      await jwks?.close();
    });

    const token = async (): Promise<string> => kept(await sign(key, { iss: ISSUER, aud: AUDIENCE, sub: subject(), iat: nowS(), exp: nowS() + 600 }));
    const jwksMessages = () => heard.jwks as OidcJwksMessage[];

    it("fresh, stale while failing (status, then timeout with the circuit open), fresh again", async () => {
      const config = { issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri, jwksCacheMaxAge: 300, jwksTimeout: 300 };
      const expect = (fields: Partial<OidcJwksMessage>) => {
        assert.equal(jwksMessages().length, 1, JSON.stringify(jwksMessages()));
        const [message] = jwksMessages();
        assert.deepEqual({ ...message, durationMs: 0 }, { issuer: ISSUER, jwksUri: jwks.jwksUri, durationMs: 0, ...fields });
        assertDuration(message!);
      };

      clear();
      await verifyOidcToken(await token(), config);
      expect({ outcome: "success", failure: undefined, keys: 1, before: "cold", after: "fresh", circuit: "closed", failures: 0 });

      await sleep(350); // past the max age
      jwks.mode = "500";
      clear();
      await verifyOidcToken(await token(), config); // the stale keys still verify
      expect({ outcome: "failure", failure: "status", keys: 1, before: "fresh", after: "stale", circuit: "closed", failures: 1 });

      await sleep(1_100); // the first back-off
      jwks.mode = "hang";
      clear();
      await verifyOidcToken(await token(), config);
      expect({ outcome: "failure", failure: "timeout", keys: 1, before: "stale", after: "stale", circuit: "open", failures: 2 });

      await sleep(2_100); // the second back-off
      jwks.mode = "ok";
      clear();
      await verifyOidcToken(await token(), config);
      expect({ outcome: "success", failure: undefined, keys: 1, before: "stale", after: "fresh", circuit: "closed", failures: 0 });
    });

    it("a provider that cannot be reached: failure (network), cold to unavailable; the token is refused ERR_AUTH_UNAVAILABLE", async () => {
      const gone = await startJwksServer([key.jwk]);
      await gone.close();
      clear();
      await assert.rejects(verifyOidcToken(await token(), { issuer: ISSUER, audience: AUDIENCE, jwksUri: gone.jwksUri }), { code: "ERR_AUTH_UNAVAILABLE" });
      assert.deepEqual(
        jwksMessages().map(({ durationMs: _, ...rest }) => rest),
        [{ issuer: ISSUER, jwksUri: gone.jwksUri, outcome: "failure", failure: "network", keys: 0, before: "cold", after: "unavailable", circuit: "closed", failures: 1 }],
      );
      assert.deepEqual(auths().map((m) => [m.transport, m.outcome, m.issuer]), [["verify", "ERR_AUTH_UNAVAILABLE", ISSUER]]);
    });
  });

  describe("discovery", () => {
    it("success: the issuer and the discovered jwks_uri, then the key set's fetch names the issuer", async () => {
      const discovered = await createTestIssuer();
      try {
        clear();
        await verifyOidcToken(kept(await discovered.mint({ sub: subject() })), { issuer: discovered.issuer, audience: discovered.appSlug });
        const [message, ...more] = heard.discovery as OidcDiscoveryMessage[];
        assert.deepEqual(more, []);
        assert.deepEqual({ ...message, durationMs: 0 }, { issuer: discovered.issuer, outcome: "success", durationMs: 0, jwksUri: discovered.jwksUri });
        assertDuration(message!);
        assert.deepEqual((heard.jwks as OidcJwksMessage[]).map((m) => [m.issuer, m.jwksUri, m.outcome]), [[discovered.issuer, discovered.jwksUri, "success"]]);
      } finally {
        await discovered.close();
      }
    });

    it("failure: no document", async () => {
      const empty = await startJwksServer([]); // answers 404 outside /jwks
      try {
        clear();
        const token = kept(await sign(await makeKey("RS256"), { iss: empty.url, aud: "x", sub: subject(), iat: nowS(), exp: nowS() + 60 }));
        await assert.rejects(verifyOidcToken(token, { issuer: empty.url, audience: "x" }), { code: "ERR_AUTH_UNAVAILABLE" });
        assert.deepEqual((heard.discovery as OidcDiscoveryMessage[]).map(({ durationMs: _, ...rest }) => rest), [{ issuer: empty.url, outcome: "failure", jwksUri: undefined }]);
        assert.deepEqual(heard.jwks, []);
      } finally {
        await empty.close();
      }
    });
  });

  describe("back-channel logout", () => {
    const ISSUER = "https://op.logout-diagnostics.test";
    const CLIENT = "logout-diagnostics";
    let key: SigningKey;
    let jwks: JwksServer;
    let logoutApp: LogoutApp;

    before(async () => {
      key = await makeKey("RS256");
      jwks = await startJwksServer([key.jwk]);
      logoutApp = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri } });
    });
    after(async () => {
      await logoutApp?.close();
      await jwks?.close();
    });

    const logoutToken = async (claims: Record<string, unknown>) =>
      kept(await sign(key, { iss: ISSUER, aud: CLIENT, iat: nowS(), exp: nowS() + 120, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...claims }, { header: { typ: "logout+jwt" } }));
    const logouts = () => (heard.logout as OidcLogoutMessage[]).map(({ durationMs, ...rest }) => {
      assertDuration({ durationMs });
      return rest;
    });

    it("success with the issuer and the sockets disconnected; replayed; invalid token; invalid request; wrong method", async () => {
      const sub = subject();
      const watched = await logoutApp.connect(kept(await sign(key, { iss: ISSUER, aud: CLIENT, sub, iat: nowS(), exp: nowS() + 600 })));
      const token = await logoutToken({ sub });
      clear();
      assert.equal((await logoutApp.logout(token)).status, 200);
      await disconnectedWithin(watched);
      assert.deepEqual(logouts(), [{ outcome: "success", status: 200, issuer: ISSUER, disconnected: 1 }]);
      assert.deepEqual((heard.revocation as OidcRevocationMessage[]).map((m) => [m.kind, m.local, m.cluster]), [["subject", 1, 1]]);
      assert.deepEqual(sockets().map((m) => [m.event, "kind" in m ? m.kind : undefined]), [["revoked", "subject"]]);

      const cases: Array<[() => Promise<{ status: number }>, Omit<OidcLogoutMessage, "durationMs">]> = [
        [() => logoutApp.logout(token), { outcome: "replayed", status: 400, issuer: ISSUER, disconnected: 0 }],
        [async () => logoutApp.logout(await logoutToken({ sub, aud: "someone-else" })), { outcome: "invalid-token", status: 400, issuer: undefined, disconnected: undefined }],
        [() => logoutApp.post("nothing=here", { "content-type": "application/x-www-form-urlencoded" }), { outcome: "invalid-request", status: 400, issuer: undefined, disconnected: undefined }],
        [
          async () => {
            const response = await fetch(`${logoutApp.url}/oidc/backchannel-logout`, { method: "PUT", signal: AbortSignal.timeout(8_000) });
            await response.arrayBuffer();
            return response;
          },
          { outcome: "method-not-allowed", status: 405, issuer: undefined, disconnected: undefined },
        ],
      ];
      for (const [send, expected] of cases) {
        clear();
        assert.equal((await send()).status, expected.status, expected.outcome);
        assert.deepEqual(logouts(), [expected]);
      }
    });
  });

  it("no message and no trace context ever carried a token or a sub", () => {
    assert.ok(secrets.size > 30, "the suite used many tokens and subs");
    const texts = allHeard.map((entry) => JSON.stringify(entry, (_key, value: unknown) => (value instanceof Error ? { ...value, message: value.message, stack: value.stack } : value)));
    assert.ok(texts.length > 50, `${texts.length} messages`);
    for (const text of texts) for (const secret of secrets) assert.ok(!text.includes(secret), `a message carried ${secret.slice(0, 12)}…: ${text.slice(0, 300)}`);
  });
});

