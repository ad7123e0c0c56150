/**
 * The IOServer app measured by `npm run bench`, alone in its own process
 * (forked by bench/http.ts, bench/handshake.ts and bench/heap.ts with
 * --expose-gc). Built from the package's public API only:
 *
 *   GET /open/me     no middleware                       (P3/P4 baseline)
 *   GET /secure/me   OidcHttpMiddleware                   (P3/P4)
 *   GET /hooked/me   a preValidation hook that does nothing      (diagnosis,
 *   GET /header/me   a hook that reads the Authorization header   BENCH_HTTP_PATHS:
 *   GET /assign/me   a hook that reads it and sets one field,     what each part
 *                    as the package does on a request             of a hook costs)
 *   namespace /open    no middleware                      (P5/P6 baseline)
 *   namespace /secure  OidcSocketMiddleware (expiry on)   (P5/P6)
 *
 * The app's deny-list holds a revocation of another user from the start
 * (through `OidcSessionManager#disconnectSubject`, the manager registered
 * under a name of its own, so it tracks no sockets): every authentication
 * measured pays the check against it, as in an app where someone was
 * revoked within the last day, not only the empty list's size read.
 *
 * Both routes and both namespaces run the same controller and service code,
 * so the only difference is the package. Listens on 127.0.0.1; answers the
 * parent over IPC (heap after GC, live sockets, log counts, CPU profile).
 * Not meant to be run by hand.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { writeHeapSnapshot } from "node:v8";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BaseController, BaseManager, BaseMiddleware, BaseService, IOServer } from "ioserver";
import type { AppHandle } from "ioserver";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Socket } from "socket.io";
import { OidcConfigManager, OidcHttpMiddleware, OidcSessionManager, OidcSocketMiddleware, type OidcConfigInput } from "ioserver-oidc";
import { attachOpenTelemetryMetrics, attachPrometheusMetrics } from "ioserver-oidc/metrics";
import * as promClient from "prom-client";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { compiledCode } from "../lib/processStats.js";
import { serve } from "../lib/serve.js";
import type { MetricsAdapter } from "../lib/metricsCost.js";

const gc = (globalThis as { gc?: () => void }).gc;

class MeController extends BaseController {
  async me(request: FastifyRequest, reply: FastifyReply) {
    return reply.send({ ok: true, userId: request.userId ?? null });
  }
}

class PingService extends BaseService {
  async ping(socket: Socket, _data: unknown, callback?: (reply: unknown) => void) {
    callback?.({ pong: true, userId: socket.userId ?? null });
  }
}

/** A hook that lets every request through at once: the cost of having a hook at all. */
class NoopMiddleware extends BaseMiddleware {
  handle() {
    return (_request: FastifyRequest, _reply: FastifyReply, done: () => void) => done();
  }
}

/** A hook that reads the Authorization header (Node builds the request's headers object on first read). */
class HeaderMiddleware extends BaseMiddleware {
  handle() {
    return (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      if (typeof request.headers.authorization !== "string") throw new Error("no Authorization header");
      done();
    };
  }
}

const FIXED = Object.freeze({ sub: "s", userId: "s", userRole: "user", roles: Object.freeze([]), permissions: Object.freeze([]), features: Object.freeze({}), scopes: Object.freeze([]) });
const CONTEXT = Symbol("bench context");

/** A hook that reads the header and sets one symbol-keyed field, as the package does on an authenticated request (a fixed context). */
class AssignMiddleware extends BaseMiddleware {
  handle() {
    return (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      if (typeof request.headers.authorization !== "string") throw new Error("no Authorization header");
      (request as unknown as Record<symbol, unknown>)[CONTEXT] = FIXED;
      done();
    };
  }
}

const logCounts: Record<number, number> = {};
const notable: string[] = [];

/** Counts the package's log lines by level instead of printing them (thousands of them under load). */
class LogCounter extends BaseManager {
  constructor(appHandle: AppHandle) {
    super(appHandle);
    handle = appHandle;
    (appHandle as { log: (level: number, text: string) => void }).log = (level: number, text: string) => {
      logCounts[level] = (logCounts[level] ?? 0) + 1;
      if (level <= 4 && notable.length < 10) notable.push(`${level} ${text}`);
    };
  }
}

let app: IOServer | undefined;
let handle: AppHandle | undefined;
let routesDir: string | undefined;
let profiler: Session | undefined;
let trace: Array<[number, number]> = [];
let tracer: NodeJS.Timeout | undefined;
/** The metrics adapter attached, if any (the cost of observability: M3, M5), and how to detach it. */
let attached: { adapter: MetricsAdapter; detach: () => Promise<void> } | undefined;

async function gcHeap(): Promise<{ heapUsed: number; code: number; rss: number }> {
  if (typeof gc !== "function") throw new Error("the server must run with --expose-gc");
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  const usage = process.memoryUsage();
  // Compiled code grows with the code run, not with the sockets held.
  return { heapUsed: usage.heapUsed, code: compiledCode(), rss: usage.rss };
}

function io(): { of(name: string): { sockets: Map<string, unknown> }; close(): unknown } | undefined {
  return (app?.getApp() as unknown as { io?: { of(name: string): { sockets: Map<string, unknown> }; close(): unknown } } | undefined)?.io;
}

