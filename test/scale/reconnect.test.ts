/**
 * A Redis that restarts empty gets this node's sessions back at once, even
 * when the node made no store call during the outage (so never noticed it):
 * the store tells the session manager that its client reconnected. A real
 * redis-server is stopped and started again on the same port; the app, its
 * socket and the ioredis client are real.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { OidcSessionManager, redisSessionStore } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { outcome, startApp, type TestApp } from "../helpers/app.js";
import { fastFailingClient, redisAvailable, restartRedis, runPrefix, startRedis, stopRedis, type RedisServer } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

describe("a restarted Redis gets this node's sessions back at once", { skip, timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let redis: RedisServer;
  let client: Redis;
  let app: TestApp;

  before(async () => {
    issuer = await createTestIssuer();
    redis = await startRedis();
    client = await fastFailingClient(redis);
  });
  after(async () => {
    await app?.close();
    client?.disconnect();
    await redis?.stop();
    await issuer?.close();
  });

  it("the store reports the reconnection, and the manager writes its sessions back long before its next heartbeat", async () => {
    // ttl 60 s: the next heartbeat is 20 s away, so only the reconnection can bring the session back within the wait below.
    const store = redisSessionStore({ client, prefix: runPrefix(), ttl: 60 });
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ store }) } });
    const session = app.appHandle["session"] as OidcSessionManager;
    const result = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "stays" }) } }));
    assert.ok(result.connected);
    const socketId = result.socket.id;
    await waitFor("the session in Redis", async () => (await store.list()).some((record) => record.socketId === socketId), 5_000, 20);

    // A second listener, to see the store's own report (and that it comes once per reconnection).
    let reports = 0;
    const stop = store.onReconnect(() => reports++);

    await stopRedis(redis, client); // no store call meanwhile: the manager does not notice the outage
    await restartRedis(redis, client); // empty: no persistence
    assert.equal(reports, 1, "one report for the reconnection");

    await waitFor("the session written back", async () => (await store.list()).some((record) => record.socketId === socketId), 5_000, 50);
    assert.equal(session.degraded, false);

    stop();
    result.socket.disconnect();
  });
});
