/**
 * One IOServer node of `npm run bench:cluster`, alone in its process (forked
 * by run.ts with --expose-gc and an IPC channel), built from the package's
 * public API only: OidcConfigManager, OidcSessionManager, OidcSocketMiddleware
 * on the `chat` namespace, OidcHttpMiddleware on GET /api/me and, with a
 * Redis URL, the setup docs/scaling-out.md recommends (redisSessionStore,
 * redisRevocationStore, attachRedisAdapter, the back-channel logout route
 * with redisReplayStore).
 *
 * It also carries what docs/performance.md recommends for running out of
 * file descriptors: an 'error' listener on the HTTP server (without one, an
 * accept that fails with EMFILE would end the process) and a once-per-episode
 * log of the shortage and of the recovery. Its statistics never open a file:
 * heap figures come from v8.getHeapStatistics(), and the RSS (which reads
 * /proc) is optional.
 *
 * Not meant to be run by hand: `npm run bench:cluster`.
 */
import { closeSync, openSync } from "node:fs";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { PerformanceObserver } from "node:perf_hooks";
import { BaseController, BaseManager, BaseService, IOServer } from "ioserver";
import type { AppHandle } from "ioserver";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Server as HttpServer } from "node:http";
import type { Server as IoServer, Socket } from "socket.io";
import { Redis } from "ioredis";
import { processStats } from "../lib/processStats.js";
import {
  attachRedisAdapter,
  OidcBackchannelLogoutController,
  OidcConfigManager,
  OidcHttpMiddleware,
  OidcSessionManager,
  OidcSocketMiddleware,
  redisReplayStore,
  redisRevocationStore,
  redisSessionStore,
  type OidcConfigInput,
} from "ioserver-oidc";

export interface NodeStart {
  type: "start";
  name: string;
  port: number;
  config: OidcConfigInput;
  /** With Redis: the shared stores, the adapter and the logout route. */
  redisUrl?: string;
  /** Key and channel prefix (isolates runs sharing a Redis). */
  prefix?: string;
  /** Session TTL in seconds (redisSessionStore). */
  sessionTtl?: number;
}

interface Command {
  id: number;
  cmd: string;
  user?: string;
  users?: string[];
  repeat?: number;
  reason?: string;
}

const send = (message: unknown): void => {
  process.send?.(message);
};
const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== "function") {
  send({ type: "fatal", error: "the node must run with --expose-gc" });
  process.exit(2);
}
// The parent going away ends this process too: nothing outlives the run.
process.on("disconnect", () => process.exit(0));

const epochMs = (): number => performance.timeOrigin + performance.now();
const stats = processStats(gc);


// ---------------------------------------------------------------------------
// Logs: the package's lines by level (kept, not printed), and this node's own.

const logCounts: Record<number, number> = {};
const notable: string[] = [];
const emfileLines: string[] = [];
let handle: AppHandle | undefined;
let name = "node";

function record(level: number, text: string): void {
  logCounts[level] = (logCounts[level] ?? 0) + 1;
  if (level <= 4 && notable.length < 40) notable.push(`${level} ${text}`);
  if (/EMFILE|ENFILE|descriptor/i.test(text) && emfileLines.length < 40) emfileLines.push(`${level} ${text}`);
}

class LogCapture extends BaseManager {
  constructor(appHandle: AppHandle) {
    super(appHandle);
    handle = appHandle;
    (appHandle as { log: (level: number, text: string) => void }).log = record;
  }
}

// ---------------------------------------------------------------------------
// Running out of file descriptors: log once per episode, and the recovery.

const fd = {
  inShortage: false,
  since: 0,
  episodes: 0,
  /** 'error' events of the HTTP server (an accept that failed), by code. */
  serverErrors: {} as Record<string, number>,
  /** Failed probes (EMFILE) while checking every 500 ms. */
  probeFailures: 0,
};

function shortage(source: string): void {
  if (fd.inShortage) return;
  fd.inShortage = true;
  fd.since = Date.now();
  fd.episodes++;
  record(4, `[${name}] out of file descriptors (${source}): new connections are refused until some close; open connections are served`);
}

/** Descriptors must stay available this long before the shortage counts as over (at the edge they come and go). */
const RECOVERED_AFTER_MS = 3_000;
let availableSince = 0;

