/**
 * Redis stopped mid-test, then restarted: three nodes in separate processes
 * on a private redis-server this test controls. While Redis is down new
 * sockets still authenticate on every node, revocations still work on the
 * node they are called on, nothing crashes and each node logs the outage
 * once; when Redis is back every node writes its live sessions back (the
 * registry heals) and cluster-wide revocation works again.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { redisAvailable, runPrefix, startRedis, type RedisServer } from "../helpers/redis.js";
import { revokedThenGone, startNode, type ScaleNode } from "./harness.js";
import { connected } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";
const OUTAGE = /Redis unavailable/;
const RECOVERY = /Redis available again/;

describe("Redis outage and recovery", { skip, timeout: 120_000 }, () => {
  let issuer: TestIssuer;
  let redis: RedisServer;
  const nodes: ScaleNode[] = [];
  let a: ScaleNode;
  let b: ScaleNode;
  /** Sockets that must be listed once the registry heals, by node. */
  const live = new Map<string, ClientSocket>();

  const linesOf = async (node: ScaleNode, pattern: RegExp) => (await node.logs()).filter((line) => pattern.test(line.text));

  before(async () => {
    issuer = await createTestIssuer();
    redis = await startRedis();
    const prefix = runPrefix(); // one prefix for all three: they form one cluster
    const started = await Promise.all(["A", "B", "C"].map((name) => startNode({ name, redisUrl: redis.url, issuer: issuer.config, ttl: 3, prefix })));
    nodes.push(...started);
    [a, b] = started as [ScaleNode, ScaleNode, ScaleNode]; // C is only in `nodes`: no test talks to it directly
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    await redis?.stop();
    await issuer?.close();
  });

  it("Redis stopped: new sockets still authenticate on every node, revocation works locally, one outage line per node, no crash", async () => {
    // Before: a socket on each node.
    for (const node of nodes) live.set(`${node.name}-before`, await connected(node.connect(await issuer.mint({ sub: `before-${node.name}` }))));
    await waitFor("A lists everyone", async () => (await a.list()).length === 3);

    await redis.stop();
    await waitFor("every node noticed (heartbeat)", async () => (await Promise.all(nodes.map((node) => node.stats()))).every((stats) => stats.degraded), 15_000);

    // New sockets authenticate on every node, more than once.
    for (const node of nodes) {
      for (const i of [1, 2]) live.set(`${node.name}-during-${i}`, await connected(node.connect(await issuer.mint({ sub: `during-${node.name}` }))));
    }
    // Node-local listing meanwhile.
    const onA = (await a.list()).map((record) => record.sub).sort();
    assert.deepEqual(onA, ["before-A", "during-A", "during-A"]);

    // A revocation on B reaches B's own sockets.
    const victim = await connected(b.connect(await issuer.mint({ sub: "revoked-during-outage" })));
    const gone = revokedThenGone(victim);
    assert.equal(await b.call("disconnectUser", "revoked-during-outage", "outage"), 1);
    assert.deepEqual((await gone).revoked, { code: "ERR_AUTH_REVOKED", reason: "outage" });

    // Broadcasts through the adapter while Redis is down do not crash anything.
    assert.equal(await a.call("disconnectUser", "nobody-at-all"), 0);

    for (const node of nodes) {
      assert.equal(node.exit, undefined, `node ${node.name} is alive`);
      const outage = await linesOf(node, OUTAGE);
      assert.equal(outage.length, 1, `node ${node.name} logged the outage once: ${JSON.stringify(outage)}`);
      assert.equal(outage[0]!.level, 4);
    }
  });

  it("Redis restarted: the registry heals, recovery is logged, cluster-wide revocation works again", async () => {
    await redis.restart(); // empty: no persistence, every session key is gone
    const expected = new Set([...live.values()].filter((socket) => socket.connected).map((socket) => socket.id!));
    assert.equal(expected.size, 9);
    await waitFor(
      "A lists the live sockets of every node again",
      async () => {
        const listed = new Set((await a.list()).map((record) => record.socketId));
        return [...expected].every((id) => listed.has(id));
      },
      20_000,
      200,
    );
    for (const node of nodes) {
      await waitFor(`node ${node.name} back to shared sessions`, async () => !(await node.stats()).degraded);
      // Logged once neither the session store nor the adapter's publisher is down (the publisher is probed with PING).
      await waitFor(`node ${node.name} logged the recovery`, async () => (await linesOf(node, RECOVERY)).length > 0);
      const recovery = await linesOf(node, RECOVERY);
      assert.equal(recovery.length, 1, `node ${node.name} logged the recovery once: ${JSON.stringify(recovery)}`);
      assert.equal(recovery[0]!.level, 6);
      assert.equal((await linesOf(node, OUTAGE)).length, 1, `node ${node.name}: still one outage line`);
    }

    // The adapter re-subscribed on every node (ioredis does it by itself).
    await waitFor("three adapter subscribers again", async () => (await a.call<number>("serverCount")) === 3, 20_000, 200);
    const target = live.get("B-during-1")!;
    const also = live.get("B-during-2")!;
    const gone = [revokedThenGone(target), revokedThenGone(also)];
    assert.equal(await a.call("disconnectUser", "during-B", "back"), 2, "A counts B's two sockets");
    for (const result of await Promise.all(gone)) assert.deepEqual(result.revoked, { code: "ERR_AUTH_REVOKED", reason: "back" });
    assert.ok(live.get("C-during-1")!.connected);

    for (const node of nodes) {
      assert.equal(node.exit, undefined, `node ${node.name} is alive`);
      assert.equal((await linesOf(node, OUTAGE)).length, 1, `node ${node.name}: one outage line in all`);
      assert.equal((await linesOf(node, RECOVERY)).length, 1, `node ${node.name}: one recovery line in all`);
    }
  });
});
