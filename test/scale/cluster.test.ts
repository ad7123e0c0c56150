/**
 * Three IOServer nodes in separate processes sharing one real redis-server
 * (REDIS_URL from .ci/run, else a private one): sessions listed from any
 * node, revocations from any node reaching sockets on every node through
 * the Socket.IO Redis adapter, a crashed node's entries expiring.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { redisAvailable, runPrefix, startRedis, type RedisServer } from "../helpers/redis.js";
import { next, revokedThenGone, startNode, type ScaleNode } from "./harness.js";
import { connected } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";
const TTL = 2; // seconds: a crashed node's sessions vanish within ~2 s

describe("a cluster of three nodes sharing Redis", { skip, timeout: 120_000 }, () => {
  let issuer: TestIssuer;
  let redis: RedisServer | undefined;
  let redisUrl: string;
  const prefix = runPrefix();
  const nodes: ScaleNode[] = [];
  let a: ScaleNode;
  let b: ScaleNode;
  let c: ScaleNode;

  before(async () => {
    issuer = await createTestIssuer();
    if (process.env["REDIS_URL"]) redisUrl = process.env["REDIS_URL"];
    else {
      redis = await startRedis();
      redisUrl = redis.url;
    }
    const started = await Promise.all(["A", "B", "C"].map((name) => startNode({ name, redisUrl, issuer: issuer.config, ttl: TTL, prefix })));
    nodes.push(...started);
    [a, b, c] = started as [ScaleNode, ScaleNode, ScaleNode];
    // Every node subscribed to the adapter's channels.
    await waitFor("three adapter subscribers", async () => (await a.call<number>("serverCount")) === 3);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    await redis?.stop();
    await issuer?.close();
  });

  it("every namespace of every node runs on the Redis adapter (attachRedisAdapter)", async () => {
    for (const node of nodes) assert.equal(await node.call("adapter"), "RedisAdapter");
  });

  it("list() and listByUser() on A see the sockets of B and C, with node, sid and iss", async () => {
    const onB = await connected(b.connect(await issuer.mint({ sub: "lister", sid: "sid-lister-b" })));
    const onC = await connected(c.connect(await issuer.mint({ sub: "lister" })));
    const onA = await connected(a.connect(await issuer.mint({ sub: "other" })));
    try {
      await waitFor("A lists B's and C's sockets", async () => {
        const ids = new Set((await a.list()).map((record) => record.socketId));
        return ids.has(onB.id!) && ids.has(onC.id!) && ids.has(onA.id!);
      });
      const mine = (await a.call<Array<Record<string, unknown>>>("listByUser", "lister")).sort((x, y) => String(x.node).localeCompare(String(y.node)));
      assert.deepEqual(
        mine.map((record) => [record.node, record.socketId, record.sub, record.namespace, record.sid, record.iss]),
        [
          ["B", onB.id, "lister", "/chat", "sid-lister-b", issuer.issuer],
          ["C", onC.id, "lister", "/chat", undefined, issuer.issuer],
        ],
      );
      assert.ok(mine.every((record) => typeof record.connectedAt === "number" && typeof record.expiresAt === "number"));
    } finally {
      onA.disconnect();
      onB.disconnect();
      onC.disconnect();
    }
    await waitFor("sessions gone from the store when the sockets go", async () => (await a.call<unknown[]>("listByUser", "lister")).length === 0);
  });

  it("disconnectUser on A disconnects the user's sockets on B and C (oidc:revoked first), not a bystander's", async () => {
    const onB = await connected(b.connect(await issuer.mint({ sub: "mallory" })));
    const onC = await connected(c.connect(await issuer.mint({ sub: "mallory" })));
    const bystander = await connected(b.connect(await issuer.mint({ sub: "bystander" })));
    const goneB = revokedThenGone(onB);
    const goneC = revokedThenGone(onC);
    assert.equal(await a.call("disconnectUser", "mallory", "account locked"), 2, "A counts the sockets found on B and C");
    for (const gone of [await goneB, await goneC]) {
      assert.deepEqual(gone.revoked, { code: "ERR_AUTH_REVOKED", reason: "account locked" });
      assert.equal(gone.reason, "io server disconnect");
      assert.deepEqual(gone.order, ["oidc:revoked", "disconnect"]);
    }
    assert.ok(bystander.connected);
    assert.equal(((await bystander.timeout(5_000).emitWithAck("whoami", {})) as { sub?: unknown }).sub, "bystander");
    bystander.disconnect();
  });

  it("disconnectSessionId on A disconnects the sockets of that sid on C only (with and without iss)", async () => {
    const s1 = await connected(c.connect(await issuer.mint({ sub: "sam", sid: "op-session-1" })));
    const s2 = await connected(b.connect(await issuer.mint({ sub: "sam", sid: "op-session-2" })));
    assert.equal(await a.call("disconnectSessionId", "op-session-1", "logout", "https://another-issuer.example"), 0, "another issuer's sid");
    assert.ok(s1.connected);
    const gone = revokedThenGone(s1);
    assert.equal(await a.call("disconnectSessionId", "op-session-1", "logout", issuer.issuer), 1);
    assert.deepEqual((await gone).revoked, { code: "ERR_AUTH_REVOKED", reason: "logout" });
    assert.ok(s2.connected, "the same sub's other session stays");
    const gone2 = revokedThenGone(s2);
    assert.equal(await a.call("disconnectSessionId", "op-session-2"), 1);
    await gone2;
  });

  it("disconnectSocket on A finds a socket of B in the store and disconnects it", async () => {
    const onB = await connected(b.connect(await issuer.mint({ sub: "one-socket" })));
    await waitFor("A sees it", async () => (await a.list()).some((record) => record.socketId === onB.id));
    const gone = revokedThenGone(onB);
    assert.equal(await a.call("disconnectSocket", onB.id, "bye"), true);
    assert.deepEqual((await gone).revoked, { code: "ERR_AUTH_REVOKED", reason: "bye" });
    assert.equal(await a.call("disconnectSocket", "no-such-socket"), false);
  });

  it("a crashed node's sessions expire after the TTL; the others' stay", async () => {
    const d = await startNode({ name: "D", redisUrl, issuer: issuer.config, ttl: TTL, prefix });
    nodes.push(d);
    const onD = await connected(d.connect(await issuer.mint({ sub: "doomed" })));
    const onB = await connected(b.connect(await issuer.mint({ sub: "survivor" })));
    await waitFor("A lists D's socket", async () => (await a.list()).some((record) => record.socketId === onD.id));
    const dropped = next(onD, "disconnect");
    await d.kill("SIGKILL"); // no clean-up: D's sessions stay in Redis until their TTL
    await dropped;
    assert.equal(d.exit?.signal, "SIGKILL");
    // Outlive several heartbeats of the live nodes, and D's TTL.
    await waitFor("D's session expired", async () => !(await a.list()).some((record) => record.node === "D"), 20_000, 250);
    assert.ok((await a.list()).some((record) => record.socketId === onB.id), "B's session is kept alive by B's heartbeat");
    assert.deepEqual(await a.call("listByUser", "doomed"), []);
    onB.disconnect();
  });

  it("no node crashed", () => {
    for (const node of nodes) if (node.name !== "D") assert.equal(node.exit, undefined, `node ${node.name} exited`);
  });
});
