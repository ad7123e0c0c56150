/**
 * redisDpopReplayStore against a real redis-server, through two real
 * IOServer apps (two nodes behind one public origin) sharing it: a proof
 * accepted by one node is refused as replayed by the other; the key is the
 * documented one and expires with the proof's window; Redis down answers 503
 * `ERR_AUTH_UNAVAILABLE`, never a 401 and never an acceptance.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { DPOP_REPLAY_PREFIX, redisDpopReplayStore, type OidcReplayRedisClient } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import type { ServerBase } from "../helpers/app.js";
import { proof as signProof, proofKey, type ProofKey } from "../helpers/dpop.js";
import { callApi, startDpopApp } from "../helpers/dpopApp.js";
import { fastFailingClient, redisAvailable, restartRedis, runPrefix, startRedis, stopRedis, type RedisServer } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";
const ORIGIN = "https://api.cluster.test";
const HTU = `${ORIGIN}/api/me`;
const INVALID_PROOF = /^DPoP error="invalid_dpop_proof", error_description="[^"]+", algs="[^"]+", Bearer$/;

describe("redisDpopReplayStore (real redis-server, two nodes)", { skip }, () => {
  let redis: RedisServer;
  let clientA: Redis;
  let clientB: Redis;
  let issuer: TestIssuer;
  let a: ServerBase;
  let b: ServerBase;
  let key: ProofKey;
  let token: string;
  const prefix = runPrefix();
  const MAX_AGE = 30;
  const TOLERANCE = 5;

  before(async () => {
    redis = await startRedis();
    clientA = await fastFailingClient(redis);
    clientB = await fastFailingClient(redis);
    issuer = await createTestIssuer();
    const dpop = (client: Redis) => ({ publicOrigin: ORIGIN, maxAge: MAX_AGE, clockTolerance: TOLERANCE, replayStore: redisDpopReplayStore(client, { prefix, timeout: 1_000 }) });
    a = await startDpopApp({ ...issuer.config, dpop: dpop(clientA) });
    b = await startDpopApp({ ...issuer.config, dpop: dpop(clientB) });
    key = await proofKey();
    token = await issuer.mint({ sub: "rita", cnf: { jkt: key.jkt } });
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await issuer?.close();
    clientA?.disconnect();
    clientB?.disconnect();
    await redis?.stop();
  });

  const headers = (proof: string) => ({ authorization: `DPoP ${token}`, dpop: proof });
  const keysOf = async (): Promise<string[]> => (await clientA.keys(`${prefix}*`)).sort();

  it("an ioredis client fits the structural client type (no ioredis import in the package)", () => {
    const typed: OidcReplayRedisClient = clientA; // type-checked by `tsc -p test/tsconfig.json`
    assert.equal(typeof typed.set, "function");
    assert.equal(DPOP_REPLAY_PREFIX, "ioserver-oidc:dpop-jti:");
  });

  it("a proof accepted by node A is refused as replayed by node B (and by A); a fresh proof still passes on B", async () => {
    const jti = `jti-${Date.now()}`;
    const proof = await signProof(key, { htu: HTU, token, jti });
    const first = await callApi(a, headers(proof));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.dpopJkt, key.jkt);

    for (const [name, app] of [["B", b], ["A", a]] as const) {
      const again = await callApi(app, headers(proof));
      assert.equal(again.status, 401, `${name}: ${JSON.stringify(again.body)}`);
      assert.equal(again.body.code, "ERR_AUTH_DPOP_INVALID");
      assert.match(again.headers.get("www-authenticate") ?? "", INVALID_PROOF);
      assert.ok(app.logs.some((line) => line.text.includes("was already used")), `${name} logged the replay`);
    }
    const fresh = await callApi(b, headers(await signProof(key, { htu: HTU, token })));
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
  });

  it("the key is the documented one (prefix + hash of thumbprint and jti, nothing the client sent as such) and lives as long as the proof's window", async () => {
    await clientA.flushall();
    const jti = `ttl-${Date.now()}`;
    const res = await callApi(b, headers(await signProof(key, { htu: HTU, token, jti })));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const expected = prefix + createHash("sha256").update(`${key.jkt}.${jti}`, "utf8").digest("base64url");
    assert.deepEqual(await keysOf(), [expected]);
    assert.ok(!expected.includes(jti));
    const pttl = await clientA.pttl(expected);
    assert.ok(pttl > 0 && pttl <= (MAX_AGE + 2 * TOLERANCE) * 1000, `PTTL ${pttl} ms within the proof window and another node's clock tolerance, ${MAX_AGE + 2 * TOLERANCE} s`);
    assert.ok(pttl > (MAX_AGE + 2 * TOLERANCE - 10) * 1000, `PTTL ${pttl} ms: about the whole window (the proof was fresh)`);
    assert.equal(await clientA.get(expected), "1");
  });

  it("a refused proof (wrong htu, bad ath) writes nothing to Redis", async () => {
    await clientA.flushall();
    const wrongUrl = await callApi(a, headers(await signProof(key, { htu: `${ORIGIN}/elsewhere`, token })));
    assert.equal(wrongUrl.status, 401);
    const wrongToken = await callApi(a, headers(await signProof(key, { htu: HTU, token: "another token" })));
    assert.equal(wrongToken.status, 401);
    assert.deepEqual(await keysOf(), []);
  });

  it("Redis down: 503 ERR_AUTH_UNAVAILABLE with Retry-After and no challenge, not 401; back to normal once Redis is back", async () => {
    await stopRedis(redis, clientA);
    await waitFor("client B noticed", () => clientB.status !== "ready", 5_000, 20);
    try {
      for (const app of [a, b]) {
        const res = await callApi(app, headers(await signProof(key, { htu: HTU, token })));
        assert.equal(res.status, 503, JSON.stringify(res.body));
        assert.equal(res.body.code, "ERR_AUTH_UNAVAILABLE");
        assert.equal(res.headers.get("www-authenticate"), null);
        assert.ok(res.headers.get("retry-after") !== null);
        assert.ok(!JSON.stringify(res.body).includes(token));
      }
    } finally {
      await restartRedis(redis, clientA);
      await waitFor("client B reconnected", () => clientB.status === "ready", 10_000, 20);
    }
    const res = await callApi(a, headers(await signProof(key, { htu: HTU, token })));
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });
});

describe("redisDpopReplayStore: the key expires with the proof window (real redis-server)", { skip }, () => {
  let redis: RedisServer;
  let client: Redis;

  before(async () => {
    redis = await startRedis();
    client = await fastFailingClient(redis);
  });
  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it("claims once, with the default prefix; the key is gone from Redis once its TTL has run out, and can be claimed again", async () => {
    const store = redisDpopReplayStore(client);
    assert.equal(await store.claim("k1", 300), true);
    assert.equal(await store.claim("k1", 300), false);
    assert.deepEqual(await client.keys("*"), [`${DPOP_REPLAY_PREFIX}k1`]);
    const pttl = await client.pttl(`${DPOP_REPLAY_PREFIX}k1`);
    assert.ok(pttl > 0 && pttl <= 300, `PTTL ${pttl}`);
    await waitFor("the key expired in Redis", async () => (await client.exists(`${DPOP_REPLAY_PREFIX}k1`)) === 0, 5_000, 20);
    assert.equal(await store.claim("k1", 300), true);
  });

  it("options are validated", () => {
    assert.throws(() => redisDpopReplayStore({} as OidcReplayRedisClient), /redisDpopReplayStore: client must have a set\(\) method/);
    assert.throws(() => redisDpopReplayStore(client, { prefix: 5 as unknown as string }), /prefix/);
    assert.throws(() => redisDpopReplayStore(client, { timeout: 0 }), /timeout/);
  });
});
