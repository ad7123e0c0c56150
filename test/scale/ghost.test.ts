/**
 * A heartbeat never writes back a session removed while it runs. The Redis
 * store writes a heartbeat in transactions of 500 records with an await
 * between them; a socket that goes away meanwhile is removed at once, and a
 * later transaction of the same heartbeat must not write it again (it would
 * be listed, and `disconnectSocket` would find it, for one TTL).
 *
 * Deterministic: a client wrapper around a real ioredis client holds the
 * heartbeat's first transaction back until the test has removed a record of
 * the second. The Redis server, the client and the store are real.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  MemorySessionStore,
  OidcSessionManager,
  redisSessionStore,
  type OidcSessionRecord,
  type OidcSessionStore,
  type RedisSessionStoreClient,
  type RedisSessionStoreMulti,
} from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { outcome, startApp } from "../helpers/app.js";
import { redisAvailable, runPrefix, startRedis, type RedisServer } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

/** The store's transaction size: a heartbeat of more records than this takes several transactions. */
const BATCH = 500;
const OP = "https://op";

/** Settle `promise` within `ms`, or fail naming `what`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Holds back the first transaction of at least `BATCH` records (SETs) queued
 * after `arm()`, until `release()`; counts the transactions with records that
 * Redis has answered since.
 */
class Gate {
  private armed = false;
  private reached: (() => void) | undefined;
  private opened: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  /** Transactions with at least one record answered since `release()`. */
  written = 0;

  /** Resolves once a large transaction is held. */
  arm(): Promise<void> {
    this.armed = true;
    this.opened = new Promise<void>((resolve) => (this.open = resolve));
    return new Promise<void>((resolve) => (this.reached = resolve));
  }

  release(): void {
    this.written = 0;
    this.open();
  }

  async before(sets: number): Promise<void> {
    if (!this.armed || sets < BATCH) return;
    this.armed = false;
    this.reached?.();
    await this.opened;
  }

  after(sets: number): void {
    if (sets > 0) this.written++;
  }
}

/** A real ioredis client, seen through the store's client type, with every transaction passing the gate. */
function gatedClient(client: Redis, gate: Gate): RedisSessionStoreClient {
  const real: RedisSessionStoreClient = client;
  return {
    get: (key) => real.get(key),
    mget: (keys) => real.mget(keys),
    smembers: (key) => real.smembers(key),
    multi() {
      const inner = real.multi();
      let sets = 0;
      const multi: RedisSessionStoreMulti = {
        set(key, value, unit, milliseconds) {
          sets++;
          inner.set(key, value, unit, milliseconds);
          return multi;
        },
        sadd(key, member) {
          inner.sadd(key, member);
          return multi;
        },
        srem(key, member) {
          inner.srem(key, member);
          return multi;
        },
        del(key) {
          inner.del(key);
          return multi;
        },
        pexpire(key, milliseconds) {
          inner.pexpire(key, milliseconds);
          return multi;
        },
        async exec() {
          await gate.before(sets);
          const replies = await inner.exec();
          gate.after(sets);
          return replies;
        },
      };
      return multi;
    },
  };
}

function record(socketId: string): OidcSessionRecord {
  return { socketId, userId: `user-${socketId}`, sub: `sub-${socketId}`, namespace: "/", connectedAt: 1_000, expiresAt: Date.now() + 600_000, iss: OP };
}

