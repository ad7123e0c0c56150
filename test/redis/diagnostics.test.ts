/**
 * The `backend` diagnostics channel through a real Redis outage: an app
 * whose session manager keeps its sessions in a private redis-server, which
 * is stopped and started again. One `degraded` message when the outage is
 * noticed, one `healed` when the sessions are written back.
 */
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { OIDC_CHANNELS, OidcSessionManager, redisSessionStore, type OidcBackendMessage } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { connectedTo, startApp, type TestApp } from "../helpers/app.js";
import { fastFailingClient, redisAvailable, runPrefix, startRedis, stopRedis, type RedisServer } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

describe("the backend channel: a Redis outage and its end", { skip, timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let redis: RedisServer;
  let client: Redis;
  let app: TestApp;
  const heard: OidcBackendMessage[] = [];
  const listener = (message: unknown) => heard.push(message as OidcBackendMessage);

  before(async () => {
    subscribe(OIDC_CHANNELS.backend, listener);
    issuer = await createTestIssuer();
    redis = await startRedis();
    client = await fastFailingClient(redis);
  });
  after(async () => {
    unsubscribe(OIDC_CHANNELS.backend, listener);
    await app?.close();
    client?.disconnect();
    await redis?.stop();
    await issuer?.close();
  });

  it("degraded once when the session store fails, healed once when the sessions are written back", async () => {
    const store = redisSessionStore({ client, prefix: runPrefix(), ttl: 60 });
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ store, storeTimeout: 500 }) } });
    const first = await connectedTo(app, "chat", await issuer.mint({ sub: "backend-1" }));
    await waitFor("the session in Redis", async () => (await store.list()).some((record) => record.socketId === first.id), 5_000, 20);
    assert.deepEqual(heard, [], "nothing while Redis is fine");

    await stopRedis(redis, client);
    // A store call during the outage: the new socket is admitted, its session cannot be written.
    const second = await connectedTo(app, "chat", await issuer.mint({ sub: "backend-2" }));
    await waitFor("the outage reported", () => heard.length > 0, 10_000, 20);
    assert.deepEqual(heard, [{ backend: "redis", source: "session store", state: "degraded" }]);

    // More failures during the same outage add nothing.
    const third = await connectedTo(app, "chat", await issuer.mint({ sub: "backend-3" }));
    await redis.restart();
    await waitFor("the recovery reported", () => heard.length > 1, 15_000, 20);
    assert.deepEqual(heard, [
      { backend: "redis", source: "session store", state: "degraded" },
      { backend: "redis", source: "session store", state: "healed" },
    ]);
    await waitFor("the sessions written back", async () => (await store.list()).length === 3, 5_000, 50);
    for (const socket of [first, second, third]) socket.disconnect();
  });
});