function probeDescriptors(): void {
  try {
    closeSync(openSync("/dev/null", "r"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EMFILE" || code === "ENFILE") {
      fd.probeFailures++;
      availableSince = 0;
      shortage(`${code} on open`);
    }
    return;
  }
  if (!fd.inShortage) return;
  if (availableSince === 0) availableSince = Date.now();
  if (Date.now() - availableSince < RECOVERED_AFTER_MS) return;
  fd.inShortage = false;
  availableSince = 0;
  record(6, `[${name}] file descriptors available again after ${((Date.now() - fd.since) / 1000).toFixed(1)} s: new connections are accepted`);
}

function onServerError(error: NodeJS.ErrnoException): void {
  const code = error.code ?? error.name;
  fd.serverErrors[code] = (fd.serverErrors[code] ?? 0) + 1;
  if (code === "EMFILE" || code === "ENFILE") {
    availableSince = 0;
    shortage(`${code} on ${error.syscall ?? "accept"}`);
  }
  else if (fd.serverErrors[code] === 1) record(3, `[${name}] HTTP server error ${code}: ${error.message}`);
}

const prober = setInterval(probeDescriptors, 500);

// ---------------------------------------------------------------------------

class ApiController extends BaseController {
  async me(request: FastifyRequest, reply: FastifyReply) {
    return reply.send({ userId: request.userId, node: name });
  }
}

class ChatService extends BaseService {
  async ping(socket: Socket, _data: unknown, callback?: (reply: unknown) => void) {
    callback?.({ pong: true, userId: socket.userId, node: name });
  }
}

let server: IOServer | undefined;
let io: IoServer | undefined;
const redisClients: Redis[] = [];
let storeClient: Redis | undefined;

// ---------------------------------------------------------------------------
// Where a timed call's time goes: the store's Redis round trips (timed around
// the client's methods while a call is traced), the GC pauses inside it, this
// node's heartbeat writes (their windows), and a PING right after it.

interface Span {
  start: number;
  end: number;
}
const gcPauses: Array<Span & { kind: number }> = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcPauses.push({ start: performance.timeOrigin + entry.startTime, end: performance.timeOrigin + entry.startTime + entry.duration, kind: ((entry as { detail?: { kind?: number } }).detail)?.kind ?? 0 });
    if (gcPauses.length > 2_000) gcPauses.splice(0, 1_000);
  }
}).observe({ entryTypes: ["gc"] });
const touches: Array<Span & { records: number }> = [];
/** Redis commands of the store while a call is traced: name and time. */
let traced: Array<{ command: string; ms: number }> | undefined;

/** Time the store's read commands (only while a call is traced). */
function traceReads(client: Redis): void {
  for (const command of ["smembers", "mget", "get", "evalsha", "eval"] as const) {
    const original = (client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[command]!;
    (client as unknown as Record<string, unknown>)[command] = function (this: Redis, ...args: unknown[]) {
      const into = traced;
      if (into === undefined) return original.apply(this, args);
      const t0 = performance.now();
      return original.apply(this, args).finally(() => into.push({ command, ms: performance.now() - t0 }));
    };
  }
}

const overlap = (spans: Span[], start: number, end: number): number => spans.reduce((sum, span) => sum + Math.max(0, Math.min(end, span.end) - Math.max(start, span.start)), 0);
const redisErrors: Record<string, number> = {};

async function start(message: NodeStart): Promise<void> {
  name = message.name;
  const prefix = message.prefix ?? "ioserver-oidc:";
  let pub: Redis | undefined;
  let sub: Redis | undefined;
  if (message.redisUrl !== undefined) {
    // The Redis clients first (docs/scaling-out.md): nothing may be awaited between new IOServer() and start().
    // Publisher (also the stores' client): fails fast while Redis is down. Subscriber: re-subscribes by itself.
    pub = new Redis(message.redisUrl, { enableOfflineQueue: false, retryStrategy: () => 200 });
    sub = new Redis(message.redisUrl, { retryStrategy: () => 200 });
    redisClients.push(pub, sub);
    for (const client of [pub, sub]) {
      client.on("error", (error: NodeJS.ErrnoException) => {
        // The outage itself is logged once by the package; this counts the clients' errors by code.
        const code = error.code ?? error.name;
        redisErrors[code] = (redisErrors[code] ?? 0) + 1;
      });
    }
    await Promise.all([once(pub, "ready"), once(sub, "ready")]);
  }
  const app = new IOServer({
    host: "127.0.0.1",
    port: message.port,
    routes: fileURLToPath(new URL(pub === undefined ? "./routes/single" : "./routes/cluster", import.meta.url)),
    verbose: "ERROR",
    mode: ["websocket"],
  });
  app.addManager({ name: "benchLogs", manager: LogCapture });
  app.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(message.config) });
  let adapterReady: Promise<IoServer> | undefined;
  if (pub === undefined || sub === undefined) {
    app.addManager({ name: "session", manager: OidcSessionManager });
  } else {
    traceReads(pub);
    storeClient = pub;
    const store = redisSessionStore({ client: pub, ttl: message.sessionTtl ?? 60, nodeId: name, prefix });
    // The heartbeat's windows, to compare with slow calls.
    const touch = store.touch.bind(store);
    store.touch = async (records) => {
      const start = epochMs();
      try {
        await touch(records);
      } finally {
        touches.push({ start, end: epochMs(), records: records.length });
        if (touches.length > 1_000) touches.splice(0, 500);
      }
    };
    const revocationStore = redisRevocationStore({ client: pub, subscriber: sub, prefix });
    app.addManager({ name: "session", manager: OidcSessionManager.configure({ store, revocationStore, storeTimeout: 1_000, clusterTimeout: 3_000 }) });
    app.addController({
      name: "oidc",
      controller: OidcBackchannelLogoutController.configure({ replayStore: redisReplayStore(pub, { prefix: `${prefix}logout-jti:` }) }),
    });
  }
  app.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
  app.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
  if (pub !== undefined && sub !== undefined) {
    adapterReady = attachRedisAdapter(app, { pubClient: pub, subClient: sub, adapterOptions: { key: `${prefix}socket.io`, requestsTimeout: 3_000 } });
  }
  await app.start();
  server = app;
  const fastify = app.getApp() as unknown as { server: HttpServer; io?: IoServer };
  // The recipe: an accept that fails (EMFILE) is an 'error' event of the listening server, fatal without a listener.
  fastify.server.on("error", onServerError);
  io = adapterReady === undefined ? fastify.io : await adapterReady;
  await new Promise((resolve) => setTimeout(resolve, 50));
  send({ type: "ready", pid: process.pid, ...(await stats.gcHeap()) });
}

