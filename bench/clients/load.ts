/**
 * The load generator of `npm run bench`, in its own process so that it never
 * shares an event loop with the server it measures. Driven over IPC by
 * bench/http.ts, bench/handshake.ts, bench/heap.ts and bench/dpop.ts:
 *
 *   setTokens  the pool of distinct valid tokens (P4, P5, P6)
 *   setAuths   handshake `auth` objects, each sent once (P13: a fresh DPoP proof each)
 *   http       one autocannon run (P3, P4)
 *   handshake  raw Engine.IO v4 / Socket.IO v5 handshakes at a fixed concurrency (P5)
 *   hold       open N idle authenticated or open sockets and keep them (P6)
 *   release    close the held sockets
 *
 * No socket.io-client and no WebSocket library: a handshake is one TCP
 * connection with the WebSocket upgrade, the `0{...}` open packet,
 * `40/ns,{"token":...}` and the `40/ns,{"sid":...}` (or `44/ns,{...}`)
 * answer, its frames written and read by hand (rawSocketIo.ts) — about as
 * little client work as the protocol allows.
 */
import { createRequire } from "node:module";
import { handshake as rawHandshake, textFrame, type Outcome, type RawConnection } from "./rawSocketIo.js";
import { serve } from "../lib/serve.js";

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; average: number };
  requests: { average: number; total: number; sent: number };
}
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  setupRequest?: (request: AutocannonRequest, context: Record<string, unknown>) => AutocannonRequest;
}
type Autocannon = (options: Record<string, unknown>) => PromiseLike<AutocannonResult>;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

let pool: string[] = [];
let next = 0;
const nextToken = () => pool[next++ % pool.length]!;
/** Handshake `auth` objects sent once each, in order (`auth: "list"`: P13's proofs); past the end, `{}` (refused). */
let auths: Array<Record<string, unknown>> = [];
let nextAuth = 0;

// ---------------------------------------------------------------------------
// HTTP (autocannon).

async function http(message: Record<string, unknown>) {
  const url = String(message.url);
  const seconds = Number(message.seconds);
  const rotate = message.rotate === true;
  const token = message.token as string | undefined;
  if (rotate && pool.length === 0) throw new Error("http: rotate needs setTokens first");
  const options: Record<string, unknown> = {
    url,
    connections: Number(message.connections),
    pipelining: 1,
    duration: seconds,
    timeout: 10,
  };
  if (rotate) {
    // One global round-robin over the pool, shared by every connection (the same headers go to both routes).
    options.requests = [
      {
        method: "GET",
        setupRequest: (request: AutocannonRequest) => ({ ...request, headers: { authorization: `Bearer ${nextToken()}` } }),
      },
    ];
  } else if (token !== undefined) {
    options.headers = { authorization: `Bearer ${token}` };
  }
  const cpu0 = process.cpuUsage();
  const result = await autocannon(options);
  const cpu = process.cpuUsage(cpu0);
  return {
    /** Share of one core this load generator used during the run. */
    clientCpu: (cpu.user + cpu.system) / 1e6 / result.duration,
    rps: result["2xx"] / result.duration,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    duration: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, stats]) => [code, stats.count])),
  };
}

/** Split `[t0, t1]` into alternating slices of `sliceMs` (A first) and return the time spent in each. */
function sliceTimes(t0: number, t1: number, sliceMs: number): [number, number] {
  let a = 0;
  let b = 0;
  for (let start = t0, index = 0; start < t1; start += sliceMs, index++) {
    if (index % 2 === 0) a += Math.min(sliceMs, t1 - start);
    else b += Math.min(sliceMs, t1 - start);
  }
  return [a, b];
}

interface SideStats {
  ok: number;
  failed: number;
  statusCodes: Record<string, number>;
  latencies: number[];
}

const sideStats = (): SideStats => ({ ok: 0, failed: 0, statusCodes: {}, latencies: [] });

function summarise(side: SideStats, ms: number) {
  side.latencies.sort((a, b) => a - b);
  const at = (p: number) => side.latencies[Math.min(side.latencies.length - 1, Math.max(0, Math.ceil(p * side.latencies.length) - 1))] ?? NaN;
  return { rps: (side.ok * 1000) / ms, ok: side.ok, failed: side.failed, statusCodes: side.statusCodes, seconds: ms / 1000, p50: at(0.5), p99: at(0.99) };
}

