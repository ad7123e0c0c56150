/**
 * Shared helpers of `npm run bench`: modes, statistics, ports, the machine
 * description, bounded waits.
 */
import { execSync } from "node:child_process";
import { createServer } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";

export type BenchMode = "quick" | "full";

/** Every knob of one run; `quick` and `full` differ only in counts and durations. */
export interface BenchParams {
  mode: BenchMode;
  /** P1/P2: interleaved rounds (verifyOidcToken, crypto.verify), distinct tokens per round and algorithm. */
  microRounds: number;
  microTokens: number;
  /** P1/P2: distinct tokens verified per algorithm before the rounds. */
  microWarmTokens: number;
  /** P3/P4: rounds (each alternating open / protected), seconds per round (both sides), connections. */
  httpRounds: number;
  httpSeconds: number;
  httpConnections: number;
  /** P4/P5/P6: the distinct-token pool. */
  poolSize: number;
  /** P5: rounds (each alternating open / protected), seconds per round (both sides), handshakes in flight. */
  handshakeRounds: number;
  handshakeSeconds: number;
  handshakeConcurrency: number;
  /** P6: idle sockets per measurement, measurements per kind (each in a fresh server process). */
  heapSockets: number;
  heapRounds: number;
  /** P8: how long the JWKS answers 503, and the request rate meanwhile. */
  outageSeconds: number;
  outageRps: number;
}

/** A number from the environment (`fallback` when unset); out of range or malformed, the run stops with exit code 2. */
export function intEnv(name: string, fallback: number, min: number, max: number, integer = true): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    process.stderr.write(`${name} must be ${integer ? "an integer" : "a number"} in [${min}, ${max}], got ${raw}\n`);
    process.exit(2);
  }
  return value;
}

export function paramsFor(mode: BenchMode): BenchParams {
  const quick = mode === "quick";
  return {
    mode,
    microRounds: intEnv("BENCH_MICRO_ROUNDS", quick ? 7 : 15, 1, 101),
    microTokens: intEnv("BENCH_MICRO_TOKENS", quick ? 500 : 1_000, 50, 20_000),
    microWarmTokens: intEnv("BENCH_MICRO_WARM", 5_000, 0, 50_000),
    httpRounds: intEnv("BENCH_HTTP_ROUNDS", quick ? 6 : 15, 1, 101),
    httpSeconds: intEnv("BENCH_HTTP_SECONDS", quick ? 3 : 6, 1, 120, false),
    httpConnections: intEnv("BENCH_HTTP_CONNECTIONS", 50, 1, 500),
    poolSize: intEnv("BENCH_POOL", 2_000, 10, 20_000),
    handshakeRounds: intEnv("BENCH_HANDSHAKE_ROUNDS", quick ? 6 : 15, 1, 101),
    handshakeSeconds: intEnv("BENCH_HANDSHAKE_SECONDS", quick ? 2 : 4, 1, 120, false),
    handshakeConcurrency: intEnv("BENCH_HANDSHAKE_CONCURRENCY", 50, 1, 1_000),
    heapSockets: intEnv("BENCH_HEAP_SOCKETS", 2_000, 10, 10_000),
    heapRounds: intEnv("BENCH_HEAP_ROUNDS", quick ? 2 : 5, 1, 21),
    outageSeconds: intEnv("BENCH_OUTAGE_SECONDS", 10, 2, 120),
    outageRps: intEnv("BENCH_OUTAGE_RPS", 50, 1, 1_000),
  };
}

const started = Date.now();
export const log = (text: string) => process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const elapsedS = () => (Date.now() - started) / 1000;

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const round = (value: number, digits = 2) => (Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : NaN);

/** Thousands with a thin separator, for ops/s. */
export const fmt = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Reject after `ms` (the timer is always cleared). */
export function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export interface Machine {
  date: string;
  nproc: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  platform: string;
  ulimitN: string;
  /** 1-, 5- and 15-minute load averages when the run started: other work on the machine skews every figure. */
  loadAverage: number[];
  packages: Record<string, string>;
}

