/**
 * Faults: an identity provider that misbehaves on cue (slow, hanging, 500,
 * 503 + Retry-After, invalid JSON, empty key set, rotation, restart on the
 * same port) and app code that misbehaves (users manager, session tracker).
 * Every fault goes through `verifyOidcToken` AND a real IOServer (HTTP route
 * and Socket.IO handshake); every wait is bounded; the file closes everything
 * it opened and exits by itself.
 *
 * Each test's name states the observed behaviour (SECURITY.md's fault table).
 * Key sets are shared per JWKS URI and fetch policy, and an app prefetches its
 * keys at start: each test uses its own IdP (own port), counts the prefetch in
 * the IdP's hits, and turns the verified-token cache off where the test is
 * about key fetching.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import type { Socket as ClientSocket } from "socket.io-client";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput, type OidcConfigManager, type OidcIssuerHealth } from "../../src/index.js";
import { call, handshake, httpGet, outcome, startApp, type AppOptions, type TestApp } from "../helpers/app.js";
import { sleep, sleepUntil, waitFor } from "../helpers/wait.js";
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

/** The app's key-set health for its one issuer (`OidcConfigManager#getHealth()`). */
function keyHealth(app: TestApp): OidcIssuerHealth {
  const issuer = (app.appHandle.oidcConfig as OidcConfigManager).getHealth().issuers[0];
  assert.ok(issuer !== undefined, "getHealth() reports the issuer");
  return issuer;
}

/** Wait (bounded) until the app's start-up prefetch has settled (keys fetched, or the fetch failed). */
async function prefetched(app: TestApp, timeoutMs = 5_000): Promise<OidcIssuerHealth> {
  await waitFor(() => keyHealth(app).state !== "cold", timeoutMs);
  return keyHealth(app);
}

/** A fault IdP, a config trusting it (with `extra`) and an app with that config, for one test's body; both closed after it. */
async function withIdpApp(
  options: Parameters<typeof startFaultIdp>[0],
  extra: Partial<OidcConfigInput>,
  body: (server: FaultIdp, config: OidcConfigInput, app: TestApp) => Promise<void>,
): Promise<void> {
  const server = await idp(options);
  const config = configOf(server, extra);
  const app = await openApp({ config });
  try {
    await body(server, config, app);
  } finally {
    await app.close();
    await server.close();
  }
}

/** One request on each transport without a token, so that connection set-up is not counted in the timings that follow. */
async function warmUp(app: TestApp): Promise<void> {
  const response = await fetch(`${app.url}/api/me`, { signal: AbortSignal.timeout(5_000) });
  await response.arrayBuffer();
  assert.equal(response.status, 401);
  const result = await outcome(app.connect("chat"), 5_000);
  assert.equal(result.connected, false);
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
  const { code, status, headers, ms } = await httpGet(app, token, { timeoutMs: 10_000 });
  return { code, status, retryAfter: headers.get("retry-after"), ms };
}