/**
 * One autocannon run that alternates between two paths every `sliceMs`
 * (A, B, A, B, …): a request goes to the path of the slice it is sent in and
 * its response is counted for that path. Both paths get the same headers.
 * Bursts of unrelated load on the machine then hit both sides alike.
 */
async function httpAlternating(message: Record<string, unknown>) {
  const base = String(message.url);
  const paths = message.paths as [string, string];
  const seconds = Number(message.seconds);
  const sliceMs = Number(message.sliceMs);
  const rotate = message.rotate === true;
  const token = message.token as string | undefined;
  if (rotate && pool.length === 0) throw new Error("httpAlternating: rotate needs setTokens first");
  const sides: [SideStats, SideStats] = [sideStats(), sideStats()];
  let t0: number | undefined;
  interface Context {
    side?: 0 | 1;
    sentAt?: number;
  }
  const options: Record<string, unknown> = {
    url: base,
    connections: Number(message.connections),
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: "GET",
        setupRequest: (request: AutocannonRequest, context: Context) => {
          const now = performance.now();
          t0 ??= now;
          const side = (Math.floor((now - t0) / sliceMs) % 2) as 0 | 1;
          context.side = side;
          context.sentAt = now;
          return { ...request, path: paths[side], headers: { authorization: `Bearer ${rotate ? nextToken() : token}` } };
        },
        onResponse: (status: number, _body: unknown, context: Context) => {
          if (context.side === undefined) return;
          const side = sides[context.side];
          side.statusCodes[status] = (side.statusCodes[status] ?? 0) + 1;
          if (status >= 200 && status < 300) {
            side.ok++;
            if (context.sentAt !== undefined) side.latencies.push(performance.now() - context.sentAt);
          } else side.failed++;
        },
      },
    ],
  };
  const cpu0 = process.cpuUsage();
  const result = await autocannon(options);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const [msA, msB] = sliceTimes(t0 ?? t1, t1, sliceMs);
  return {
    a: summarise(sides[0], msA),
    b: summarise(sides[1], msB),
    /** The slice schedule in epoch ms, to split the server's CPU trace by side. */
    schedule: { start: performance.timeOrigin + (t0 ?? t1), end: performance.timeOrigin + t1, sliceMs },
    errors: result.errors,
    timeouts: result.timeouts,
    duration: result.duration,
    clientCpu: (cpu.user + cpu.system) / 1e6 / result.duration,
  };
}

// ---------------------------------------------------------------------------
// Raw Engine.IO v4 / Socket.IO v5 handshakes.

/** The frame of `40/ns,<auth>` for a pool token, made once per namespace and token. */
const poolFrames = new Map<string, Map<string, Buffer>>();

/** The Socket.IO connect packet for `ns` with this `auth` (a token, an auth object, or none), as a client frame. */
function connectFrame(ns: string, auth: string | Record<string, unknown> | undefined): Buffer {
  if (typeof auth !== "string") return textFrame(connectPacket(ns, auth ?? {}));
  let frames = poolFrames.get(ns);
  if (frames === undefined) poolFrames.set(ns, (frames = new Map<string, Buffer>()));
  let frame = frames.get(auth);
  if (frame === undefined) frames.set(auth, (frame = textFrame(connectPacket(ns, { token: auth }))));
  return frame;
}

/** `40/ns,<auth as JSON>` (no `/ns,` for the main namespace). */
function connectPacket(ns: string, auth: Record<string, unknown>): string {
  return `40${ns === "/" ? "" : `${ns},`}${JSON.stringify(auth)}`;
}

function handshake(port: number, ns: string, auth: string | Record<string, unknown> | undefined, timeoutMs: number): Promise<Outcome> {
  return rawHandshake(port, ns, connectFrame(ns, auth), timeoutMs);
}

function tokenFor(auth: unknown): string | Record<string, unknown> | undefined {
  if (auth === "list") return auths[nextAuth++] ?? {};
  if (typeof auth === "string" && auth.startsWith("token:")) return auth.slice("token:".length);
  if (auth === "pool") {
    if (pool.length === 0) throw new Error("auth: pool needs setTokens first");
    return nextToken();
  }
  return undefined;
}

