/**
 * redisSessionStore against a real redis-server (ioredis client): keys,
 * TTLs, lazy pruning, heartbeat re-writes, isolation by prefix, failures.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { redisSessionStore, type OidcSessionRecord, type RedisSessionStoreClient } from "../../src/index.js";
import { fastFailingClient, redisAvailable, restartRedis, runPrefix, startRedis, stopRedis, type RedisServer } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

function record(socketId: string, userId: string, sub = userId, extra: Partial<OidcSessionRecord> = {}): OidcSessionRecord {
  return { socketId, userId, sub, namespace: "/chat", connectedAt: 1_000, expiresAt: 2_000, iss: OP, ...extra };
}

const OP = "https://op";
/** The documented subject index key: the issuer's length, the issuer, the sub. */
const subjectIndex = (prefix: string, sub: string, iss = OP) => `${prefix}subject:${iss.length}:${iss}:${sub}`;

describe("redisSessionStore", { skip }, () => {
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

  it("an ioredis client fits the structural client type (no ioredis import in the package)", () => {
    const typed: RedisSessionStoreClient = client; // type-checked by `tsc -p test/tsconfig.json`
    assert.equal(typeof typed.multi, "function");
  });

  it("add, list, listByUser (user id), listBySubject (issuer and sub), get, remove — with the documented keys and TTLs", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix, ttl: 30, nodeId: "node-1" });
    assert.equal(store.heartbeatInterval, 10_000);
    await store.add(record("s1", "u1", "sub-1", { sid: "op-1", iss: "https://op" }));
    await store.add(record("s2", "u1", "sub-1"));
    await store.add(record("s3", "u2", "sub-2"));

    const all = (await store.list()).sort((x, y) => x.socketId.localeCompare(y.socketId));
    assert.deepEqual(all.map((r) => [r.socketId, r.node]), [["s1", "node-1"], ["s2", "node-1"], ["s3", "node-1"]]);
    assert.equal(all[0]!.sid, "op-1");
    assert.equal(all[0]!.iss, "https://op");
    assert.deepEqual((await store.listByUser("u1")).map((r) => r.socketId).sort(), ["s1", "s2"]);
    assert.deepEqual(await store.listByUser("sub-2"), [], "a sub is not a user id");
    assert.deepEqual((await store.listBySubject(OP, "sub-2")).map((r) => r.socketId), ["s3"]);
    assert.deepEqual(await store.listBySubject("https://other-op", "sub-2"), [], "another issuer's equal sub is another subject");
    await store.add(record("s4", "u4", "sub-2", { iss: "https://other-op" }));
    assert.deepEqual((await store.listBySubject("https://other-op", "sub-2")).map((r) => r.socketId), ["s4"]);
    assert.deepEqual((await store.listBySubject(OP, "sub-2")).map((r) => r.socketId), ["s3"]);
    await store.remove("s4");
    assert.deepEqual(await store.listByUser("nobody"), []);
    assert.equal((await store.get("s3"))?.userId, "u2");
    assert.equal(await store.get("nope"), undefined);

    // The documented layout.
    assert.deepEqual((await client.smembers(`${prefix}sessions`)).sort(), ["s1", "s2", "s3"]);
    assert.deepEqual((await client.smembers(`${prefix}user:u1`)).sort(), ["s1", "s2"]);
    assert.deepEqual((await client.smembers(subjectIndex(prefix, "sub-2"))).sort(), ["s3"]);
    assert.equal((JSON.parse((await client.get(`${prefix}session:s1`))!) as { userId?: unknown }).userId, "u1");
    for (const key of [`${prefix}session:s1`, `${prefix}sessions`, `${prefix}user:u1`, subjectIndex(prefix, "sub-1")]) {
      const pttl = await client.pttl(key);
      assert.ok(pttl > 0 && pttl <= 30_000, `${key} has a TTL (${pttl})`);
    }

    await store.remove("s1");
    assert.deepEqual((await store.listByUser("u1")).map((r) => r.socketId), ["s2"]);
    assert.equal(await client.exists(`${prefix}session:s1`), 0);
    assert.deepEqual((await client.smembers(`${prefix}user:u1`)).sort(), ["s2"]);
  });

  it("another node's session (not in this store's memory) is removed by reading its record first", async () => {
    const prefix = runPrefix();
    const one = redisSessionStore({ client, prefix, nodeId: "one" });
    const two = redisSessionStore({ client, prefix, nodeId: "two" });
    await one.add(record("x1", "ux"));
    assert.equal((await two.list()).length, 1, "shared");
    await two.remove("x1");
    assert.deepEqual(await one.list(), []);
    assert.deepEqual(await client.smembers(`${prefix}user:ux`), []);
  });

  it("entries not refreshed within the TTL vanish, and reads prune them from the index sets", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix, ttl: 1 });
    await store.add(record("t1", "ut"));
    // Someone else's index write keeps the sets alive while t1's record expires.
    const keeper = redisSessionStore({ client, prefix, ttl: 30 });
    await waitFor("t1 expired", async () => (await client.exists(`${prefix}session:t1`)) === 0, 5_000, 100);
    await keeper.add(record("k1", "ut"));
    assert.deepEqual((await store.listByUser("ut")).map((r) => r.socketId), ["k1"]);
    assert.deepEqual((await store.list()).map((r) => r.socketId), ["k1"]);
    assert.deepEqual(await client.smembers(`${prefix}user:ut`), ["k1"], "pruned");
    assert.deepEqual(await client.smembers(`${prefix}sessions`), ["k1"], "pruned");
  });

  it("touch() re-writes this node's sessions (heals an emptied Redis) and refreshes their TTLs", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix, ttl: 20, nodeId: "healer" });
    const records = [record("h1", "uh"), record("h2", "uh", "sub-h", { expiresAt: 9_999 })];
    for (const r of records) await store.add(r);
    await client.del(`${prefix}session:h1`, `${prefix}session:h2`, `${prefix}sessions`, `${prefix}user:uh`, subjectIndex(prefix, "sub-h"));
    assert.deepEqual(await store.list(), []);
    await store.touch(records);
    assert.deepEqual((await store.list()).map((r) => [r.socketId, r.expiresAt, r.node]).sort(), [
      ["h1", 2_000, "healer"],
      ["h2", 9_999, "healer"],
    ]);
    assert.deepEqual((await store.listBySubject(OP, "sub-h")).map((r) => r.socketId), ["h2"]);
    await store.touch([]); // a probe: reaches Redis, writes nothing
    // touch() replaced what the store remembers, so remove() still cleans the indexes.
    await store.remove("h2");
    assert.deepEqual(await client.smembers(subjectIndex(prefix, "sub-h")), []);
  });

  it("stores with different prefixes do not see each other", async () => {
    const one = redisSessionStore({ client, prefix: runPrefix() });
    const two = redisSessionStore({ client, prefix: runPrefix() });
    await one.add(record("p1", "up"));
    assert.deepEqual(await two.list(), []);
    assert.deepEqual(await two.listByUser("up"), []);
    assert.equal((await one.list()).length, 1);
  });

  it("a corrupt record is skipped (and pruned), not thrown", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix });
    await store.add(record("c1", "uc"));
    await client.set(`${prefix}session:c1`, "{not json");
    assert.deepEqual(await store.list(), []);
  });

  it("validates its options", () => {
    assert.throws(() => redisSessionStore({ client: {} as RedisSessionStoreClient }), /must be a Redis client/);
    assert.throws(() => redisSessionStore({ client, ttl: 0 }), /"ttl"/);
    assert.throws(() => redisSessionStore({ client, ttl: Number.NaN }), /"ttl"/);
    assert.throws(() => redisSessionStore({ client, nodeId: "" }), /"nodeId"/);
    assert.throws(() => redisSessionStore({ client, prefix: 1 as unknown as string }), /"prefix"/);
    assert.match(redisSessionStore({ client }).nodeId, /:\d+:[0-9a-f]{6}$/);
    assert.equal(redisSessionStore({ client }).prefix, "ioserver-oidc:");
  });

  /** How many times Redis has run each of `commands` (INFO commandstats). */
  async function calls(...commands: string[]): Promise<Record<string, number>> {
    const info = await client.info("commandstats");
    return Object.fromEntries(commands.map((command) => [command, Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0)]));
  }

  it("listByUser and listBySubject read an index and its records with one command (a script), not SMEMBERS then MGET", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix });
    await store.add(record("r1", "ur", "sub-r"));
    await store.add(record("r2", "ur", "sub-r"));
    await store.listByUser("ur"); // loads the script
    // (Commands a script runs count in commandstats too: its SMEMBERS and GETs are there, MGET is not.)
    const before = await calls("mget", "evalsha", "eval");
    assert.deepEqual((await store.listByUser("ur")).map((r) => r.socketId).sort(), ["r1", "r2"]);
    assert.deepEqual((await store.listBySubject(OP, "sub-r")).map((r) => r.socketId).sort(), ["r1", "r2"]);
    const after = await calls("mget", "evalsha", "eval");
    assert.equal(after["mget"], before["mget"], "no MGET");
    assert.equal(after["evalsha"], before["evalsha"]! + 2, "one EVALSHA per read");
    assert.equal(after["eval"], before["eval"], "loaded once");
  });

  it("through the script: a member whose record expired or is unreadable is skipped and pruned, another user's record is filtered out", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix });
    for (const id of ["m1", "m2", "m3"]) await store.add(record(id, "um", "sub-m"));
    await client.del(`${prefix}session:m1`); // expired: its node stopped heartbeating
    await client.set(`${prefix}session:m2`, "{not json");
    await client.sadd(`${prefix}user:um`, "m4");
    await client.set(`${prefix}session:m4`, JSON.stringify(record("m4", "someone-else")));
    assert.deepEqual((await store.listByUser("um")).map((r) => r.socketId), ["m3"]);
    assert.deepEqual((await client.smembers(`${prefix}user:um`)).sort(), ["m3", "m4"], "the missing and the unreadable pruned");
    assert.deepEqual((await store.listBySubject(OP, "sub-m")).map((r) => r.socketId), ["m3"]);
    assert.deepEqual(await client.smembers(subjectIndex(prefix, "sub-m")), ["m3"]);
  });

  it("the script is loaded again when Redis no longer has it (SCRIPT FLUSH, as after a restart)", async () => {
    const store = redisSessionStore({ client, prefix: runPrefix() });
    await store.add(record("f1", "uf"));
    assert.equal((await store.listByUser("uf")).length, 1);
    await client.script("FLUSH");
    const before = await calls("eval");
    assert.deepEqual((await store.listByUser("uf")).map((r) => r.socketId), ["f1"]);
    assert.equal((await calls("eval"))["eval"], before["eval"]! + 1, "NOSCRIPT, then EVAL");
    assert.deepEqual((await store.listByUser("uf")).map((r) => r.socketId), ["f1"]);
  });

  it("list() of more than 500 sessions reads the records in batches, and prunes there too", async () => {
    const prefix = runPrefix();
    const store = redisSessionStore({ client, prefix });
    const records = Array.from({ length: 1_203 }, (_, i) => record(`b${i}`, `ub${i % 7}`));
    await store.touch(records);
    await client.del(`${prefix}session:b0`, `${prefix}session:b600`, `${prefix}session:b1202`);
    const before = await calls("mget");
    const listed = await store.list();
    assert.equal(listed.length, 1_200);
    assert.equal(new Set(listed.map((r) => r.socketId)).size, 1_200);
    assert.equal((await calls("mget"))["mget"], before["mget"]! + 3, "1,203 members: three batches");
    assert.equal(await client.scard(`${prefix}sessions`), 1_200);
  });

  it("a client created with stringNumbers reads through the script too", async () => {
    const digits = new Redis(redis.url, { stringNumbers: true, enableOfflineQueue: false });
    try {
      await once(digits, "ready");
      const store = redisSessionStore({ client: digits, prefix: runPrefix() });
      await store.add(record("d1", "ud"));
      assert.deepEqual((await store.listByUser("ud")).map((r) => r.socketId), ["d1"]);
    } finally {
      digits.disconnect();
    }
  });

  it("a client without eval is read with SMEMBERS then MGET, with the same results", async () => {
    const prefix = runPrefix();
    const plain: RedisSessionStoreClient = {
      multi: () => client.multi(),
      get: (key) => client.get(key),
      mget: (keys) => client.mget(keys),
      smembers: (key) => client.smembers(key),
    };
    const store = redisSessionStore({ client: plain, prefix });
    await store.add(record("n1", "un", "sub-n"));
    await store.add(record("n2", "un", "sub-n"));
    await client.del(`${prefix}session:n1`);
    const before = await calls("smembers", "evalsha");
    assert.deepEqual((await store.listByUser("un")).map((r) => r.socketId), ["n2"]);
    assert.deepEqual((await store.listBySubject(OP, "sub-n")).map((r) => r.socketId), ["n2"]);
    const after = await calls("smembers", "evalsha");
    assert.equal(after["smembers"], before["smembers"]! + 2);
    assert.equal(after["evalsha"], before["evalsha"]);
    assert.deepEqual(await client.smembers(`${prefix}user:un`), ["n2"], "pruned");
  });

  it("with Redis down every call rejects at once (enableOfflineQueue: false), and works again after a restart", async () => {
    const store = redisSessionStore({ client, prefix: runPrefix() });
    await stopRedis(redis, client);
    try {
      await assert.rejects(store.add(record("d1", "ud")), /enableOfflineQueue|Connection/);
      await assert.rejects(store.list());
      await assert.rejects(store.touch([]));
    } finally {
      await restartRedis(redis, client);
    }
    await store.add(record("d2", "ud"));
    assert.deepEqual((await store.list()).map((r) => r.socketId), ["d2"]);
  });
});
