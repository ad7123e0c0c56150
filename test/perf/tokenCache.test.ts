/**
 * The verified-token cache: correctness through `verifyOidcToken`
 * and through the HTTP and Socket.IO middlewares of a real IOServer app.
 *
 * Two ways to see a hit without looking inside:
 * - through an app, `OidcConfigManager#getHealth().tokenCache` (hits,
 *   misses, entries, bytes, evictions);
 * - through `verifyOidcToken`, a hit hands back the very payload object
 *   cached (frozen), so a nested claim object is the same object on both
 *   calls, while a verification parses the token again (a new object).
 *
 * Each test uses its own JWKS server (key sets are shared per JWKS URI and
 * policy) and its own configurations (one cache per configuration: objects
 * equal in content share one). The apps' configs differ from the ones given
 * to `verifyOidcToken` by their `realm`, so an app's counters are its own.
 *
 * Admission: by default a token is kept at its second verification
 * (`admitAfter: 2`), tested under "token cache: admission". The other tests
 * are about what a kept entry does, so their configs keep every verified
 * token (`admitAfter: 1`) unless they say otherwise.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput, type OidcConfigManager, type OidcHealth, type OidcUserContext } from "../../src/index.js";
import { handshake, httpGet, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { sleep, sleepUntil, waitFor } from "../helpers/wait.js";

const ISSUER = "https://idp.tokencache.test";
const AUDIENCE = "tokencache-app";

const opened: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const each of opened) await each.close().catch(() => undefined);
});

async function jwksServer(keys: SigningKey[]): Promise<JwksServer> {
  const server = await startJwksServer(keys.map((key) => key.jwk));
  opened.push(server);
  return server;
}

async function openApp(config: OidcConfigInput): Promise<TestApp> {
  const app = await startApp({ config: { ...config, realm: "tokencache-app" } });
  opened.push(app);
  return app;
}


/** A config whose cache keeps every verified token (admitAfter 1), unless `extra` sets tokenCache (false, or options merged over it). */
function configOf(server: JwksServer, extra: Partial<OidcConfigInput> = {}): OidcConfigInput {
  const given = extra.tokenCache;
  const tokenCache = given === false ? false : { admitAfter: 1 as const, ...(typeof given === "object" ? given : {}) };
  return { issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri, ...extra, tokenCache };
}

let serial = 0;
/** A distinct token per call, with a nested claim object `ctx` (see the header comment). */
function token(key: SigningKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const n = ++serial;
  return sign(key, { iss: ISSUER, aud: AUDIENCE, sub: `user-${n}`, iat: now, exp: now + 300, jti: `j-${n}`, ctx: { n }, ...claims }, { header });
}

interface Outcome {
  code: string;
  reason?: string;
  context?: OidcUserContext;
}

async function verify(value: string, config: OidcConfigInput): Promise<Outcome> {
  try {
    return { code: "ok", context: await verifyOidcToken(value, config) };
  } catch (error) {
    assert.ok(error instanceof OidcAuthError, `expected an OidcAuthError, got ${String(error)}`);
    return { code: error.code, reason: error.reason };
  }
}

/** The nested `ctx` claim object of an accepted token (identity tells a cache hit from a fresh verification). */
async function ctxOf(value: string, config: OidcConfigInput): Promise<object> {
  const result = await verify(value, config);
  assert.equal(result.code, "ok", result.reason);
  const ctx = result.context!.claims["ctx"];
  assert.ok(ctx !== null && typeof ctx === "object");
  return ctx;
}

async function viaHttp(app: TestApp, value: string): Promise<{ code: string; status: number }> {
  const { code, status } = await httpGet(app, value, { timeoutMs: 10_000 });
  return { code, status };
}

const viaSocket = async (app: TestApp, value: string): Promise<string> => (await handshake(app, value)).code;

function health(app: TestApp): OidcHealth {
  return (app.appHandle.oidcConfig as OidcConfigManager).getHealth();
}

function stats(app: TestApp) {
  const value = health(app).tokenCache;
  assert.ok(value !== undefined, "the token cache is on");
  return value;
}

async function prefetched(app: TestApp) {
  await waitFor(() => health(app).issuers[0]!.state !== "cold");
  return health(app).issuers[0]!;
}

// ---------------------------------------------------------------------------

