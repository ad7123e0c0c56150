/**
 * A revocation made on one node holds on every node, and on a node started
 * after it: two (then three) IOServer processes sharing a real redis-server
 * through `redisRevocationStore`, real socket.io-client connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { redisAvailable, startRedis, type RedisServer } from "../helpers/redis.js";
import { nextSecond } from "../helpers/wait.js";
import { connected, revokedThenGone, runPrefix, startNode, waitFor, type ScaleNode } from "./harness.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

/** Whether a handshake with this token succeeds on the node (the client is closed again). */
async function handshake(node: ScaleNode, token: string): Promise<string> {
  const client = node.connect(token);
  try {
    await connected(client);
    return "connected";
  } catch (error) {
    return (error as Error).message.replace(/^refused: /, "");
  } finally {
    client.disconnect();
  }
}

describe("revocations across nodes (redisRevocationStore)", { skip, timeout: 120_000 }, () => {
  let issuer: TestIssuer;
  let redis: RedisServer;
  const prefix = runPrefix();
  const nodes: ScaleNode[] = [];
  let a: ScaleNode;
  let b: ScaleNode;

  before(async () => {
    issuer = await createTestIssuer();
    redis = await startRedis(); // private: the outage test below stops it
    const started = await Promise.all(["A", "B"].map((name) => startNode({ name, redisUrl: redis.url, issuer: issuer.config, ttl: 5, prefix })));
    nodes.push(...started);
    [a, b] = started as [ScaleNode, ScaleNode];
    await waitFor("two adapter subscribers", async () => (await a.call<number>("serverCount")) === 2);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    await redis?.stop();
    await issuer?.close();
  });

  it("disconnectSubject on A: the socket on B is revoked, and the same token is refused on B and A; a later token is accepted", async () => {
    const token = await issuer.mint({ sub: "cluster-ann" });
    const onB = await connected(b.connect(token));
    const gone = revokedThenGone(onB);
    assert.equal(await a.call("disconnectSubject", "cluster-ann", { iss: issuer.issuer, reason: "bye" }), 1);
    await gone;
    await waitFor("B refuses the token", async () => (await handshake(b, token)) === "ERR_AUTH_REVOKED", 5_000, 50);
    assert.equal(await handshake(a, token), "ERR_AUTH_REVOKED");
    await nextSecond();
    assert.equal(await handshake(b, await issuer.mint({ sub: "cluster-ann" })), "connected");
  });

  it("a node started after the revocation refuses the revoked token too", async () => {
    const token = await issuer.mint({ sub: "cluster-ben", sid: "op-ben" });
    assert.equal(await handshake(a, token), "connected");
    await a.call("disconnectSessionId", "op-ben", "logged out", issuer.issuer);
    const c = await startNode({ name: "C", redisUrl: redis.url, issuer: issuer.config, ttl: 5, prefix });
    nodes.push(c);
    await waitFor("C loaded the revocations", async () => (await handshake(c, token)) === "ERR_AUTH_REVOKED", 5_000, 100);
    assert.equal(await handshake(c, await issuer.mint({ sub: "cluster-ben", sid: "op-ben-2" })), "connected");
  });

  it("Redis down: a revocation still holds on its own node at once, and reaches the other nodes when Redis returns", async () => {
    const token = await issuer.mint({ sub: "cluster-cat" });
    assert.equal(await handshake(b, token), "connected");
    await redis.stop();
    await a.call("disconnectSubject", "cluster-cat", { iss: issuer.issuer });
    assert.equal(await handshake(a, token), "ERR_AUTH_REVOKED", "the revoking node refuses at once");
    await redis.restart();
    await waitFor("B hears of it once Redis is back", async () => (await handshake(b, token)) === "ERR_AUTH_REVOKED", 20_000, 200);
  });
});