/** Handshake on `chat`; on success the socket is disconnected unless `keep`. */
async function viaSocket(app: TestApp, token: string, keep = false): Promise<Probe & { socket?: ClientSocket }> {
  const { code, data, ms, socket } = await handshake(app, token, { keep });
  if (code !== "ok") assert.deepEqual(Object.keys(data as object).sort(), ["code", "message"]);
  return { code, ms, ...(socket === undefined ? {} : { socket }) };
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
  it("JWKS slow (400 ms) but within jwksTimeout (2 s) → accepted on verifyOidcToken, HTTP and Socket.IO; with jwksCacheMaxAge 0 each request (after the start-up prefetch) waits for its own fetch", async () => {
    const server = await idp({ mode: "slow", slowMs: 400 });
    // jwksCacheMaxAge 0: every request fetches the set again, so every transport waits for the slow IdP.
    const config = configOf(server, { jwksTimeout: 2_000, jwksCacheMaxAge: 0 });
    const app = await openApp({ config });
    try {
      // The app prefetches its keys at start: let that fetch finish, so that each request below makes its own.
      const health = await prefetched(app);
      assert.equal(health.failures, 0);
      assert.equal(server.hits, 1, "the start-up prefetch");
      const result = await throughAll(app, config, await server.token());
      assertAll(result, "ok", 200);
      for (const probe of [result.verify, result.http, result.socket]) assert.ok(probe.ms >= 390, `waited for the IdP (${probe.ms} ms)`);
      assert.equal(server.hits, 4, "start-up prefetch + one fetch per request");
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("JWKS slower (3 s) than jwksTimeout (1 s) → the first request waits ~1 s for ERR_AUTH_UNAVAILABLE (503, Retry-After: 5); the timed-out fetch opens the circuit: the app's prefetch and the next requests on all three fail fast (no fetch) until the 1 s back-off is over", async () => {
    const timeout = 1_000;
    const server = await idp({ mode: "slow", slowMs: 3_000 });
    const config = configOf(server, { jwksTimeout: timeout, tokenCache: false });
    let app: TestApp | undefined;
    try {
      // No app yet (no start-up prefetch): this request meets a cold key set and waits for the fetch to time out.
      const first = await viaVerify(await server.token(), config);
      assert.equal(first.code, "ERR_AUTH_UNAVAILABLE");
      assert.ok(first.ms >= timeout - 20 && first.ms < timeout + 1_000, `the first request waited for jwksTimeout (${first.ms} ms)`);
      assert.match(first.error?.reason ?? "", new RegExp(`no answer within ${timeout} ms`));
      assert.equal(server.hits, 1);

      // The app shares the key set (same JWKS URI and fetch policy): its prefetch does not fetch during the back-off.
      app = await openApp({ config });
      const health = keyHealth(app);
      assert.equal(health.circuit, "open");
      assert.equal(health.state, "unavailable");
      assert.equal(health.failures, 1);
      await warmUp(app);
      const result = await throughAll(app, config, await server.token());
      assert.ok(Date.now() < health.retryAt!, "precondition: the three requests ran within the back-off window");
      assertUnavailable(result);
      assert.match(result.verify.error?.reason ?? "", /backing off/);
      assert.ok(result.verify.ms < 50, `verifyOidcToken failed fast (${result.verify.ms} ms)`);
      for (const probe of [result.http, result.socket]) assert.ok(probe.ms < 250, `failed fast (${probe.ms} ms), not after jwksTimeout`);
      assert.equal(server.hits, 1, "no request reached the IdP during the back-off (the app's prefetch included)");
      assert.deepEqual(levelOf(app, /ERR_AUTH_UNAVAILABLE/), [3, 3], "logged at level 3 (HTTP and socket)");
    } finally {
      await app?.close();
      await server.close();
    }
  });

  it("JWKS hanging → the first request gets ERR_AUTH_UNAVAILABLE after ~jwksTimeout, the next ones on all three fail fast; after the back-off one probe fetch runs and requests arriving meanwhile fail fast instead of queueing; every hung fetch is aborted, and closing the IdP leaves no connection open", async () => {
    const timeout = 1_000;
    const server = await idp({ mode: "hang" });
    const config = configOf(server, { jwksTimeout: timeout, tokenCache: false });
    let app: TestApp | undefined;
    try {
      const first = await viaVerify(await server.token(), config);
      assert.equal(first.code, "ERR_AUTH_UNAVAILABLE");
      assert.ok(first.ms >= timeout - 20 && first.ms < timeout + 1_000, `the first request waited for jwksTimeout (${first.ms} ms)`);
      assert.equal(server.hits, 1);

      app = await openApp({ config });
      const health = keyHealth(app);
      assert.equal(health.circuit, "open");
      await warmUp(app);
      const result = await throughAll(app, config, await server.token());
      assert.ok(Date.now() < health.retryAt!, "precondition: within the back-off window");
      assertUnavailable(result);
      assert.ok(result.verify.ms < 50, `verifyOidcToken failed fast (${result.verify.ms} ms)`);
      for (const probe of [result.http, result.socket]) assert.ok(probe.ms < 250, `failed fast (${probe.ms} ms)`);
      assert.equal(server.hits, 1, "no fetch during the back-off");

      // After the window: one probe fetch (here started by an HTTP request, which waits for it) …
      await sleepUntil(health.retryAt! + 50);
      const token = await server.token();
      let probeDone = false;
      const probe = viaHttp(app, token).finally(() => {
        probeDone = true;
      });
      await waitFor(() => server.hits === 2, 2_000);
      // … while it is in flight, the others fail fast instead of queueing behind it.
      const duringVerify = await viaVerify(token, config);
      const duringSocket = await viaSocket(app, token);
      assert.equal(probeDone, false, "answered while the probe was still in flight");
      for (const each of [duringVerify, duringSocket]) {
        assert.equal(each.code, "ERR_AUTH_UNAVAILABLE");
        assert.ok(each.ms < 250, `failed fast during the probe (${each.ms} ms)`);
      }
      assert.match(duringVerify.error?.reason ?? "", /probe fetch is in flight/);
      const probed = await probe;
      assert.equal(probed.code, "ERR_AUTH_UNAVAILABLE");
      assert.ok(probed.ms >= timeout - 100, `the probe's own request waited for jwksTimeout (${probed.ms} ms)`);
      assert.equal(server.hits, 2, "one probe, no queue of fetches");
      assert.equal(keyHealth(app).failures, 2);
      assert.equal(keyHealth(app).circuit, "open");
      // The client side gave up: the IdP sees each hung request's connection closed.
      await waitFor(() => server.pending === 0, 3_000);
    } finally {
      await app?.close();
      await server.close();
    }
    assert.equal(server.connections, 0, "no connection to the IdP left open");
    assert.equal(server.listening, false);
  });
});

describe("faults: JWKS error answers", () => {
  it("JWKS 500 → ERR_AUTH_UNAVAILABLE (503, Retry-After: 5) on all three; the failed start-up prefetch starts a 1 s back-off, so the three requests do not reach the IdP", async () => {
    await withIdpApp({ mode: "500" }, { tokenCache: false }, async (server, config, app) => {
      const health = await prefetched(app);
      assert.equal(health.state, "unavailable");
      assert.equal(health.failures, 1);
      assert.match(health.lastError ?? "", /answered HTTP 500/);
      assert.equal(server.hits, 1, "the start-up prefetch");
      const result = await throughAll(app, config, await server.token());
      assert.ok(Date.now() < health.retryAt!, "precondition: within the back-off window");
      assertUnavailable(result);
      assert.match(result.verify.error?.reason ?? "", /answered HTTP 500 \(backing off for \d+ ms after 1 failed fetch\(es\)\)/);
      assert.equal(server.hits, 1, "no fetch during the back-off");
    });
  });

  it("JWKS 503 with Retry-After: 2 → ERR_AUTH_UNAVAILABLE with our own Retry-After: 5 (the IdP's is not relayed); the IdP's Retry-After (longer than the 1 s back-off step) is honoured: no fetch for 2 s, then one fetch shared by concurrent requests; accepted once the IdP recovers and the next window has passed", async () => {
    await withIdpApp({ mode: "503" }, { tokenCache: false }, async (server, config, app) => {
      const health = await prefetched(app);
      assert.equal(server.hits, 1, "the start-up prefetch");
      const failedAt = server.hitTimes[0]!;
      assert.ok(health.retryAt! - failedAt >= 1_950, `the next fetch is ${health.retryAt! - failedAt} ms after the failure (Retry-After: 2)`);
      const token = await server.token();
      const result = await throughAll(app, config, token);
      assertUnavailable(result);
      assert.equal(server.hits, 1, "three sequential requests within the window: no fetch");
      await sleepUntil(failedAt + 1_300); // past the 1 s back-off step, still within Retry-After
      assert.equal((await viaVerify(token, config)).code, "ERR_AUTH_UNAVAILABLE");
      assert.equal(server.hits, 1, "no fetch 1.3 s after the failure: the IdP asked for 2 s");

      await sleepUntil(health.retryAt! + 50);
      const concurrent = await Promise.all(Array.from({ length: 10 }, () => viaVerify(token, config)));
      assert.ok(concurrent.every((probe) => probe.code === "ERR_AUTH_UNAVAILABLE"));
      assert.equal(server.hits, 2, "after the window: one fetch, shared by ten concurrent requests");

      // The IdP recovers, but the second failure set a new window: still refused without a fetch until it is over.
      server.mode = "ok";
      const second = keyHealth(app);
      assert.equal(second.failures, 2);
      assert.equal((await viaHttp(app, token)).code, "ERR_AUTH_UNAVAILABLE");
      assert.equal(server.hits, 2);
      await sleepUntil(second.retryAt! + 50);
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(server.hits, 3, "one fetch after the window; the other requests used it");
      assert.equal(keyHealth(app).failures, 0);
    });
  });

  it("JWKS invalid JSON (200, application/json) → ERR_AUTH_UNAVAILABLE on all three (a failed fetch: back-off, no re-fetch per request)", async () => {
    await withIdpApp({ mode: "invalid-json" }, { tokenCache: false }, async (server, config, app) => {
      const health = await prefetched(app);
      assert.equal(health.failures, 1);
      const result = await throughAll(app, config, await server.token());
      assert.ok(Date.now() < health.retryAt!, "precondition: within the back-off window");
      assertUnavailable(result);
      assert.match(result.verify.error?.reason ?? "", /answered a body that is not JSON/);
      assert.equal(server.hits, 1, "the start-up prefetch only");
    });
  });

  it('JWKS empty key set { "keys": [] } → counted as a failed fetch: ERR_AUTH_UNAVAILABLE (503), not 401 (the provider published no keys, the token may be fine); back-off 1 s, during which tokens stay refused without a fetch even after the IdP publishes keys again; accepted after the window', async () => {
    await withIdpApp({ mode: "empty" }, { tokenCache: false }, async (server, config, app) => {
      const health = await prefetched(app);
      assert.equal(health.state, "unavailable");
      assert.match(health.lastError ?? "", /answered an empty key set/);
      const token = await server.token();
      const result = await throughAll(app, config, token);
      assertAll(result, "ERR_AUTH_UNAVAILABLE", 503);
      assert.match(result.verify.error?.reason ?? "", /answered an empty key set/);
      assert.equal(server.hits, 1, "the start-up prefetch only: the empty answer started a back-off");
      assert.deepEqual(levelOf(app, /ERR_AUTH_UNAVAILABLE/), [3, 3], "logged as a server-side fault (level 3)");
      server.mode = "ok"; // the IdP publishes its key again
      assert.equal((await viaVerify(token, config)).code, "ERR_AUTH_UNAVAILABLE");
      assert.equal(server.hits, 1, "still within the back-off");
      await sleepUntil(health.retryAt! + 50);
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(server.hits, 2, "one fetch after the back-off");
    });
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
  it("IdP down before the app started (keys never fetched) → the start-up prefetch is refused, ERR_AUTH_UNAVAILABLE (503) at once on all three; after the IdP restarts on the same port and the 1 s back-off is over → accepted, one fetch", async () => {
    const server = await idp();
    const token = await server.token();
    await server.stop();
    const config = configOf(server);
    const app = await openApp({ config });
    try {
      const health = await prefetched(app);
      assert.equal(health.state, "unavailable");
      assert.equal(health.keys, 0);
      assert.match(health.lastError ?? "", /ECONNREFUSED|fetch failed/);
      const result = await throughAll(app, config, token);
      assertUnavailable(result);
      for (const probe of [result.verify, result.http, result.socket]) assert.ok(probe.ms < 1_000, `refused at once (${probe.ms} ms)`);
      await server.start();
      await sleepUntil(health.retryAt! + 50);
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(server.hits, 1, "the first success fetched the set once; the others used it");
      assert.equal(keyHealth(app).state, "fresh");
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("IdP down after the keys were cached → still accepted from the cache (no request reaches the IdP) while within jwksCacheMaxAge; after the restart the set is re-fetched from the same port and tokens are accepted", async () => {
    const maxAge = 1_500;
    await withIdpApp({}, { jwksCacheMaxAge: maxAge }, async (server, config, app) => {
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
    });
  });

  it("IdP still down when the cached set passes jwksCacheMaxAge → still accepted with the stale keys within jwksStaleIfError (logged once, level 4), ERR_AUTH_UNAVAILABLE after it; accepted again once the IdP is back (recovery logged, level 6)", async () => {
    const maxAge = 500;
    const staleIfError = 1_000;
    const server = await idp();
    // tokenCache false: each request goes to the key set (the token cache's own bound is in test/perf/tokenCache.test.ts).
    const config = configOf(server, { jwksCacheMaxAge: maxAge, jwksStaleIfError: staleIfError, tokenCache: false });
    const app = await openApp({ config });
    try {
      const token = await server.token();
      const health = await prefetched(app);
      assert.equal(health.state, "fresh");
      const fetchedAt = health.fetchedAt!;
      await server.stop();
      await sleepUntil(fetchedAt + maxAge + 100);
      // HTTP first: the request that meets the failing refresh logs the outage through the app's logger.
      assert.equal((await viaHttp(app, token)).code, "ok");
      const stale = await throughAll(app, config, token);
      assert.ok(Date.now() < fetchedAt + maxAge + staleIfError, "precondition: within jwksStaleIfError");
      assertAll(stale, "ok", 200);
      assert.equal(keyHealth(app).state, "stale");
      const warned = () => app.logs.filter((line) => /is failing .*jwksStaleIfError/.test(line.text));
      assert.equal(warned().length, 1, "the outage is logged once");
      assert.equal(warned()[0]!.level, 4);

      await sleepUntil(fetchedAt + maxAge + staleIfError + 100);
      assertUnavailable(await throughAll(app, config, token));
      assert.equal(keyHealth(app).state, "unavailable");
      assert.equal(warned().length, 1, "still logged once");

      await server.start();
      await sleepUntil(keyHealth(app).retryAt! + 50);
      assert.equal((await viaHttp(app, token)).code, "ok");
      assertAll(await throughAll(app, config, token), "ok", 200);
      assert.equal(keyHealth(app).state, "fresh");
      assert.deepEqual(levelOf(app, /recovered after \d+ failed fetch/), [6]);
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
