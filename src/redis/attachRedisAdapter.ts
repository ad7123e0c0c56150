/**
 * Put `@socket.io/redis-adapter` on an IOServer's Socket.IO server.
 *
 * What IOServer 2.0.6 does, and why this is the way in:
 *
 * - Its constructor calls `webapp.ready().then(() => { socketio = new Server(webapp.server, …); webapp.io = socketio })`:
 *   the Socket.IO server only exists once Fastify has booted, and IOServer
 *   takes no adapter option. Creating the `Server` also creates the main
 *   namespace `/`.
 * - Managers are instantiated — and their `start()` called — by
 *   `addManager()`, before that: a manager cannot reach the Socket.IO server
 *   (nor does `appHandle` expose it).
 * - `start()` awaits `webapp.ready()` again, then creates one namespace per
 *   service (`io.of("/<name>")`, with its middlewares), then listens.
 *
 * Fastify's `ready()` hands out one promise per boot, so callbacks run in
 * registration order: this helper's `.then` (registered after the
 * constructor's, before `start()`'s) runs after the Socket.IO server exists
 * and before the service namespaces are created, and calls Socket.IO's
 * public `io.adapter(createAdapter(pub, sub))`. `Server#adapter()` also
 * re-creates the adapter of every namespace that exists already (`/` here),
 * so every namespace ends up on the Redis adapter. When the adapter package
 * must be imported first (no `createAdapter` given), an `onReady` hook makes
 * Fastify's boot wait for the import, so the order above still holds. Called
 * later (after `start()`), the helper still works — `io.adapter()` replaces
 * every namespace's adapter — as long as no client has connected yet (rooms
 * joined before would be lost).
 *
 * Fastify boots a tick after IOServer's constructor (its `ready()` call), and
 * refuses new hooks (and routes) once booted: like `addService` and
 * `addController`, call the helper synchronously after `new IOServer()`.
 * Closers (the session manager's heartbeat) run on the HTTP server's `close`
 * event, which `server.stop()` (and `io.close()`) trigger at any stage.
 */
import type { IOServer } from "ioserver";
import type { Server } from "socket.io";
import { clusterOf, rememberServer } from "../sockets/cluster.js";
import { healthOf } from "../stores/health.js";
import { guardClient, publishReport } from "./guardClient.js";
import type { OidcAppHandle } from "../types.js";

/** `createAdapter` of `@socket.io/redis-adapter` (typed loosely: that package is an optional peer). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the adapter package is an optional peer (not imported for its types), and createAdapter takes ioredis or node-redis clients
export type RedisAdapterFactory = (pubClient: any, subClient: any, options?: any) => any;

/** Options of `@socket.io/redis-adapter`'s `createAdapter` that this helper passes through. */
export interface RedisAdapterOptions {
  /** Channel prefix. Default `"socket.io"`. */
  key?: string;
  /** Ms to wait for the other nodes' answers (`fetchSockets`, `serverSideEmitWithAck`…). Default 5000. */
  requestsTimeout?: number;
  publishOnSpecificResponseChannel?: boolean;
  [option: string]: unknown;
}

export interface AttachRedisAdapterOptions {
  /** The connection that publishes (ioredis, ideally with `enableOfflineQueue: false`); it may also serve `redisSessionStore`. */
  pubClient: object;
  /** A second connection, which the adapter puts in subscriber mode (e.g. `pubClient.duplicate()`). */
  subClient: object;
  /** `createAdapter` from `@socket.io/redis-adapter`. Default: imported on demand (an optional peer dependency). */
  createAdapter?: RedisAdapterFactory;
  /** Passed to `createAdapter`. */
  adapterOptions?: RedisAdapterOptions;
}

type WithIo = ReturnType<IOServer["getApp"]> & { io?: Server };

let loading: Promise<RedisAdapterFactory> | undefined;

