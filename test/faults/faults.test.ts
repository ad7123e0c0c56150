/**
 * Faults: an identity provider that misbehaves on cue (slow, hanging, 500,
 * 503 + Retry-After, invalid JSON, empty key set, rotation, restart on the
 * same port) and app code that misbehaves (users manager, session tracker).
 * Every fault goes through `verifyOidcToken` AND a real IOServer (HTTP route
 * and Socket.IO handshake); every wait is bounded; the file closes everything
 * it opened and exits by itself.
 *
 * Each test's name states the observed behaviour (SECURITY.md's fault table).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import type { Socket as ClientSocket } from "socket.io-client";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { call, outcome, startApp, type AppOptions, type TestApp } from "../helpers/app.js";
import { allIdps, AUDIENCE, ISSUER, startFaultIdp, type FaultIdp } from "./idp.js";

// ---------------------------------------------------------------------------
// Bookkeeping: unhandled rejections, and everything this file opens.

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason);
};
process.on("unhandledRejection", onUnhandled);

const apps = new Set<TestApp>();
const closedApps = new Set<TestApp>();

async function openApp(options: AppOptions): Promise<TestApp> {
  const app = await startApp(options);
  const close = app.close.bind(app);
  let closing: Promise<void> | undefined;
  app.close = () => {
    closing ??= close().then(() => {
      closedApps.add(app);
    });
    return closing;
  };
  apps.add(app);
  return app;
}

const idps: FaultIdp[] = [];
async function idp(options: Parameters<typeof startFaultIdp>[0] = {}): Promise<FaultIdp> {
  const created = await startFaultIdp(options);
  idps.push(created);
  return created;
}

after(async () => {
  // Safety net only: every test closes what it opened (checked by the last test).
  for (const app of apps) await app.close();
  for (const each of allIdps) await each.close();
  process.off("unhandledRejection", onUnhandled);
});

// ---------------------------------------------------------------------------
// Probes: the same token through verifyOidcToken, HTTP and a Socket.IO handshake.

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function configOf(server: FaultIdp, extra: Partial<OidcConfigInput> = {}, variant?: string): OidcConfigInput {
  return { issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri(variant), ...extra };
}

interface Probe {
  /** "ok" or the error code. */
  code: string;
  ms: number;
}

async function viaVerify(token: string, config: OidcConfigInput): Promise<Probe & { error?: OidcAuthError }> {
  const started = Date.now();
  try {
    await verifyOidcToken(token, config);
    return { code: "ok", ms: Date.now() - started };
  } catch (error) {
    assert.ok(error instanceof OidcAuthError, `expected an OidcAuthError, got ${String(error)}`);
    return { code: error.code, ms: Date.now() - started, error };
  }
}

async function viaHttp(app: TestApp, token: string): Promise<Probe & { status: number; retryAfter: string | null }> {
  const started = Date.now();
  const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  const body = (await response.json()) as { code?: string; sub?: string };
  const ms = Date.now() - started;
  return { code: response.ok ? "ok" : String(body.code), status: response.status, retryAfter: response.headers.get("retry-after"), ms };
}

/** Handshake on `chat`; on success the socket is disconnected unless `keep`. */
async function viaSocket(app: TestApp, token: string, keep = false): Promise<Probe & { socket?: ClientSocket }> {
  const started = Date.now();
  const result = await outcome(app.connect("chat", { auth: { token } }), 10_000);
  const ms = Date.now() - started;
  if (!result.connected) {
    assert.deepEqual(Object.keys(result.data as object).sort(), ["code", "message"]);
    return { code: result.message, ms };
  }
  if (!keep) result.socket.disconnect();
  return { code: "ok", ms, ...(keep ? { socket: result.socket } : {}) };
}

/** All three transports, one after the other (so each sees the fault on its own). */
async function throughAll(app: TestApp, config: OidcConfigInput, token: string) {
  const verify = await viaVerify(token, config);
  const http = await viaHttp(app, token);
  const socket = await viaSocket(app, token);
  return { verify, http, socket };
}