describe("token cache: hits", () => {
  it("the same token twice → the second is answered from the cache: verifyOidcToken hands back the same frozen claims; HTTP and Socket.IO count hits in getHealth(); a distinct token with the same claims is a miss", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const config = configOf(server);
    const app = await openApp(configOf(server));
    try {
      const t = await token(key);
      const first = await ctxOf(t, config);
      const second = await ctxOf(t, config);
      assert.equal(second, first, "the second verification returned the cached payload");
      assert.ok(Object.isFrozen(first), "cached payloads are frozen (shared by every request presenting the token)");
      const other = await token(key, { ctx: first });
      assert.notEqual(await ctxOf(other, config), first, "another token string is verified on its own");

      await prefetched(app);
      assert.deepEqual(stats(app), { entries: 0, bytes: 0, hits: 0, misses: 0, evictions: 0, deferred: 0 });
      assert.equal((await viaHttp(app, t)).code, "ok");
      assert.deepEqual({ hits: stats(app).hits, misses: stats(app).misses, entries: stats(app).entries }, { hits: 0, misses: 1, entries: 1 });
      assert.equal((await viaHttp(app, t)).code, "ok");
      assert.equal(await viaSocket(app, t), "ok");
      assert.deepEqual({ hits: stats(app).hits, misses: stats(app).misses, entries: stats(app).entries }, { hits: 2, misses: 1, entries: 1 });
      assert.equal(server.hits, 1, "one JWKS fetch (the app's prefetch, shared with verifyOidcToken)");
    } finally {
      await app.close();
      await server.close();
    }
  });
});