async function handshakes(message: Record<string, unknown>) {
  const port = Number(message.port);
  const ns = String(message.ns);
  const seconds = Number(message.seconds);
  const concurrency = Number(message.concurrency);
  const auth = message.auth;
  const reasons: Record<string, number> = {};
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const s0 = performance.now();
      const outcome = await handshake(port, ns, tokenFor(auth), 10_000);
      if (outcome.ok) {
        ok++;
        latencies.push(performance.now() - s0);
        outcome.connection.close();
      } else {
        failed++;
        reasons[outcome.reason] = (reasons[outcome.reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil(p * latencies.length) - 1))] ?? NaN;
  const cpu = process.cpuUsage(cpu0);
  return { rate: ok / elapsed, ok, failed, reasons, elapsed, p50: at(0.5), p99: at(0.99), clientCpu: (cpu.user + cpu.system) / 1e6 / elapsed };
}

/**
 * Handshakes alternating between two namespaces every `sliceMs` (A, B, A, …):
 * a handshake goes to the namespace of the slice it starts in and counts for
 * it. Only handshakes started before the deadline count; those still in
 * flight then are awaited (so every slice keeps its tail).
 */
async function handshakesAlternating(message: Record<string, unknown>) {
  const port = Number(message.port);
  const nss = message.nss as [string, string];
  const seconds = Number(message.seconds);
  const concurrency = Number(message.concurrency);
  const sliceMs = Number(message.sliceMs);
  const auth = message.auth;
  const sides: [SideStats & { reasons: Record<string, number> }, SideStats & { reasons: Record<string, number> }] = [
    { ...sideStats(), reasons: {} },
    { ...sideStats(), reasons: {} },
  ];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const worker = async () => {
    for (let now = performance.now(); now < deadline; now = performance.now()) {
      const index = (Math.floor((now - t0) / sliceMs) % 2) as 0 | 1;
      const side = sides[index];
      const outcome = await handshake(port, nss[index], tokenFor(auth), 10_000);
      if (outcome.ok) {
        side.ok++;
        side.latencies.push(performance.now() - now);
        outcome.connection.close();
      } else {
        side.failed++;
        side.reasons[outcome.reason] = (side.reasons[outcome.reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const [msA, msB] = sliceTimes(t0, deadline, sliceMs);
  return {
    a: { ...summarise(sides[0], msA), reasons: sides[0].reasons },
    b: { ...summarise(sides[1], msB), reasons: sides[1].reasons },
    schedule: { start: performance.timeOrigin + t0, end: performance.timeOrigin + deadline, sliceMs },
    elapsed,
    clientCpu: (cpu.user + cpu.system) / 1e6 / elapsed,
  };
}

// ---------------------------------------------------------------------------
// Idle sockets held open (P6).

const held: RawConnection[] = [];

async function hold(message: Record<string, unknown>) {
  const port = Number(message.port);
  const ns = String(message.ns);
  const count = Number(message.count);
  const concurrency = Number(message.concurrency ?? 100);
  // Explicit tokens (warm-ups), else the pool from its first token.
  const list = message.tokens as string[] | undefined;
  if (list === undefined && message.auth === "pool") next = 0;
  const reasons: Record<string, number> = {};
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started < count) {
      const token = list !== undefined ? list[started % list.length] : tokenFor(message.auth);
      started++;
      const outcome = await handshake(port, ns, token, 15_000);
      if (outcome.ok) held.push(outcome.connection);
      else {
        failed++;
        reasons[outcome.reason] = (reasons[outcome.reason] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { connected: held.length, failed, reasons };
}

async function release() {
  const closing = held.splice(0).map((connection) => connection.terminate());
  await Promise.all(closing);
  return { released: closing.length };
}

serve(async () => ({}), {
  setTokens: (message) => {
    pool = message.tokens as string[];
    next = 0;
    return { size: pool.length };
  },
  setAuths: (message) => {
    auths = message.auths as Array<Record<string, unknown>>;
    nextAuth = 0;
    return { size: auths.length };
  },
  http: (message) => http(message),
  httpAlternating: (message) => httpAlternating(message),
  handshake: (message) => handshakes(message),
  handshakeAlternating: (message) => handshakesAlternating(message),
  hold: (message) => hold(message),
  release: () => release(),
  stop: async () => {
    await release();
    setTimeout(() => process.exit(0), 20);
    return { ok: true };
  },
});