describe("a Redis heartbeat never resurrects a removed session", { skip }, () => {
  let redis: RedisServer;
  let client: Redis;
  let issuer: TestIssuer;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on("error", () => undefined);
    await once(client, "ready");
    issuer = await createTestIssuer();
  });
  after(async () => {
    await issuer?.close();
    client?.disconnect();
    await redis?.stop();
  });

  it("redisSessionStore.touch(): a record removed between two of its transactions is not written by the second", async () => {
    const gate = new Gate();
    const prefix = runPrefix();
    const store = redisSessionStore({ client: gatedClient(client, gate), prefix, ttl: 30 });
    const records = Array.from({ length: BATCH + 100 }, (_, i) => record(`s${i}`));
    const ghost = records[BATCH + 50]!.socketId; // in the second transaction
    await store.touch(records); // every session written once

    const held = gate.arm();
    const heartbeat = store.touch(records);
    await within(held, 5_000, "the heartbeat's first transaction");
    await store.remove(ghost); // the socket went away while the heartbeat was under way
    assert.equal(await store.get(ghost), undefined);
    gate.release();
    await within(heartbeat, 5_000, "the heartbeat");

    assert.equal(gate.written, 2, "the heartbeat's two transactions");
    assert.equal(await store.get(ghost), undefined, "not written back");
    assert.equal(await client.exists(`${prefix}session:${ghost}`), 0);
    const listed = (await store.list()).map((each) => each.socketId);
    assert.equal(listed.length, records.length - 1);
    assert.ok(!listed.includes(ghost));
    assert.ok(!(await client.smembers(`${prefix}sessions`)).includes(ghost));
    assert.deepEqual(await client.smembers(`${prefix}user:user-${ghost}`), []);
    assert.deepEqual(await store.listBySubject(OP, `sub-${ghost}`), []);
    assert.ok((await store.get(records[BATCH + 51]!.socketId)) !== undefined, "the others are refreshed");
  });

  it("OidcSessionManager's heartbeat: a session unregistered while it runs is neither listed nor found by disconnectSocket", async () => {
    const gate = new Gate();
    const prefix = runPrefix();
    const store = redisSessionStore({ client: gatedClient(client, gate), prefix, ttl: 3 }); // a heartbeat every second
    const app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ store, storeTimeout: 10_000 }) } });
    let socket: ClientSocket | undefined;
    try {
      const session = app.appHandle["session"] as OidcSessionManager;
      // A real authenticated socket: the manager then knows the Socket.IO server, as in production.
      const result = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "real" }) } }));
      assert.ok(result.connected);
      socket = result.socket;
      // Sessions of this node past the first transaction of a heartbeat (the manager records them as the middleware would).
      const ids = Array.from({ length: BATCH + 100 }, (_, i) => `socket-${i}`);
      for (let start = 0; start < ids.length; start += 100) {
        await Promise.all(ids.slice(start, start + 100).map((id) => session.registerSocket(`user-${id}`, id, `sub-${id}`)));
      }
      const ghost = ids[BATCH + 50]!;
      assert.ok((await session.list()).some((each) => each.socketId === ghost));

      const held = gate.arm();
      await within(held, 5_000, "the next heartbeat's first transaction");
      await session.unregisterSocket(ghost);
      gate.release();
      await waitFor("the heartbeat's second transaction", () => gate.written >= 2, 5_000, 10);

      assert.equal(await session.disconnectSocket(ghost), false, "nothing to disconnect");
      const listed = (await session.list()).map((each) => each.socketId);
      assert.ok(!listed.includes(ghost), "not listed");
      assert.equal(listed.length, ids.length, "the others and the real socket");
      assert.equal(await store.get(ghost), undefined, "not written back");
    } finally {
      socket?.disconnect();
      await app.close();
    }
  });
});

/**
 * A store without `touch` (the manager writes each record with `add`) whose
 * backend can fail, and whose `add` can be held for chosen socket ids.
 */
class SlowStore implements OidcSessionStore {
  readonly inner = new MemorySessionStore();
  down = false;
  private readonly held = new Map<string, { reached: () => void; opened: Promise<void> }>();
  private readonly openers = new Map<string, () => void>();

  /** Hold the next `add` of `socketId`; resolves once it is held. */
  hold(socketId: string): Promise<void> {
    return new Promise<void>((reached) => {
      const opened = new Promise<void>((resolve) => this.openers.set(socketId, resolve));
      this.held.set(socketId, { reached, opened });
    });
  }

  release(socketId: string): void {
    this.openers.get(socketId)?.();
  }

  async add(record: OidcSessionRecord) {
    if (this.down) throw new Error("backend down");
    const hold = this.held.get(record.socketId);
    if (hold !== undefined) {
      this.held.delete(record.socketId);
      hold.reached();
      await hold.opened;
    }
    this.inner.add(record);
  }
  async remove(socketId: string) {
    if (this.down) throw new Error("backend down");
    this.inner.remove(socketId);
  }
  async list() {
    if (this.down) throw new Error("backend down");
    return this.inner.list();
  }
}

describe("a store without touch, healed after an outage", () => {
  it("a session unregistered while the manager writes the sessions back one by one is not written", async () => {
    const issuer = await createTestIssuer();
    const store = new SlowStore();
    const app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ store, storeTimeout: 10_000 }) } });
    try {
      const session = app.appHandle["session"] as OidcSessionManager;
      store.down = true;
      // Registered during the outage: in this node's memory only, written back when the store returns.
      for (const id of ["a", "b", "c"]) await session.registerSocket(`user-${id}`, id, `sub-${id}`);
      assert.equal(session.degraded, true);
      const first = store.hold("a");
      const third = store.hold("c");
      store.down = false;
      await within(first, 5_000, "the write-back of a");
      await session.unregisterSocket("b"); // gone while a is being written
      store.release("a");
      await within(third, 5_000, "the write-back of c");
      assert.deepEqual(
        store.inner.list().map((each) => each.socketId),
        ["a"],
        "b, removed meanwhile, was not written",
      );
      store.release("c");
      await waitFor("healed", () => !session.degraded, 5_000, 10);
      assert.deepEqual(store.inner.list().map((each) => each.socketId).sort(), ["a", "c"]);
    } finally {
      await app.close();
      await issuer.close();
    }
  });
});
