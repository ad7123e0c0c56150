/**
 * attachRedisAdapter on a real IOServer 2.0.6 and a real redis-server: the
 * adapter lands on every namespace whether attached before or after
 * `start()`, arguments are checked, and a broadcast while Redis is down
 * neither crashes the process (unhandled rejection) nor stays silent.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { createAdapter } from "@socket.io/redis-adapter";
import { BaseService, IOServer } from "ioserver";
import { Redis, type RedisOptions } from "ioredis";
import { Namespace, type Server } from "socket.io";
import { attachRedisAdapter, MemorySessionStore, OidcSessionManager, OidcSocketMiddleware } from "../../src/index.js";
import { freePort } from "../helpers/app.js";
import { redisAvailable, startRedis, type RedisServer } from "../helpers/redis.js";
import { waitFor } from "../helpers/wait.js";

const skip = redisAvailable() ? false : "redis-server is not installed";

class Chat extends BaseService {
  async ping(_socket: unknown, _data: unknown, callback?: (value: unknown) => void) {
    callback?.("pong");
  }
}

interface Built {
  server: IOServer;
  logs: Array<{ level: number; text: string }>;
  appHandle: Record<string, unknown>;
}

async function build(managers: Record<string, new (appHandle: never) => unknown> = {}): Promise<Built> {
  const server = new IOServer({ host: "127.0.0.1", port: await freePort(), verbose: "ERROR", mode: ["websocket"] });
  const appHandle = (server as unknown as { appHandle: Record<string, unknown> }).appHandle;
  const logs: Built["logs"] = [];
  appHandle["log"] = (level: number, text: string) => logs.push({ level, text });
  for (const [name, manager] of Object.entries(managers)) server.addManager({ name, manager: manager as never });
  server.addService({ name: "chat", service: Chat, middlewares: [OidcSocketMiddleware] });
  return { server, logs, appHandle };
}

const adapterNames = (io: Server) => [...io._nsps.values()].map((nsp) => [nsp.name, nsp.adapter.constructor.name]).sort();

describe("attachRedisAdapter", { skip }, () => {
  let redis: RedisServer;
  const clients: Redis[] = [];
  const newClient = async (options: RedisOptions = {}) => {
    const client = new Redis(redis.url, { retryStrategy: () => 100, ...options });
    client.on("error", () => undefined);
    clients.push(client);
    await once(client, "ready");
    return client;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });

  it("called right after new IOServer() (lazy import): /chat is created on the Redis adapter, `/` is switched to it", async () => {
    const pubClient = await newClient();
    const subClient = await newClient();
    // Record every adapter a namespace gets.
    const inits: Array<[string, string]> = [];
    const proto = Namespace.prototype as unknown as { _initAdapter(this: Namespace): void };
    const original = proto._initAdapter;
    proto._initAdapter = function (this: Namespace) {
      original.call(this);
      inits.push([this.name, this.adapter.constructor.name]);
    };
    try {
      const { server } = await build(); // new IOServer() + addService, synchronously
      const ready = attachRedisAdapter(server, { pubClient, subClient });
      await server.start();
      const io = (server.getApp() as unknown as { io: Server }).io;
      assert.deepEqual(adapterNames(io), [
        ["/", "RedisAdapter"],
        ["/chat", "RedisAdapter"],
      ]);
      assert.deepEqual(
        inits.filter(([name]) => name === "/chat"),
        [["/chat", "RedisAdapter"]],
        "the service namespace never had another adapter: the helper ran between the Socket.IO server's creation and start()'s namespaces",
      );
      assert.deepEqual(
        inits.filter(([name]) => name === "/"),
        [
          ["/", "Adapter"],
          ["/", "RedisAdapter"],
        ],
        "the main namespace, created with the Socket.IO server, was switched by io.adapter()",
      );
      assert.equal(await ready, io);
      await io.close();
      await server.stop();
    } finally {
      proto._initAdapter = original;
    }
  });

  it("called after start() with an explicit createAdapter: the existing namespaces are switched too", async () => {
    const { server } = await build();
    await server.start();
    const io = await attachRedisAdapter(server, { pubClient: await newClient(), subClient: await newClient(), createAdapter });
    assert.deepEqual(adapterNames(io), [
      ["/", "RedisAdapter"],
      ["/chat", "RedisAdapter"],
    ]);
    await io.close();
    await server.stop();
  });

  it("rejects bad arguments with a TypeError", async () => {
    const { server } = await build();
    const pub = await newClient();
    await assert.rejects(attachRedisAdapter({} as IOServer, { pubClient: pub, subClient: pub }), /must be an IOServer/);
    await assert.rejects(attachRedisAdapter(server, { pubClient: pub, subClient: pub }), /separate connection/);
    await assert.rejects(attachRedisAdapter(server, { pubClient: pub } as never), /pubClient and subClient/);
    await assert.rejects(attachRedisAdapter(server, { pubClient: pub, subClient: {}, createAdapter: 1 as never }), /createAdapter/);
    await server.start();
    await (server.getApp() as unknown as { io: Server }).io.close();
    await server.stop();
  });

  it("Redis down: broadcasts do not end the process with an unhandled rejection; the outage is logged once; server.stop() stops the session manager", async () => {
    let closed = 0;
    class Store extends MemorySessionStore {
      close() {
        closed++;
      }
    }
    const { server, logs } = await build({ session: OidcSessionManager.configure({ store: new Store() }) });
    const pub = await newClient({ enableOfflineQueue: false });
    const ready = attachRedisAdapter(server, { pubClient: pub, subClient: await newClient() });
    await server.start();
    const io = await ready;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      io.of("/chat").emit("hello", 1); // Redis up: published
      await redis.stop();
      await waitFor("publisher disconnected", () => pub.status !== "ready", 5_000, 20);
      for (let i = 0; i < 5; i++) io.of("/chat").to("some-room").emit("hello", i);
      io.of("/chat").disconnectSockets(true);
      await waitFor("outage logged", () => logs.some((line) => /Redis unavailable \(adapter publish/.test(line.text)), 5_000, 20);
      await new Promise((resolve) => setTimeout(resolve, 200)); // let any stray rejection surface
      assert.deepEqual(unhandled, []);
      assert.equal(logs.filter((line) => /Redis unavailable/.test(line.text)).length, 1);
      await redis.restart();
      await waitFor("publisher back", () => pub.status === "ready", 10_000, 20);
      io.of("/chat").emit("hello", 2);
      await waitFor("recovery logged", () => logs.some((line) => /Redis available again \(adapter publish\)/.test(line.text)), 5_000, 20);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await io.close();
      await server.stop();
    }
    assert.equal(closed, 1, "the Fastify onClose hook stopped the session manager");
  });
});