serve(
  async (message) => {
    const port = message.port as number;
    const config = message.config as OidcConfigInput;
    routesDir = mkdtempSync(join(tmpdir(), "ioserver-oidc-bench-routes-"));
    const routes = JSON.stringify([{ method: "GET", url: "/me", handler: "me" }]);
    writeFileSync(join(routesDir, "open.json"), routes);
    writeFileSync(join(routesDir, "secure.json"), routes);
    for (const name of ["hooked", "header", "assign"]) writeFileSync(join(routesDir, `${name}.json`), routes);
    const server = new IOServer({ host: "127.0.0.1", port, routes: routesDir, verbose: "ERROR", mode: ["websocket"] });
    server.addManager({ name: "benchLogCounter", manager: LogCounter });
    server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(config) });
    server.addManager({ name: "benchRevocations", manager: OidcSessionManager });
    server.addController({ name: "open", controller: MeController });
    server.addController({ name: "secure", controller: MeController, middlewares: [OidcHttpMiddleware] });
    server.addController({ name: "hooked", controller: MeController, middlewares: [NoopMiddleware] });
    server.addController({ name: "header", controller: MeController, middlewares: [HeaderMiddleware] });
    server.addController({ name: "assign", controller: MeController, middlewares: [AssignMiddleware] });
    server.addService({ name: "open", service: PingService });
    server.addService({ name: "secure", service: PingService, middlewares: [OidcSocketMiddleware] });
    await server.start();
    app = server;
    const revocations = (handle as unknown as { benchRevocations: OidcSessionManager }).benchRevocations;
    await revocations.disconnectSubject("bench-revoked-user", { iss: String(config.issuer), reason: "on the deny-list for the whole run" });
    return { port };
  },
  {
    gcHeap: () => gcHeap(),
    /** Cumulative CPU time of this process (µs): the parent takes deltas to tell which side was saturated. */
    cpu: () => process.cpuUsage(),
    /**
     * CPU trace: every 5 ms, [epoch ms (high resolution), cumulative CPU µs]. The parent splits it by the load
     * generator's alternation slices to get the server CPU spent per request on each side.
     */
    cpuTraceStart: () => {
      trace = [];
      clearInterval(tracer);
      const sample = () => {
        const usage = process.cpuUsage();
        trace.push([performance.timeOrigin + performance.now(), usage.user + usage.system]);
      };
      sample();
      tracer = setInterval(sample, 5);
      return { ok: true };
    },
    cpuTraceStop: () => {
      clearInterval(tracer);
      const usage = process.cpuUsage();
      trace.push([performance.timeOrigin + performance.now(), usage.user + usage.system]);
      const result = trace;
      trace = [];
      return { trace: result };
    },
    /**
     * Attach (`{ attached: true, adapter }`) or detach a metrics adapter:
     * prom-client's with a registry of its own (the default), or
     * OpenTelemetry's on a meter of the SDK with a periodic reader, as an
     * app exporting over OTLP has it (its exporter keeps in memory and the
     * interval outlasts a run, so what is measured is recording, not export).
     */
    metrics: async (message) => {
      const adapter: MetricsAdapter = message.adapter === "opentelemetry" ? "opentelemetry" : "prom-client";
      if (attached !== undefined && (message.attached !== true || attached.adapter !== adapter)) {
        await attached.detach();
        attached = undefined;
      }
      if (message.attached === true && attached === undefined) {
        if (adapter === "prom-client") {
          const detach = attachPrometheusMetrics({ client: promClient, registry: new promClient.Registry() });
          attached = { adapter, detach: async () => detach() };
        } else {
          const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 10 * 60_000 });
          const provider = new MeterProvider({ readers: [reader] });
          const detach = attachOpenTelemetryMetrics({ meter: provider.getMeter("ioserver-oidc-bench") });
          attached = {
            adapter,
            detach: async () => {
              detach();
              await provider.shutdown();
            },
          };
        }
      }
      return { attached: attached !== undefined, adapter: attached?.adapter ?? null };
    },
    sockets: (message) => ({ count: io()?.of(String(message.ns)).sockets.size ?? -1 }),
    logs: () => ({ counts: logCounts, notable }),
    /** `oidcConfig.getHealth()` when the package has it (key sets, token-cache hits and misses), else null. */
    health: () => {
      const manager = (handle as unknown as { oidcConfig?: { getHealth?: () => unknown } } | undefined)?.oidcConfig;
      return typeof manager?.getHealth === "function" ? manager.getHealth() : null;
    },
    /** A heap snapshot after GC (P6 with BENCH_HEAP_SNAPSHOTS=<dir>). */
    snapshot: async (message) => {
      await gcHeap();
      return { path: writeHeapSnapshot(String(message.path)) };
    },
    profileStart: async () => {
      profiler = new Session();
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.setSamplingInterval", { interval: 200 });
      await profiler.post("Profiler.start");
      return { ok: true };
    },
    profileStop: async (message) => {
      if (profiler === undefined) throw new Error("no profile running");
      const { profile } = await profiler.post("Profiler.stop");
      profiler.disconnect();
      profiler = undefined;
      writeFileSync(String(message.path), JSON.stringify(profile));
      return { path: message.path };
    },
    stop: async () => {
      try {
        io()?.close();
        await app?.stop();
      } catch {
        // exiting anyway
      }
      if (routesDir !== undefined) rmSync(routesDir, { recursive: true, force: true });
      setTimeout(() => process.exit(0), 50);
      return { ok: true };
    },
  },
);