describe("token cache: admission (default: a token is kept at its second verification)", () => {
  it("default config: the first verification of a token is not kept (counted as deferred), the second is, the third is a hit — on verifyOidcToken, HTTP and Socket.IO alike", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const config: OidcConfigInput = { issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri };
    const app = await openApp(config);
    try {
      const t = await token(key);
      const first = await ctxOf(t, config);
      const second = await ctxOf(t, config);
      assert.notEqual(second, first, "the second verification was a verification (nothing was kept the first time)");
      assert.equal(await ctxOf(t, config), second, "the third was answered from the cache: the payload kept at the second");

      await prefetched(app);
      const socketToken = await token(key);
      assert.equal(await viaSocket(app, socketToken), "ok");
      assert.deepEqual({ ...stats(app), bytes: 0 }, { entries: 0, bytes: 0, hits: 0, misses: 1, evictions: 0, deferred: 1 }, "a socket handshake's token, seen once, is not kept");
      assert.equal(await viaSocket(app, socketToken), "ok");
      assert.equal(stats(app).entries, 1, "a reconnect with the same token: kept now");
      assert.equal((await viaHttp(app, socketToken)).code, "ok");
      assert.deepEqual({ hits: stats(app).hits, misses: stats(app).misses, entries: stats(app).entries, deferred: stats(app).deferred }, { hits: 1, misses: 2, entries: 1, deferred: 1 });
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("tokens seen once do not push out a token in use: maxEntries 2, a token used twice stays cached through 20 one-time tokens; with admitAfter 1 the same sequence evicts it", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const guarded = await openApp({ issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri, tokenCache: { maxEntries: 2 } });
    const eager = await openApp(configOf(server, { tokenCache: { maxEntries: 2 } }));
    try {
      await prefetched(guarded);
      await prefetched(eager);
      const hot = await token(key);
      const once = await Promise.all(Array.from({ length: 20 }, () => token(key)));
      for (const app of [guarded, eager]) {
        assert.equal((await viaHttp(app, hot)).code, "ok");
        assert.equal((await viaHttp(app, hot)).code, "ok");
        for (const each of once) assert.equal((await viaHttp(app, each)).code, "ok");
      }
      const hitsBefore = { guarded: stats(guarded).hits, eager: stats(eager).hits };
      assert.equal((await viaHttp(guarded, hot)).code, "ok");
      assert.equal((await viaHttp(eager, hot)).code, "ok");
      assert.equal(stats(guarded).hits, hitsBefore.guarded + 1, "admitAfter 2: the token in use is still cached");
      assert.equal(stats(guarded).evictions, 0);
      assert.equal(stats(guarded).deferred, 21, "the hot token's first verification and the 20 one-time tokens");
      assert.equal(stats(eager).hits, hitsBefore.eager, "admitAfter 1: the one-time tokens evicted it");
      assert.ok(stats(eager).evictions >= 19);
    } finally {
      await guarded.close();
      await eager.close();
      await server.close();
    }
  });
});

describe("token cache: validity", () => {
  it("a cached token is refused once past its exp (clockTolerance 0), and once older than maxTokenAge, on verifyOidcToken, HTTP and Socket.IO; the expired entries leave the cache", { timeout: 15_000 }, async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const config = configOf(server, { clockTolerance: 0 });
    const aged = configOf(server, { clockTolerance: 0, maxTokenAge: 60 });
    const app = await openApp(configOf(server, { clockTolerance: 0 }));
    try {
      await prefetched(app);
      const now = Math.floor(Date.now() / 1000);
      const expiring = await token(key, { exp: now + 2 });
      const old = await token(key, { iat: now - 58 });
      // Cached: the second verification is a hit.
      assert.equal(await ctxOf(expiring, config), await ctxOf(expiring, config));
      assert.equal(await ctxOf(old, aged), await ctxOf(old, aged));
      assert.equal((await viaHttp(app, expiring)).code, "ok");
      assert.equal((await viaHttp(app, expiring)).code, "ok");
      assert.equal(stats(app).hits, 1);
      assert.equal(stats(app).entries, 1);

      await sleepUntil((now + 2) * 1000 + 100);
      const expired = await verify(expiring, config);
      assert.equal(expired.code, "ERR_AUTH_TOKEN_INVALID");
      assert.match(expired.reason ?? "", /token expired/);
      assert.deepEqual(await viaHttp(app, expiring), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      assert.equal(await viaSocket(app, expiring), "ERR_AUTH_TOKEN_INVALID");
      assert.equal(stats(app).entries, 0, "the expired entry was dropped");
      assert.equal(stats(app).hits, 1, "no hit after exp");

      await sleepUntil((now - 58 + 61) * 1000 + 100);
      const tooOld = await verify(old, aged);
      assert.equal(tooOld.code, "ERR_AUTH_TOKEN_INVALID");
      assert.match(tooOld.reason ?? "", /over the maxTokenAge/);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("maxTtl bounds how long a verification is reused: past it the token is verified again (still accepted)", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const config = configOf(server, { tokenCache: { maxTtl: 400 } });
    try {
      const t = await token(key);
      const first = await ctxOf(t, config);
      assert.equal(await ctxOf(t, config), first);
      await sleep(500);
      const later = await ctxOf(t, config);
      assert.notEqual(later, first, "verified again after maxTtl");
      assert.equal(await ctxOf(t, config), later, "and cached again");
    } finally {
      await server.close();
    }
  });
});

describe("token cache: key rotation", () => {
  it("key removed from the JWKS, noticed at the refresh after jwksCacheMaxAge → the cached token is refused (ERR_AUTH_TOKEN_INVALID) on all three, never served from the cache; a token of a key still published stays cached", { timeout: 15_000 }, async () => {
    const maxAge = 600;
    const k1 = await makeKey("ES256");
    const k2 = await makeKey("ES256");
    const server = await jwksServer([k1, k2]);
    const config = configOf(server, { jwksCacheMaxAge: maxAge });
    const app = await openApp(configOf(server, { jwksCacheMaxAge: maxAge }));
    try {
      const { fetchedAt } = await prefetched(app);
      const t1 = await token(k1);
      const t2 = await token(k2);
      const t1ctx = await ctxOf(t1, config);
      const t2ctx = await ctxOf(t2, config);
      assert.equal((await viaHttp(app, t1)).code, "ok");
      assert.equal((await viaHttp(app, t2)).code, "ok");
      assert.equal(stats(app).entries, 2);

      server.keys = [k2.jwk]; // k1 leaves the JWKS
      // Until the cached set is refreshed the package cannot know: still accepted (documented).
      assert.equal(await ctxOf(t1, config), t1ctx);
      assert.ok(Date.now() < fetchedAt! + maxAge, "precondition: the set is still fresh");

      await sleepUntil(fetchedAt! + maxAge + 50);
      const refused = await verify(t1, config); // this one refreshes the set
      assert.equal(refused.code, "ERR_AUTH_TOKEN_INVALID");
      assert.match(refused.reason ?? "", /no key in the JWKS matches kid/);
      assert.equal(server.hits, 2);
      assert.deepEqual(await viaHttp(app, t1), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      assert.equal(await viaSocket(app, t1), "ERR_AUTH_TOKEN_INVALID");
      assert.equal((await verify(t1, config)).code, "ERR_AUTH_TOKEN_INVALID", "still refused (failures are not cached as successes)");
      // k2 is unchanged in the new set: its cached verification is still used.
      assert.equal(await ctxOf(t2, config), t2ctx, "the token of the key still published is a hit");
      const hitsBefore = stats(app).hits;
      assert.equal((await viaHttp(app, t2)).code, "ok");
      assert.equal(stats(app).hits, hitsBefore + 1);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("key removed from the JWKS, noticed at a refresh forced by an unknown kid (jwksCooldown 0) → the cached token is refused at once, before jwksCacheMaxAge", async () => {
    const k1 = await makeKey("ES256");
    const k2 = await makeKey("ES256");
    const server = await jwksServer([k1]);
    const config = configOf(server, { jwksCooldown: 0 });
    try {
      const t1 = await token(k1);
      assert.equal(await ctxOf(t1, config), await ctxOf(t1, config));
      server.keys = [k2.jwk];
      assert.equal((await verify(await token(k2), config)).code, "ok", "the unknown kid re-fetched the set");
      assert.equal(server.hits, 2);
      const refused = await verify(t1, config);
      assert.equal(refused.code, "ERR_AUTH_TOKEN_INVALID");
      assert.match(refused.reason ?? "", /no key in the JWKS matches kid/);
    } finally {
      await server.close();
    }
  });
});

describe("token cache: keys served stale", () => {
  it("provider failing past jwksCacheMaxAge: the cached token is verified once more (with the stale keys), then a hit within jwksStaleIfError; past it refused (ERR_AUTH_UNAVAILABLE), never a hit; a hit again once the same key is fetched anew", { timeout: 20_000 }, async () => {
    const maxAge = 500;
    const staleIfError = 1_000;
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const config = configOf(server, { jwksCacheMaxAge: maxAge, jwksStaleIfError: staleIfError });
    const t = await token(key);
    const first = await ctxOf(t, config);
    // The set's age counts from the end of the fetch, a little after the request: every bound below leaves room for that.
    const fetched = server.hitTimes[0]!;
    assert.equal(await ctxOf(t, config), first, "a hit while the keys are fresh");

    server.mode = { status: 500 };
    await sleepUntil(fetched + maxAge + 150);
    const stale = await ctxOf(t, config);
    assert.notEqual(stale, first, "past the max age the cache does not answer: verified again, with the stale keys");
    assert.equal(server.hits, 2, "the failing refresh was tried");
    assert.equal(await ctxOf(t, config), stale, "then a hit while the stale keys may be used");
    assert.ok(Date.now() < fetched + maxAge + staleIfError, "precondition: within jwksStaleIfError");

    await sleepUntil(fetched + maxAge + staleIfError + 150);
    const refused = await verify(t, config);
    assert.equal(refused.code, "ERR_AUTH_UNAVAILABLE", "past the stale bound the cached verification is not used");

    server.mode = "ok";
    let back: Outcome = refused;
    const deadline = Date.now() + 10_000;
    while (back.code !== "ok" && Date.now() < deadline) {
      await sleep(100); // the back-off after the failed fetches (1 s, then 2 s)
      back = await verify(t, config);
    }
    assert.equal(back.code, "ok", "accepted once the provider answers again");
    const fresh = back.context!.claims["ctx"];
    assert.notEqual(fresh, stale, "verified anew, not served from the cache");
    assert.equal(await ctxOf(t, config), fresh, "and a hit again with the new set");
  });
});

describe("token cache: keys", () => {
  it("two tokens differing only in the signature's last base64url character (non-canonical low bits: same signature bytes) are cached separately, each with the answer an uncached verification gives; a last-character change that alters the bytes is refused", async () => {
    const key = await makeKey("RS256");
    const server = await jwksServer([key]);
    const cached = configOf(server);
    const reference = configOf(server, { tokenCache: false });
    const app = await openApp(configOf(server));
    try {
      await prefetched(app);
      const original = await token(key);
      const [head, payload, signature] = original.split(".") as [string, string, string];
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const last = alphabet.indexOf(signature.at(-1)!);
      // 256 bytes → 342 characters; the last one carries 2 bits of the signature and 4 padding bits.
      assert.equal(signature.length, 342);
      assert.equal(last & 0b1111, 0, "canonical: padding bits are zero");
      const withLast = (value: number) => `${head}.${payload}.${signature.slice(0, -1)}${alphabet[value]!}`;
      const sameBytes = withLast(last | 0b0001);
      const otherBytes = withLast(last ^ 0b100000);
      assert.ok(Buffer.from(sameBytes.split(".")[2]!, "base64url").equals(Buffer.from(signature, "base64url")), "premise: same decoded bytes");
      assert.ok(!Buffer.from(otherBytes.split(".")[2]!, "base64url").equals(Buffer.from(signature, "base64url")), "premise: other bytes");

      const expected = { sameBytes: (await verify(sameBytes, reference)).code, otherBytes: (await verify(otherBytes, reference)).code };
      assert.equal(expected.otherBytes, "ERR_AUTH_TOKEN_INVALID");

      const originalCtx = await ctxOf(original, cached);
      const sameFirst = await verify(sameBytes, cached);
      assert.equal(sameFirst.code, expected.sameBytes, "the non-canonical variant gets the uncached answer");
      if (sameFirst.code === "ok") {
        assert.notEqual(sameFirst.context!.claims["ctx"], originalCtx, "verified on its own, not answered from the original's entry");
        assert.equal((await verify(sameBytes, cached)).context!.claims["ctx"], sameFirst.context!.claims["ctx"], "then cached under its own string");
      }
      assert.equal((await verify(otherBytes, cached)).code, "ERR_AUTH_TOKEN_INVALID");
      assert.equal((await verify(otherBytes, cached)).code, "ERR_AUTH_TOKEN_INVALID");
      assert.equal(await ctxOf(original, cached), originalCtx, "the original is still its own hit");

      // The same through the app.
      assert.equal((await viaHttp(app, original)).code, "ok");
      assert.equal((await viaHttp(app, sameBytes)).code, expected.sameBytes);
      assert.deepEqual(await viaHttp(app, otherBytes), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      assert.equal(await viaSocket(app, otherBytes), "ERR_AUTH_TOKEN_INVALID");
      assert.equal(stats(app).entries, expected.sameBytes === "ok" ? 2 : 1);
      assert.equal(stats(app).hits, 0);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("a forged token reusing a cached token's signature (so the cache's lookup key, the signature's tail, is the same) is verified on its own and refused, and the genuine entry survives it", async () => {
    const key = await makeKey("RS256");
    const server = await jwksServer([key]);
    const app = await openApp(configOf(server));
    try {
      await prefetched(app);
      const original = await token(key, { roles: ["user"] });
      const [head, payload, signature] = original.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
      const forged = `${head}.${Buffer.from(JSON.stringify({ ...claims, roles: ["admin"] })).toString("base64url")}.${signature}`;
      assert.equal(forged.slice(-48), original.slice(-48), "premise: same lookup key");
      assert.equal((await viaHttp(app, original)).code, "ok");
      const before = stats(app);
      assert.deepEqual(await viaHttp(app, forged), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      assert.equal(await viaSocket(app, forged), "ERR_AUTH_TOKEN_INVALID");
      assert.equal(stats(app).hits, before.hits, "the forged token was never answered from the cache");
      assert.equal((await viaHttp(app, original)).code, "ok");
      assert.equal(stats(app).hits, before.hits + 1, "the genuine token is still a hit");
      assert.equal(stats(app).entries, before.entries);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("a token cached under config A (audience A) is not accepted under config B (same issuer and JWKS, audience B), through verifyOidcToken and through an app configured with B", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const configA = configOf(server, { audience: "app-a" });
    const configB = configOf(server, { audience: "app-b" });
    const appB = await openApp(configOf(server, { audience: "app-b" }));
    try {
      const t = await token(key, { aud: "app-a" });
      assert.equal(await ctxOf(t, configA), await ctxOf(t, configA), "cached under A");
      const underB = await verify(t, configB);
      assert.equal(underB.code, "ERR_AUTH_TOKEN_INVALID");
      assert.match(underB.reason ?? "", /aud was "app-a"/);
      assert.deepEqual(await viaHttp(appB, t), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      assert.equal(await viaSocket(appB, t), "ERR_AUTH_TOKEN_INVALID");
      assert.equal(stats(appB).entries, 0);
      assert.equal((await verify(t, configA)).code, "ok", "still fine under A");
    } finally {
      await appB.close();
      await server.close();
    }
  });
});

describe("token cache: bounds", () => {
  it("maxEntries 3 with 5 tokens → never more than 3 entries, the 2 oldest evicted (counted); the oldest is verified again, the newest is a hit", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const app = await openApp(configOf(server, { tokenCache: { maxEntries: 3 } }));
    try {
      await prefetched(app);
      const tokens = await Promise.all(Array.from({ length: 5 }, () => token(key)));
      for (const each of tokens) {
        assert.equal((await viaHttp(app, each)).code, "ok");
        assert.ok(stats(app).entries <= 3, `entries ${stats(app).entries}`);
      }
      assert.deepEqual({ entries: stats(app).entries, evictions: stats(app).evictions, misses: stats(app).misses, hits: stats(app).hits }, { entries: 3, evictions: 2, misses: 5, hits: 0 });
      assert.equal((await viaHttp(app, tokens[0]!)).code, "ok");
      assert.equal(stats(app).misses, 6, "the oldest was evicted: verified again");
      assert.equal(stats(app).evictions, 3);
      assert.equal((await viaHttp(app, tokens[4]!)).code, "ok");
      assert.equal(stats(app).hits, 1, "the newest is still cached");
      assert.equal(stats(app).entries, 3);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("maxBytes small (2500) → the byte count never exceeds it, older entries are evicted; a token too big for the cache on its own is not cached (and evicts nothing)", async () => {
    const maxBytes = 2_500;
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const app = await openApp(configOf(server, { tokenCache: { maxBytes } }));
    try {
      await prefetched(app);
      for (let i = 0; i < 8; i++) {
        assert.equal((await viaHttp(app, await token(key))).code, "ok");
        const now = stats(app);
        assert.ok(now.bytes <= maxBytes, `bytes ${now.bytes} <= ${maxBytes}`);
        assert.ok(now.entries >= 1);
      }
      const filled = stats(app);
      assert.ok(filled.evictions > 0, "entries were evicted to stay within maxBytes");
      assert.ok(filled.entries < 8);

      const big = await token(key, { blob: "x".repeat(maxBytes) });
      assert.equal((await viaHttp(app, big)).code, "ok");
      assert.equal((await viaHttp(app, big)).code, "ok");
      const after = stats(app);
      assert.equal(after.entries, filled.entries, "not cached, nothing evicted for it");
      assert.equal(after.evictions, filled.evictions);
      assert.equal(after.hits, filled.hits, "verified both times");
      assert.ok(after.bytes <= maxBytes);
    } finally {
      await app.close();
      await server.close();
    }
  });

  it("tokenCache: false → no cache: getHealth().tokenCache is undefined, and verifyOidcToken verifies the same token again each time", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    const config = configOf(server, { tokenCache: false });
    const app = await openApp(configOf(server, { tokenCache: false }));
    try {
      await prefetched(app);
      const t = await token(key);
      assert.notEqual(await ctxOf(t, config), await ctxOf(t, config));
      assert.equal((await viaHttp(app, t)).code, "ok");
      assert.equal((await viaHttp(app, t)).code, "ok");
      assert.equal(await viaSocket(app, t), "ok");
      assert.equal(health(app).tokenCache, undefined);
    } finally {
      await app.close();
      await server.close();
    }
  });
});

describe("token cache: failures are not cached", () => {
  it("an invalid token stays invalid (no entry, no hit); a token refused because the keys were unavailable is accepted once they are back, on verifyOidcToken, HTTP and Socket.IO", async () => {
    const key = await makeKey("ES256");
    const server = await jwksServer([key]);
    server.mode = "500";
    const config = configOf(server);
    const app = await openApp(configOf(server));
    try {
      const { retryAt } = await prefetched(app);
      const t = await token(key);
      assert.equal((await verify(t, config)).code, "ERR_AUTH_UNAVAILABLE");
      assert.deepEqual(await viaHttp(app, t), { code: "ERR_AUTH_UNAVAILABLE", status: 503 });
      assert.equal(await viaSocket(app, t), "ERR_AUTH_UNAVAILABLE");
      assert.equal(stats(app).entries, 0);

      server.mode = "ok";
      await sleepUntil(retryAt! + 50);
      assert.equal((await verify(t, config)).code, "ok");
      assert.equal((await viaHttp(app, t)).code, "ok");
      assert.equal(await viaSocket(app, t), "ok");
      assert.equal(stats(app).entries, 1);

      const wrongAudience = await token(key, { aud: "someone-else" });
      for (let i = 0; i < 3; i++) {
        assert.equal((await verify(wrongAudience, config)).code, "ERR_AUTH_TOKEN_INVALID");
        assert.deepEqual(await viaHttp(app, wrongAudience), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      }
      const forged = await token(await makeKey("ES256", key.kid));
      for (let i = 0; i < 3; i++) assert.deepEqual(await viaHttp(app, forged), { code: "ERR_AUTH_TOKEN_INVALID", status: 401 });
      const final = stats(app);
      assert.equal(final.entries, 1, "only the accepted token is cached");
      assert.equal(final.hits, 1, "the socket handshake after the HTTP success; none for the refused tokens");
    } finally {
      await app.close();
      await server.close();
    }
  });
});