/** `import("@socket.io/redis-adapter")`, once, with a clear error when it is not installed. */
function loadCreateAdapter(): Promise<RedisAdapterFactory> {
  loading ??= import("@socket.io/redis-adapter").then(
    (mod: unknown) => {
      const m = mod as { createAdapter?: unknown; default?: unknown };
      const candidate = m.createAdapter ?? (m.default as { createAdapter?: unknown } | undefined)?.createAdapter ?? m.default;
      if (typeof candidate !== "function") throw new Error("attachRedisAdapter: @socket.io/redis-adapter has no createAdapter export");
      return candidate as RedisAdapterFactory;
    },
    (error: unknown) => {
      loading = undefined;
      throw new Error(
        `attachRedisAdapter: cannot load @socket.io/redis-adapter (npm install @socket.io/redis-adapter ioredis), or pass createAdapter: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    },
  );
  return loading;
}

/**
 * Attach `@socket.io/redis-adapter` to an IOServer, so broadcasts, rooms,
 * `fetchSockets()` and `disconnectSockets()` span every node sharing the
 * Redis — and `OidcSessionManager` revocations with them.
 *
 * Call it right after `new IOServer()` (like `addService`), before
 * `await server.start()`; await the returned promise after `start()`. It
 * resolves to the Socket.IO server once the adapter is in place, and rejects
 * if the adapter cannot be loaded or created.
 *
 * ```ts
 * const pub = new Redis(url, { enableOfflineQueue: false });
 * const sub = new Redis(url);
 * const adapterReady = attachRedisAdapter(server, { pubClient: pub, subClient: sub });
 * await server.start();
 * await adapterReady;
 * ```
 */
export function attachRedisAdapter(server: IOServer, options: AttachRedisAdapterOptions): Promise<Server> {
  if (server === null || typeof server !== "object" || typeof (server as { getApp?: unknown }).getApp !== "function") {
    return Promise.reject(new TypeError("attachRedisAdapter: the first argument must be an IOServer"));
  }
  if (options === null || typeof options !== "object") return Promise.reject(new TypeError("attachRedisAdapter: options must be an object"));
  const { pubClient, subClient, createAdapter, adapterOptions } = options;
  if (pubClient === null || typeof pubClient !== "object" || subClient === null || typeof subClient !== "object") {
    return Promise.reject(new TypeError("attachRedisAdapter: pubClient and subClient (two Redis connections) are required"));
  }
  if (pubClient === subClient) {
    return Promise.reject(new TypeError("attachRedisAdapter: subClient must be a separate connection (e.g. pubClient.duplicate()): it enters subscriber mode"));
  }
  if (createAdapter !== undefined && typeof createAdapter !== "function") {
    return Promise.reject(new TypeError("attachRedisAdapter: createAdapter must be the function exported by @socket.io/redis-adapter"));
  }

  const webapp = server.getApp() as WithIo;
  // IOServer keeps `appHandle` private in its typings; it is a plain property.
  const appHandle = (server as unknown as { appHandle?: OidcAppHandle }).appHandle;
  const known = appHandle !== null && typeof appHandle === "object";
  const health = known ? healthOf(appHandle) : undefined;
  const cluster = known ? clusterOf(appHandle) : undefined;
  const report = publishReport(pubClient, health);
  const pub = guardClient(pubClient, report);
  const sub = guardClient(subClient, undefined);

  let factory: RedisAdapterFactory | undefined = createAdapter;
  const factoryReady = factory !== undefined ? Promise.resolve(factory) : loadCreateAdapter();
  factoryReady.then(
    (loaded) => {
      factory = loaded;
    },
    () => undefined,
  );

  try {
    // Make Fastify's boot (and so the creation of the Socket.IO server and of
    // the namespaces) wait for the import. Never fails the boot: the error is
    // reported through the returned promise.
    if (factory === undefined) webapp.addHook("onReady", async () => {
        await factoryReady.catch(() => undefined);
      });
  } catch {
    // Fastify has booted already (no hooks any more): the import is awaited
    // below and io.adapter() then replaces the existing namespaces' adapters.
  }
  // Stop what registered to be stopped (the session manager's heartbeat) when
  // the HTTP server closes — `server.stop()`, or `io.close()`. The server's
  // own "close" event works at any point of Fastify's life cycle, unlike an
  // `onClose` hook, which cannot be added once Fastify has booted.
  const httpServer = (webapp as unknown as { server?: { once?(event: string, listener: () => void): unknown } }).server;
  httpServer?.once?.("close", () => {
    report.stop();
    for (const close of [...(cluster?.closers ?? [])]) {
      Promise.resolve()
        .then(close)
        .catch(() => undefined);
    }
  });

  // Registered now, synchronously: after the constructor's callback (which
  // creates the Socket.IO server), before start()'s (which creates the namespaces).
  return new Promise<Server>((resolve, reject) => {
    webapp
      .ready()
      .then(async () => {
        const io = webapp.io;
        if (io === undefined || io === null || typeof io.adapter !== "function") {
          throw new Error("attachRedisAdapter: the IOServer has no Socket.IO server after ready() (IOServer >= 2.0.6 sets getApp().io)");
        }
        const create = factory ?? (await factoryReady);
        // eslint-disable-next-line @typescript-eslint/no-unsafe-argument -- RedisAdapterFactory returns `any` (see its type): what @socket.io/redis-adapter's createAdapter returns is an adapter constructor
        io.adapter(create(pub, sub, adapterOptions));
        if (appHandle !== null && typeof appHandle === "object") rememberServer(appHandle, io);
        return io;
      })
      .then(resolve, reject);
  });
}
