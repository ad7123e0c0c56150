/**
 * The replay stores of back-channel logout: the in-memory default, and the
 * Redis store against a real redis-server (shared by two "nodes", then down).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { BACKCHANNEL_LOGOUT_EVENT, MemoryReplayStore, redisReplayStore, type OidcReplayRedisClient } from "../../src/index.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { redisAvailable, startRedis, type RedisServer } from "../helpers/redis.js";
import { disconnectedWithin, startLogoutApp, type LogoutApp } from "../helpers/logoutApp.js";

describe("MemoryReplayStore", () => {
  test("a key is claimed once while it lives, and again once it expired", async () => {
    const store = new MemoryReplayStore();
    assert.equal(await store.claim("a", 60_000), true);
    assert.equal(await store.claim("a", 60_000), false);
    assert.equal(await store.claim("b", 60_000), true);
    assert.equal(await store.claim("short", 1), true);
    await sleep(20);
    assert.equal(await store.claim("short", 60_000), true, "expired keys can be claimed again");
    assert.equal(await store.claim("short", 60_000), false);
  });

  test("expired keys are pruned on the next claim, without timers", async () => {
    const store = new MemoryReplayStore();
    for (let i = 0; i < 5; i++) await store.claim(`k${i}`, 1);
    await sleep(20);
    await store.claim("fresh", 60_000);
    assert.equal(store.size, 1);
  });

  test("the size is bounded: a full store refuses new claims rather than forget a key still in its time, and takes them again once keys expire", async () => {
    const store = new MemoryReplayStore({ maxEntries: 3 });
    for (const key of ["k1", "k2", "k3"]) assert.equal(await store.claim(key, 60_000), true);
    await assert.rejects(store.claim("k4", 60_000), /the replay store is full/);
    assert.equal(store.size, 3);
    for (const key of ["k1", "k2", "k3"]) assert.equal(await store.claim(key, 60_000), false, `${key} is still remembered: its replay is refused`);
    const short = new MemoryReplayStore({ maxEntries: 2 });
    assert.equal(await short.claim("long", 60_000), true);
    assert.equal(await short.claim("brief", 1), true);
    await sleep(20);
    assert.equal(await short.claim("next", 60_000), true, "an expired key behind a live one makes room");
    assert.equal(await short.claim("long", 60_000), false);
  });

  test("options are validated", () => {
    assert.throws(() => new MemoryReplayStore({ maxEntries: 0 }), TypeError);
    assert.throws(() => new MemoryReplayStore({ maxEntries: 1.5 }), TypeError);
  });
});

describe("redisReplayStore (real redis-server)", { skip: !redisAvailable() && "redis-server is not installed" }, () => {
  let redis: RedisServer;
  let nodeA: Redis;
  let nodeB: Redis;

  before(async () => {
    redis = await startRedis();
    // Fail fast while disconnected instead of queueing commands.
    const options = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 };
    nodeA = new Redis(redis.port, "127.0.0.1", options);
    nodeB = new Redis(redis.port, "127.0.0.1", options);
    await Promise.all([nodeA.connect(), nodeB.connect()]);
  });
  after(async () => {
    nodeA?.disconnect();
    nodeB?.disconnect();
    await redis?.stop();
  });

  test("SET NX PX: claimed once across two nodes, with the TTL and the prefix", async () => {
    const a = redisReplayStore(nodeA);
    const b = redisReplayStore(nodeB);
    const key = randomUUID();
    assert.equal(await a.claim(key, 60_000), true);
    assert.equal(await b.claim(key, 60_000), false);
    assert.equal(await a.claim(key, 60_000), false);
    const ttl = await nodeA.pttl(`ioserver-oidc:logout-jti:${key}`);
    assert.ok(ttl > 0 && ttl <= 60_000, `PTTL ${ttl}`);

    const custom = redisReplayStore(nodeA, { prefix: "app1:" });
    assert.equal(await custom.claim(key, 60_000), true, "another prefix is another namespace");
    assert.equal(await nodeA.exists(`app1:${key}`), 1);
  });

  test("keys expire in Redis", async () => {
    const store = redisReplayStore(nodeA);
    const key = randomUUID();
    assert.equal(await store.claim(key, 1), true);
    await sleep(30);
    assert.equal(await store.claim(key, 60_000), true);
  });

  test("an unexpected reply, an error and a silent client all reject", async () => {
    const odd: OidcReplayRedisClient = { set: async () => "QUEUED" };
    await assert.rejects(redisReplayStore(odd).claim("k", 1_000), /unexpected reply/);
    const failing: OidcReplayRedisClient = { set: async () => Promise.reject(new Error("READONLY")) };
    await assert.rejects(redisReplayStore(failing).claim("k", 1_000), /READONLY/);
    const silent: OidcReplayRedisClient = { set: () => new Promise(() => undefined) };
    await assert.rejects(redisReplayStore(silent, { timeout: 50 }).claim("k", 1_000), /did not answer SET NX within 50 ms/);
    assert.throws(() => redisReplayStore({} as OidcReplayRedisClient), TypeError);
    assert.throws(() => redisReplayStore(nodeA, { timeout: 0 }), TypeError);
  });

  describe("through the logout route", () => {
    const ISSUER = "https://op.redis.test";
    const CLIENT = "redis-client";
    let key: SigningKey;
    let jwks: JwksServer;
    let app1: LogoutApp;
    let app2: LogoutApp;

    before(async () => {
      key = await makeKey("ES256");
      jwks = await startJwksServer([key.jwk]);
      const config = { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri };
      app1 = await startLogoutApp({ config, logout: { replayStore: redisReplayStore(nodeA, { timeout: 500 }) } });
      app2 = await startLogoutApp({ config, logout: { replayStore: redisReplayStore(nodeB, { timeout: 500 }) } });
    });
    after(async () => {
      await app1?.close();
      await app2?.close();
      await jwks?.close();
    });

    const iat = () => Math.floor(Date.now() / 1000);
    const logoutToken = (sub: string) =>
      sign(key, { iss: ISSUER, aud: CLIENT, iat: iat(), exp: iat() + 120, jti: randomUUID(), sub, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } });
    const accessToken = (sub: string) => sign(key, { iss: ISSUER, aud: CLIENT, sub, iat: iat(), exp: iat() + 600 });

    test("a token accepted by one node is a replay on the other; the jti lives for maxAge + 2 × tolerance + 30 s", async () => {
      const user1 = await app1.connect(await accessToken("rita"));
      const user2 = await app2.connect(await accessToken("rita"));
      const token = await logoutToken("rita");
      const first = await app1.logout(token);
      assert.equal(first.status, 200);
      await disconnectedWithin(user1);
      const replay = await app2.logout(token);
      assert.equal(replay.status, 400);
      assert.equal((JSON.parse(replay.text) as { error?: unknown }).error, "invalid_request");
      // A replay still completes the logout where it had not happened: app2 (not in a cluster with app1)
      // ends its socket whose token was issued before the logout.
      await disconnectedWithin(user2);

      const keys = await nodeA.keys("ioserver-oidc:logout-jti:*");
      const ttls = await Promise.all(keys.map((k) => nodeA.pttl(k)));
      // 300 s max age + 2 × 5 s tolerance + 30 s margin.
      assert.ok(ttls.some((ttl) => ttl > 300_000 && ttl <= 340_000), `PTTLs ${ttls.join(", ")}`);
    });

    test("Redis down: the logout is carried out anyway (200); back up: the retry is accepted again (idempotent)", async () => {
      const user = await app1.connect(await accessToken("sam"));
      const token = await logoutToken("sam");
      await redis.stop();
      try {
        const response = await app1.logout(token);
        assert.equal(response.status, 200, response.text);
        assert.equal(response.headers.get("cache-control"), "no-store");
        await disconnectedWithin(user);
        assert.ok(app1.logs.some((l) => l.level === 4 && l.text.includes("replay store failed") && l.text.includes("carried out anyway")));
      } finally {
        await redis.restart();
      }
      // The client reconnects by itself (retryStrategy); wait for it, bounded.
      const deadline = Date.now() + 8_000;
      while (nodeA.status !== "ready") {
        if (Date.now() > deadline) throw new Error(`ioredis did not reconnect (status ${nodeA.status})`);
        await sleep(50);
      }
      const retried = await app1.logout(token);
      assert.equal(retried.status, 200, "the same token is accepted once the store is back: it was never recorded");
    });
  });
});
