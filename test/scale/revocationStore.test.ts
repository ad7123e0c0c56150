/**
 * redisRevocationStore as the README sets it up: one ioredis client made with
 * `enableOfflineQueue: false`, no `subscriber` (the store makes its own). Two
 * apps in this process share a real redis-server: a revocation on one holds
 * on the other, including for a socket already connected there.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { OidcSessionManager, redisRevocationStore } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { next, outcome, startApp, type TestApp } from "../helpers/app.js";
import { redisAvailable, runPrefix, startRedis, type RedisServer } from "../helpers/redis.js";
import { sleep } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

describe("redisRevocationStore with the README's client (offline queue off, no subscriber given)", { skip, timeout: 60_000 }, () => {
  let issuer: TestIssuer;
  let redis: RedisServer;
  const clients: Redis[] = [];
  const apps: TestApp[] = [];

  before(async () => {
    issuer = await createTestIssuer();
    redis = await startRedis();
    const prefix = runPrefix();
    for (let i = 0; i < 2; i++) {
      const client = new Redis(redis.url, { enableOfflineQueue: false });
      client.on("error", () => undefined);
      await once(client, "ready");
      clients.push(client);
      const manager = OidcSessionManager.configure({ revocationStore: redisRevocationStore({ client, prefix }) });
      apps.push(await startApp({ config: issuer.config, managers: { session: manager } }));
    }
  });

  after(async () => {
    for (const app of apps) {
      await (app.appHandle["session"] as OidcSessionManager).stop(); // closes the store and its own subscriber
      await app.close();
    }
    for (const client of clients) client.disconnect();
    await redis?.stop();
    await issuer?.close();
  });

  it("a revocation on the first app refuses the token on the second and ends its live socket there", async () => {
    const [first, second] = apps as [TestApp, TestApp];
    await sleep(300); // the stores' own subscriber connections come up
    const token = await issuer.mint({ sub: "readme" });
    const result = await outcome(second.connect("chat", { auth: { token } }));
    assert.ok(result.connected, "connected on the second app");
    const revoked = next<{ code: string }>(result.socket, "oidc:revoked", 8_000);
    await (first.appHandle["session"] as OidcSessionManager).disconnectSubject("readme", { iss: issuer.issuer });
    assert.equal((await revoked).code, "ERR_AUTH_REVOKED", "the second app ends its socket when it hears of the revocation");
    const again = await outcome(second.connect("chat", { auth: { token } }));
    assert.equal(again.connected ? "connected" : again.message, "ERR_AUTH_REVOKED");
  });
});