const session = (): OidcSessionManager => (handle as unknown as { session: OidcSessionManager }).session;

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await work();
  return { ms: performance.now() - t0, value };
}

async function answer(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case "heap":
      return stats.heap();
    case "gcHeap":
      return stats.gcHeap();
    case "eld":
      return stats.eld();
    case "eldReset":
      stats.reset();
      return { ok: true };
    case "counts":
      return { chatSockets: io?.of("/chat").sockets.size ?? -1, degraded: session().degraded, redis: redisClients.map((client) => client.status), redisErrors };
    case "sessions":
      return { sessions: (await session().list()).length, chatSockets: io?.of("/chat").sockets.size ?? -1 };
    case "list": {
      const runs: Array<{ ms: number; length: number }> = [];
      for (let i = 0; i < (command.repeat ?? 1); i++) {
        const { ms, value } = await timed(() => session().list());
        runs.push({ ms, length: value.length });
      }
      return runs;
    }
    case "listByUser": {
      const runs: Array<{ ms: number; length: number; at: number; redis: Array<{ command: string; ms: number }>; gcMs: number; heartbeatMs: number; pingMs: number; loopMs: number }> = [];
      for (const user of command.users ?? []) {
        // How long this node's event loop takes to come back to us just before the call (other work queued).
        const l0 = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        const loopMs = performance.now() - l0;
        const redis: Array<{ command: string; ms: number }> = [];
        traced = redis;
        const at = epochMs();
        const { ms, value } = await timed(() => session().listByUser(user));
        traced = undefined;
        const end = at + ms;
        const p0 = performance.now();
        await storeClient?.ping().catch(() => undefined);
        const pingMs = storeClient === undefined ? NaN : performance.now() - p0;
        runs.push({ ms, length: value.length, at, redis, gcMs: overlap(gcPauses, at, end), heartbeatMs: overlap(touches, at, end), pingMs, loopMs });
      }
      return runs;
    }
    case "touches":
      return touches;
    case "slowlog": {
      // Redis's own slow log (commands slower than 1 ms inside Redis): reset, or read.
      if (storeClient === undefined) return [];
      if (command.reason === "reset") {
        await storeClient.call("CONFIG", "SET", "slowlog-log-slower-than", "1000");
        await storeClient.call("CONFIG", "SET", "slowlog-max-len", "1024");
        await storeClient.call("SLOWLOG", "RESET");
        return [];
      }
      const entries = (await storeClient.call("SLOWLOG", "GET", "1024")) as Array<[number, number, number, string[]]>;
      return entries.map(([, at, micros, args]) => ({ at: at * 1000, ms: micros / 1000, command: `${args[0]} ${args.length - 1} args` }));
    }
    case "disconnectUser": {
      const t0 = epochMs();
      const count = await session().disconnectUser(command.user!, command.reason);
      return { t0, t1: epochMs(), count };
    }
    case "health":
      return (handle as unknown as { oidcConfig: OidcConfigManager }).oidcConfig.getHealth();
    case "cpu": {
      // CPU time used so far, in ms (process.cpuUsage() opens nothing).
      const usage = process.cpuUsage();
      return { ms: (usage.user + usage.system) / 1000 };
    }
    case "fd":
      return { ...fd, rssUnreadable: stats.rssUnreadable };
    case "logs":
      return { counts: logCounts, notable, emfile: emfileLines };
    case "stop":
      stats.stop();
      clearInterval(prober);
      void io?.close();
      await server?.stop().catch(() => undefined);
      for (const client of redisClients) client.disconnect();
      setTimeout(() => process.exit(0), 100).unref();
      return { ok: true };
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
}

process.on("message", (message: NodeStart | Command) => {
  if ("type" in message && message.type === "start") {
    start(message).catch((error: unknown) => {
      send({ type: "fatal", error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      process.exit(2);
    });
    return;
  }
  const command = message as Command;
  answer(command).then(
    (result) => send({ id: command.id, result }),
    (error: unknown) => send({ id: command.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
send({ type: "spawned" });