function assertAll(result: Awaited<ReturnType<typeof throughAll>>, code: string, status: number): void {
  assert.equal(result.verify.code, code, `verifyOidcToken: ${result.verify.error?.reason ?? ""}`);
  assert.equal(result.http.code, code, "HTTP code");
  assert.equal(result.http.status, status, "HTTP status");
  assert.equal(result.socket.code, code, "Socket.IO connect_error");
}

function assertUnavailable(result: Awaited<ReturnType<typeof throughAll>>): void {
  assertAll(result, "ERR_AUTH_UNAVAILABLE", 503);
  assert.equal(result.verify.error?.statusCode, 503);
  assert.equal(result.http.retryAfter, "5", "our 503 carries Retry-After: 5");
  assert.match(result.verify.error?.reason ?? "", /could not be obtained/);
}

function levelOf(app: TestApp, pattern: RegExp): number[] {
  return app.logs.filter((line) => pattern.test(line.text)).map((line) => line.level);
}

// ---------------------------------------------------------------------------

describe("faults: JWKS slow or hanging", () => {
  it("JWKS slow (400 ms) but within jwksTimeout (2 s) → accepted on verifyOidcToken, HTTP and Socket.IO", async () => {
    const server = await idp({ mode: "slow", slowMs: 400 });
    // jwksCacheMaxAge 0: every request fetches the set again, so every transport waits for the slow IdP.
    const config = configOf(server, { jwksTimeout: 2_000, jwksCacheMaxAge: 0 });
    const app = await openApp({ config });
    try {
      const result = await throughAll(app, config, await server.token());
      assertAll(result, "ok", 200);
      for (const probe of [result.verify, result.http, result.socket]) assert.ok(probe.ms >= 390, `waited for the IdP (${probe.ms} ms)`);
      assert.equal(server.hits, 3);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("JWKS slower (1.5 s) than jwksTimeout (300 ms) → ERR_AUTH_UNAVAILABLE (503, Retry-After: 5) after ~300 ms on all three", async () => {
    const timeout = 300;
    const server = await idp({ mode: "slow", slowMs: 1_500 });
    const config = configOf(server, { jwksTimeout: timeout });
    const app = await openApp({ config });
    try {
      const result = await throughAll(app, config, await server.token());
      assertUnavailable(result);
      for (const probe of [result.verify, result.http, result.socket]) {
        assert.ok(probe.ms >= timeout - 20 && probe.ms < timeout + 1_000, `answered in ${probe.ms} ms`);
      }
      assert.deepEqual(levelOf(app, /ERR_AUTH_UNAVAILABLE/), [3, 3], "logged at level 3 (HTTP and socket)");
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("JWKS hanging → ERR_AUTH_UNAVAILABLE within jwksTimeout + 1 s; jose aborts the request, and closing the IdP leaves no connection open", async () => {
    const timeout = 300;
    const server = await idp({ mode: "hang" });
    const config = configOf(server, { jwksTimeout: timeout });
    const app = await openApp({ config });
    try {
      const result = await throughAll(app, config, await server.token());
      assertUnavailable(result);
      for (const probe of [result.verify, result.http, result.socket]) {
        assert.ok(probe.ms >= timeout - 20 && probe.ms < timeout + 1_000, `answered in ${probe.ms} ms`);
      }
      assert.equal(server.hits, 3, "one fetch per request: a failed fetch is not cached");
      // The client side gives up: the IdP sees each hung request's connection closed.
      await waitFor(() => server.pending === 0, 3_000);
    } finally {
      await app.close();
      await server.close();
    }
    assert.equal(server.connections, 0, "no connection to the IdP left open");
    assert.equal(server.listening, false);
  });
});

describe("faults: JWKS error answers", () => {
  it("JWKS 500 → ERR_AUTH_UNAVAILABLE (503, Retry-After: 5) on all three", async () => {
    const server = await idp({ mode: "500" });
    const config = configOf(server);
    const app = await openApp({ config });
    try {
      const result = await throughAll(app, config, await server.token());
      assertUnavailable(result);
      assert.match(result.verify.error?.reason ?? "", /Expected 200 OK/);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("JWKS 503 with Retry-After: 2 → ERR_AUTH_UNAVAILABLE with our own Retry-After: 5 (the IdP's is not relayed); no back-off: every request re-fetches (concurrent ones share one fetch)", async () => {
    const server = await idp({ mode: "503" });
    const config = configOf(server);
    const app = await openApp({ config });
    try {
      const token = await server.token();
      const result = await throughAll(app, config, token);
      assertUnavailable(result);
      assert.equal(server.hits, 3, "three sequential requests, three fetches (jose ignores Retry-After)");
      const concurrent = await Promise.all(Array.from({ length: 10 }, () => viaVerify(token, config)));
      assert.ok(concurrent.every((probe) => probe.code === "ERR_AUTH_UNAVAILABLE"));
      assert.equal(server.hits, 4, "ten concurrent requests share one in-flight fetch");
      // When the IdP recovers, the very next request succeeds: nothing was cached from the failures.
      server.mode = "ok";
      assertAll(await throughAll(app, config, token), "ok", 200);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("JWKS invalid JSON (200, application/json) → ERR_AUTH_UNAVAILABLE on all three", async () => {
    const server = await idp({ mode: "invalid-json" });
    const config = configOf(server);
    const app = await openApp({ config });
    try {
      const result = await throughAll(app, config, await server.token());
      assertUnavailable(result);
      assert.match(result.verify.error?.reason ?? "", /parse the JSON Web Key Set/);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it('JWKS empty key set { "keys": [] } → ERR_AUTH_UNAVAILABLE (503), not 401: the provider published no keys, the token may be fine; re-fetched at most once per jwksCooldown, so tokens are accepted again once the cooldown has passed after the IdP publishes keys again', async () => {
    const cooldown = 1_000;
    const server = await idp({ mode: "empty" });
    const config = configOf(server, { jwksCooldown: cooldown });
    const app = await openApp({ config });
    try {
      const token = await server.token();
      const result = await throughAll(app, config, token);
      assertAll(result, "ERR_AUTH_UNAVAILABLE", 503);
      assert.match(result.verify.error?.reason ?? "", /the key set is empty/);
      assert.equal(server.hits, 1, "one fetch: the empty set is cached and the cooldown blocks re-fetches");
      assert.deepEqual(levelOf(app, /ERR_AUTH_UNAVAILABLE/), [3, 3], "logged as a server-side fault (level 3)");
      const fetchedAt = Date.now();
      server.mode = "ok"; // the IdP publishes its key again
      await sleep(Math.max(0, fetchedAt + cooldown + 100 - Date.now()));
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(server.hits, 2, "the unknown kid caused one re-fetch once the cooldown had passed");
    } finally {
      await app.close();
      await server.close();
    }
  });
});

describe("faults: keys rotated mid-run", () => {
  it("rotation keeping the old key: old and new tokens accepted (the new kid costs one re-fetch); old key removed: old tokens accepted until the cached set is refreshed (jwksCacheMaxAge), then ERR_AUTH_TOKEN_INVALID; a live socket is not re-checked but cannot refresh with an old-key token", async () => {
    const maxAge = 2_000;
    const server = await idp();
    const config = configOf(server, { jwksCooldown: 0, jwksCacheMaxAge: maxAge });
    const app = await openApp({ config });
    let live: ClientSocket | undefined;
    try {
      const oldToken = await server.token({ sub: "rot" });
      assertAll(await throughAll(app, config, oldToken), "ok", 200);
      assert.equal(server.hits, 1);
      const connected = await viaSocket(app, oldToken, true);
      assert.equal(connected.code, "ok");
      live = connected.socket!;

      // 1. Rotate, old key still published.
      const oldKey = await server.rotate({ keepOld: true });
      const newToken = await server.token({ sub: "rot" });
      assertAll(await throughAll(app, config, newToken), "ok", 200);
      assert.equal(server.hits, 2, "the new kid was not in the cached set: one re-fetch (cooldown 0)");
      assertAll(await throughAll(app, config, oldToken), "ok", 200);
      assert.equal(server.hits, 2);

      // 2. Remove the old key. Force a fresh fetch first (an unknown kid, cooldown 0), so the
      //    cached set (which still holds the old key) is known to be < jwksCacheMaxAge old.
      assert.equal((await viaVerify(await server.token({}, server.current, { kid: "unknown" }), config)).code, "ERR_AUTH_TOKEN_INVALID");
      const refreshedAt = Date.now();
      const hits = server.hits;
      server.publish([server.current]);
      assertAll(await throughAll(app, config, oldToken), "ok", 200);
      assert.equal(server.hits, hits, "served from the cached set: the IdP was not asked");
      assert.ok(Date.now() - refreshedAt < maxAge, "still within jwksCacheMaxAge");

      // 3. Once the cached set is older than jwksCacheMaxAge, it is re-fetched: the old key is gone.
      await sleep(Math.max(0, refreshedAt + maxAge + 150 - Date.now()));
      const rejected = await throughAll(app, config, oldToken);
      assertAll(rejected, "ERR_AUTH_TOKEN_INVALID", 401);
      assert.match(rejected.verify.error?.reason ?? "", /no key in the JWKS matches kid/);
      assert.ok(server.hits > hits);
      assertAll(await throughAll(app, config, newToken), "ok", 200);

      // 4. The socket that connected with the old key is still up (checked at the handshake, then it follows exp) …
      assert.ok(live.connected);
      assert.equal((await call<{ sub: string }>(live, "whoami")).sub, "rot");
      // … but it cannot refresh with an old-key token, only with a new-key one.
      assert.deepEqual(await call(live, "oidc:refresh", { token: await server.token({ sub: "rot" }, oldKey) }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
      const refreshed = await call<{ ok: boolean }>(live, "oidc:refresh", { token: await server.token({ sub: "rot" }) });
      assert.equal(refreshed.ok, true);
    } finally {
      live?.disconnect();
      await app.close();
      await server.close();
    }
  });
});

describe("faults: identity provider restarted on the same port", () => {
  it("IdP down before the keys were ever fetched → ERR_AUTH_UNAVAILABLE (503) at once on all three; after it restarts on the same port → accepted", async () => {
    const server = await idp();
    const config = configOf(server);
    const app = await openApp({ config });
    try {
      const token = await server.token();
      await server.stop();
      const result = await throughAll(app, config, token);
      assertUnavailable(result);
      for (const probe of [result.verify, result.http, result.socket]) assert.ok(probe.ms < 1_000, `connection refused is immediate (${probe.ms} ms)`);
      await server.start();
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(server.hits, 1, "the first success fetched the set once; the others used it");
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("IdP down after the keys were cached → still accepted from the cache (no request reaches the IdP) while within jwksCacheMaxAge; after the restart the set is re-fetched from the same port and tokens are accepted", async () => {
    const maxAge = 1_500;
    const server = await idp();
    const config = configOf(server, { jwksCacheMaxAge: maxAge });
    const app = await openApp({ config });
    try {
      const token = await server.token();
      assert.equal((await viaVerify(token, config)).code, "ok");
      const fetchedAt = Date.now();
      assert.equal(server.hits, 1);
      await server.stop();
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.ok(Date.now() - fetchedAt < maxAge, "all three ran while the cached set was fresh");
      await server.start();
      await sleep(Math.max(0, fetchedAt + maxAge + 100 - Date.now()));
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(server.hits, 2, "re-fetched once from the restarted IdP after jwksCacheMaxAge");
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("IdP still down when the cached set passes jwksCacheMaxAge → ERR_AUTH_UNAVAILABLE (no stale-if-error: jose drops an expired set and fetches); accepted again once the IdP is back", async () => {
    const maxAge = 500;
    const server = await idp();
    const config = configOf(server, { jwksCacheMaxAge: maxAge });
    const app = await openApp({ config });
    try {
      const token = await server.token();
      assert.equal((await viaVerify(token, config)).code, "ok");
      const fetchedAt = Date.now();
      await server.stop();
      await sleep(Math.max(0, fetchedAt + maxAge + 100 - Date.now()));
      assertUnavailable(await throughAll(app, config, token));
      await server.start();
      assertAll(await throughAll(app, config, token), "ok", 200);
    } finally {
      await app.close();
      await server.close();
    }
  });
});

describe("faults: users manager returns no usable record", () => {
  let server: FaultIdp;
  let app: TestApp;
  let answer: unknown;
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate() {
      return answer;
    }
  }
  before(async () => {
    server = await idp();
    app = await openApp({ config: configOf(server), managers: { users: Users } });
  });
  after(async () => {
    await app.close();
    await server.close();
  });

  const cases: Array<[string, unknown]> = [
    ["null", null],
    ['a string ("user-1")', "user-1"],
    ["{} (no id)", {}],
    ['{ id: "" }', { id: "" }],
    ["undefined (nothing)", undefined],
  ];
  for (const [label, value] of cases) {
    it(`findOrCreate returning ${label} → ERR_USER_PROVISION_FAILED: HTTP 500 and Socket.IO connect_error; logged at level 3`, async () => {
      answer = value;
      const before = app.logs.length;
      const token = await server.token({ sub: "prov" });
      const http = await viaHttp(app, token);
      assert.equal(http.status, 500);
      assert.equal(http.code, "ERR_USER_PROVISION_FAILED");
      assert.equal((await viaSocket(app, token)).code, "ERR_USER_PROVISION_FAILED");
      const lines = app.logs.slice(before).filter((line) => line.text.includes("ERR_USER_PROVISION_FAILED"));
      assert.equal(lines.length, 2);
      for (const line of lines) {
        assert.equal(line.level, 3);
        assert.match(line.text, /returned no record with a string or number id/);
      }
    });
  }

  it("control: findOrCreate returning { id: 42 } → accepted, userId \"42\"", async () => {
    answer = { id: 42 };
    const token = await server.token({ sub: "prov" });
    const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { userId: string }).userId, "42");
  });
});

describe("faults: session tracker's unregisterSocket fails on disconnect", () => {
  let server: FaultIdp;
  let app: TestApp;
  let failure: "sync" | "async" = "sync";
  let unregisterCalls = 0;
  class Session {
    constructor(_appHandle: AppHandle) {}
    registerSocket() {}
    unregisterSocket(socketId: string) {
      unregisterCalls++;
      if (failure === "sync") throw new Error(`tracker gone (sync) for ${socketId}`);
      return Promise.reject(new Error(`tracker gone (async) for ${socketId}`));
    }
  }
  before(async () => {
    server = await idp();
    app = await openApp({ config: configOf(server), managers: { session: Session } });
  });
  after(async () => {
    await app.close();
    await server.close();
  });

  for (const mode of ["sync", "async"] as const) {
    it(`unregisterSocket ${mode === "sync" ? "throwing synchronously" : "rejecting asynchronously"} → logged at level 3 with the socket id; no crash, no unhandled rejection; the app keeps serving`, async () => {
      failure = mode;
      const unhandledBefore = unhandled.length;
      const callsBefore = unregisterCalls;
      const token = await server.token({ sub: `unreg-${mode}` });
      const connected = await viaSocket(app, token, true);
      assert.equal(connected.code, "ok");
      const socket = connected.socket!;
      await call(socket, "whoami"); // fully connected and registered
      const id = socket.id;
      socket.disconnect();
      const mine = () => app.logs.filter((line) => line.text.includes(`tracker gone (${mode}) for ${String(id)}`));
      await waitFor(() => mine().length > 0, 5_000);
      const lines = mine();
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.level, 3);
      assert.ok(lines[0]!.text.includes(`session.unregisterSocket(${String(id)}) failed`), lines[0]!.text);
      assert.equal(unregisterCalls, callsBefore + 1, "called once");
      await sleep(50); // let any stray rejection surface
      assert.equal(unhandled.length, unhandledBefore, "no unhandled rejection");
      // Still serving both transports (the probe socket's own unregister fails too: wait for it).
      const again = await throughAll(app, configOf(server), token);
      await waitFor(() => unregisterCalls === callsBefore + 2, 5_000);
      await sleep(50);
      assert.equal(unhandled.length, unhandledBefore, "still no unhandled rejection");
      assertAll(again, "ok", 200);
    });
  }
});

describe("faults: slow users manager under concurrent handshakes", () => {
  it("findOrCreate taking 200 ms, 50 concurrent Socket.IO handshakes → all 50 connect; the calls overlap (not serialised)", { timeout: 30_000 }, async () => {
    const server = await idp();
    let inFlight = 0;
    let peak = 0;
    let calls = 0;
    class Users {
      constructor(_appHandle: AppHandle) {}
      async findOrCreate(sub: string) {
        calls++;
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(200);
        inFlight--;
        return { id: `local-${sub}` };
      }
    }
    const app = await openApp({ config: configOf(server), managers: { users: Users } });
    const sockets: ClientSocket[] = [];
    try {
      const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => server.token({ sub: `slow-${i}` })));
      const started = Date.now();
      const results = await Promise.all(tokens.map((token) => outcome(app.connect("chat", { auth: { token } }), 15_000)));
      const elapsed = Date.now() - started;
      for (const result of results) {
        assert.ok(result.connected, result.connected ? "" : result.message);
        sockets.push(result.socket);
      }
      assert.equal(calls, 50);
      assert.ok(elapsed < 3_000, `50 handshakes took ${elapsed} ms (serialised they would take 10 s)`);
      assert.ok(peak >= 10, `up to ${peak} findOrCreate calls in flight at once`);
      const whoami = await call<{ userId: string }>(sockets[7]!, "whoami");
      assert.equal(whoami.userId, "local-slow-7");
      process.stdout.write(`# 50 concurrent handshakes with a 200 ms findOrCreate: ${elapsed} ms, peak ${peak} in flight\n`);
    } finally {
      for (const socket of sockets) socket.disconnect();
      await app.close();
      await server.close();
    }
  });
});

describe("faults: the whole file", () => {
  it("no unhandled rejection happened, and every IdP, app and TCP handle this file opened is closed", async () => {
    assert.deepEqual(unhandled, []);
    assert.ok(idps.length > 0);
    for (const each of idps) {
      assert.equal(each.closed, true, `IdP ${each.url} closed`);
      assert.equal(each.listening, false);
      assert.equal(each.connections, 0, `IdP ${each.url} (index ${idps.indexOf(each)}, hits ${each.hits}) has no open connection`);
    }
    for (const app of apps) assert.ok(closedApps.has(app), `app ${app.url} closed`);
    // Sockets closed by the peer go away asynchronously: bounded wait for the handles to drain.
    const tcp = () => process.getActiveResourcesInfo().filter((kind) => kind.startsWith("TCP"));
    const deadline = Date.now() + 5_000;
    while (tcp().length > 0 && Date.now() < deadline) await sleep(50);
    assert.deepEqual(tcp(), [], "no TCP server or socket handle left");
  });
});