function sh(command: string): string | undefined {
  try {
    return execSync(command, { shell: "/bin/sh", encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

export async function machine(): Promise<Machine> {
  const packages: Record<string, string> = {};
  const { readFileSync } = await import("node:fs");
  for (const name of ["ioserver", "socket.io", "engine.io", "fastify", "jose", "autocannon", "ws"]) {
    try {
      // Read directly: some packages do not export their package.json.
      const file = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
      packages[name] = (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
    } catch {
      packages[name] = "?";
    }
  }
  return {
    date: sh("date") ?? new Date().toString(),
    nproc: Number(sh("nproc") ?? cpus().length),
    cpu: cpus()[0]?.model ?? "?",
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    platform: `${process.platform} ${sh("uname -r") ?? ""}`.trim(),
    ulimitN: sh("ulimit -n") ?? "?",
    loadAverage: loadavg().map((value) => round(value, 2)),
    packages,
  };
}

/** One row of the final table. */
export interface Row {
  id: string;
  measure: string;
  /** The printed value (ratio, count or yes/no). */
  value: string;
  target: string;
  /** PASS: target met. MISS: a ratio missed its target (noise-prone; not a failure). FAIL: functional failure. ERROR: the measure crashed. */
  status: "PASS" | "MISS" | "FAIL" | "ERROR" | "SKIP";
  /** Supporting figures (ops/s, counts, latencies). */
  detail: string;
  /** Raw numbers for the JSON file. */
  data?: unknown;
}

/** Statuses that make the exit code non-zero. */
export const FATAL: ReadonlySet<Row["status"]> = new Set(["FAIL", "ERROR"]);

/** A ratio target: PASS or MISS, never FAIL (a slow run on a noisy machine is not a bug). */
export function ratioStatus(value: number, target: number, direction: ">=" | "<="): Row["status"] {
  if (!Number.isFinite(value)) return "MISS";
  return (direction === ">=" ? value >= target : value <= target) ? "PASS" : "MISS";
}

/** Identity-provider-ish constants shared by the bench parts. */
export const BENCH_ISSUER = "https://issuer.bench.invalid";
export const BENCH_AUDIENCE = "bench-api";

/** "token cache 12 hits / 3 misses; " from the server's getHealth(), or "" when the package has no token cache. */
export function cacheNote(health: { tokenCache?: unknown } | null): string {
  const stats = health?.tokenCache as { hits?: unknown; misses?: unknown } | undefined;
  if (stats === undefined || stats === null || typeof stats.hits !== "number" || typeof stats.misses !== "number") return "";
  return `token cache ${stats.hits} hits / ${stats.misses} misses; `;
}

/** A slice length in ms from the environment (0 = separate runs instead of alternating slices). */
export function sliceMs(name: string, fallback: number): number {
  const value = intEnv(name, fallback, 0, 60_000);
  if (value > 0 && value < 20) throw new Error(`${name} must be 0 (separate runs) or at least 20 ms, got ${value}`);
  return value;
}

/** The alternation schedule of one round, in epoch ms (see the load generator). */
export interface Schedule {
  start: number;
  end: number;
  sliceMs: number;
}

/**
 * Two sides of a round in the order they were loaded (the side loaded first
 * in each round alternates, so neither is always the one that starts from
 * an idle server or whose last requests end after the round), given back
 * baseline first: `first` 1 means the other side was loaded first.
 */
export function baselineFirst<T>(first: 0 | 1, loaded: readonly [T, T]): [T, T] {
  return first === 0 ? [loaded[0], loaded[1]] : [loaded[1], loaded[0]];
}

/**
 * Split a server CPU trace ([epoch ms, cumulative CPU µs] every few ms) by
 * the alternation slices: CPU µs spent while side A (even slices) and side B
 * (odd slices) were being loaded. Each interval between two samples goes to
 * the slice its midpoint falls in; time outside [start, end] is ignored.
 */
export function splitCpu(trace: ReadonlyArray<readonly [number, number]>, schedule: Schedule): [number, number] {
  let a = 0;
  let b = 0;
  for (let i = 1; i < trace.length; i++) {
    const [t0, c0] = trace[i - 1]!;
    const [t1, c1] = trace[i]!;
    const mid = (t0 + t1) / 2;
    if (mid < schedule.start || mid >= schedule.end) continue;
    if (Math.floor((mid - schedule.start) / schedule.sliceMs) % 2 === 0) a += c1 - c0;
    else b += c1 - c0;
  }
  return [a, b];
}
