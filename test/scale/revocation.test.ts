/**
 * A revocation made on one node holds on every node, and on a node started
 * after it: two (then three) IOServer processes sharing a real redis-server
 * through `redisRevocationStore`, real socket.io-client connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import { BACKCHANNEL_LOGOUT_EVENT } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { redisAvailable, runPrefix, startRedis, type RedisServer } from "../helpers/redis.js";
import { nextSecond, waitFor } from "../helpers/wait.js";
import { revokedThenGone, startNode, type ScaleNode } from "./harness.js";
import { connected } from "../helpers/app.js";

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

/**
 * Two nodes on a private redis-server (some tests stop or pause it), a test
 * issuer and a plain Redis client for the test's own commands, started before
 * the suite's tests and stopped after them. Returns the suite's view of them.
 */
function twoNodes(options: { users?: boolean } = {}): () => { issuer: TestIssuer; redis: RedisServer; probe: Redis; a: ScaleNode; b: ScaleNode } {
  let state: { issuer: TestIssuer; redis: RedisServer; probe: Redis; a: ScaleNode; b: ScaleNode } | undefined;
  const nodes: ScaleNode[] = [];
  before(async () => {
    const issuer = await createTestIssuer();
    const redis = await startRedis();
    const probe = new Redis(redis.url, { lazyConnect: true });
    await probe.connect();
    const prefix = runPrefix();
    nodes.push(...(await Promise.all(["A", "B"].map((name) => startNode({ name, redisUrl: redis.url, issuer: issuer.config, ttl: 5, prefix, ...options })))));
    const [a, b] = nodes as [ScaleNode, ScaleNode];
    await waitFor("two adapter subscribers", async () => (await a.call<number>("serverCount")) === 2);
    state = { issuer, redis, probe, a, b };
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    state?.probe.disconnect();
    await state?.redis.stop();
    await state?.issuer.close();
  });
  return () => {
    if (state === undefined) throw new Error("the cluster did not start");
    return state;
  };
}

describe("revoking one user never touches another, and a disabled user is not broadcast per request (two nodes)", { skip, timeout: 120_000 }, () => {
  const cluster = twoNodes({ users: true });
  let issuer: TestIssuer;
  let probe: Redis;
  let a: ScaleNode;
  let b: ScaleNode;
  before(() => {
    ({ issuer, probe, a, b } = cluster());
  });

  /** Redis PUBLISH calls so far (INFO commandstats). */
  const publishes = async () => Number(/cmdstat_publish:calls=(\d+)/.exec(await probe.info("commandstats"))?.[1] ?? 0);

  it("disconnectUser(localId) on A reaches that user on A, never the socket on B whose sub equals the id", async () => {
    const owner = await connected(a.connect(await issuer.mint({ sub: "7" }))); // local id u-7
    const victim = await connected(b.connect(await issuer.mint({ sub: "u-7" }))); // local id u-u-7
    const ownerGone = revokedThenGone(owner);
    assert.equal(await a.call("disconnectUser", "u-7", "policy"), 1);
    await ownerGone;
    await a.call("barrier");
    assert.ok(victim.connected, "the sub equal to the revoked id is someone else");
    assert.equal(((await victim.timeout(5_000).emitWithAck("whoami", {})) as { sub: string }).sub, "u-7");
    victim.disconnect();
  });

  it("40 handshakes of a disabled user's token on two nodes: refused, and revoked a bounded number of times (not once per handshake)", async (t) => {
    const token = await issuer.mint({ sub: "zed" });
    const live = await connected(b.connect(token));
    const gone = revokedThenGone(live);
    await Promise.all([a.call("disable", "zed"), b.call("disable", "zed")]);
    const before = await publishes();
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => handshake(i % 2 === 0 ? a : b, token)));
    await gone;
    assert.ok(outcomes.every((outcome) => outcome === "ERR_USER_DISABLED"), JSON.stringify(outcomes.slice(0, 3)));
    await Promise.all([a.call("barrier"), b.call("barrier")]);
    const published = (await publishes()) - before;
    const revocations = [...(await a.logs()), ...(await b.logs())].filter((line) => /disconnected \d+ socket\(s\) of user "u-zed"/.test(line.text));
    t.diagnostic(`${revocations.length} revocation(s), ${published} Redis PUBLISH for 40 handshakes on two nodes`);
    assert.ok(revocations.length <= 2, `${revocations.length} revocations: ${JSON.stringify(revocations)}`);
    assert.ok(published <= 30, `${published} PUBLISH for 40 handshakes`);
  });
});

describe("a back-channel logout is never lost when the replay store's write times out (two nodes, Redis paused)", { skip, timeout: 120_000 }, () => {
  const cluster = twoNodes();
  let issuer: TestIssuer;
  let probe: Redis;
  let a: ScaleNode;
  let b: ScaleNode;
  before(() => {
    ({ issuer, probe, a, b } = cluster());
  });

  const post = async (node: ScaleNode, token: string) => {
    const response = await fetch(`${node.url}/oidc/backchannel-logout`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ logout_token: token }).toString(),
      signal: AbortSignal.timeout(15_000),
    });
    return response.status;
  };

  it("the jti write runs late (CLIENT PAUSE): the logout happens anyway on both nodes, the provider's retry is a replay, the tokens stay refused", async () => {
    const access = await issuer.mint({ sub: "pam" });
    const onA = await connected(a.connect(access));
    const onB = await connected(b.connect(access));
    const goneA = revokedThenGone(onA, 15_000);
    const goneB = revokedThenGone(onB, 15_000);
    const logout = await issuer.mint({ sub: "pam", jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } });
    // Writes wait 3 s: the replay store's SET NX (2 s timeout on the nodes) runs, but its answer comes too late.
    await probe.call("CLIENT", "PAUSE", "3000", "WRITE");
    assert.equal(await post(a, logout), 200, "carried out although the claim timed out");
    await Promise.all([goneA, goneB]);
    assert.equal(await post(b, logout), 400, "the retry: its jti was recorded");
    await waitFor("refused on both nodes", async () => (await handshake(a, access)) === "ERR_AUTH_REVOKED" && (await handshake(b, access)) === "ERR_AUTH_REVOKED", 10_000, 200);
    assert.ok((await a.logs()).some((line) => /replay store failed .*carried out anyway/.test(line.text)));
  });
});
