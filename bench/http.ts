/**
 * P3 / P4: the server CPU time per request of a protected IOServer route
 * (`OidcHttpMiddleware`) ÷ the same route with no hook at all (what a user
 * would remove), in a server child process pinned to its own CPU, loaded by
 * wrk on the other CPU (see lib/wrk.ts, lib/pin.ts).
 *
 *   P3  the same token on every request (both routes get the same header)
 *   P4  a round-robin over a pool of 2,000 distinct valid tokens
 *       (both routes get the same rotating headers)
 *
 * The server is the bottleneck (wrk needs a fraction of a CPU for what
 * saturates the server), so both the CPU ratio (primary) and the req/s ratio
 * are meaningful; each row also prints both processes' CPU shares.
 *
 * Interleaving: each round runs the two routes in alternating one-second wrk
 * runs (open, protected, protected, open, …: the first side alternates), so a
 * burst of unrelated load hits both alike. The server's CPU time is read
 * before and after each run. The round's figure is protected ÷ open CPU per
 * request; the median of the rounds is reported with their spread.
 *
 * Without wrk (or with BENCH_LOAD=autocannon) the load generator is an
 * autocannon child alternating routes every BENCH_HTTP_SLICE_MS (200 ms);
 * on two CPUs it saturates before the server, so the row says so and only the
 * CPU ratio is meaningful.
 *
 * BENCH_PROFILE_DIR=<dir>: a CPU profile of the server during the last round
 * of P3 and of P4 (written there, summarised on stderr).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Child } from "./lib/child.js";
import { baselineFirst, cacheNote, fmt, log, median, ratioStatus, round, sliceMs, splitCpu, type BenchParams, type Row, type Schedule } from "./lib/common.js";
import { fixture, type Fixture } from "./lib/fixture.js";
import { summariseProfile } from "./lib/profile.js";
import { metricsRows } from "./lib/metricsCost.js";
import { rotation, runWrk, WRK } from "./lib/wrk.js";

/** One side (route) of one round. */
export interface Side {
  rps: number;
  ok: number;
  failed: number;
  statusCodes: Record<string, number>;
  p50: number;
  p99: number;
  /** Server CPU time per successful request, µs. */
  cpuPerRequest?: number;
}
/** One round: both routes, with the CPU shares of both processes. */
export interface HttpRound {
  open: Side;
  secure: Side;
  errors: number;
  timeouts: number;
  /** Shares of one core used by the load generator and by the server during the round. */
  clientCpu: number;
  serverCpu: number;
}

type Auth = { token: string } | { rotate: true };
/** wrk's rotating-header script, written once per run of the bench. */
let rotate: { script: string; tokensFile: string } | undefined;

interface CpuUsage {
  user: number;
  system: number;
}

/** Server CPU per request, protected ÷ open: at most this. */
const TARGET = { P3: 1.05, P4: 1.1 };
const SLICE_MS = sliceMs("BENCH_HTTP_SLICE_MS", 200);
/**
 * The two routes compared, baseline first. BENCH_HTTP_PATHS (diagnosis only)
 * compares others, e.g. "/open/me,/hooked/me": what a hook that does nothing costs.
 */
const PATHS = (process.env.BENCH_HTTP_PATHS ?? "/open/me,/secure/me").split(",").slice(0, 2);
const pct = (share: number) => `${Math.round(share * 100)} %`;

async function serverCpu(server: Child): Promise<number> {
  const cpu = await server.ask<CpuUsage>("cpu");
  return (cpu.user + cpu.system) / 1e6;
}

interface SeparateRun extends Side {
  errors: number;
  timeouts: number;
  duration: number;
  non2xx: number;
  clientCpu: number;
}

async function separate(fx: Fixture, url: string, seconds: number, connections: number, auth: Auth): Promise<SeparateRun> {
  const run = await fx.load.ask<Omit<SeparateRun, "failed">>("http", { url, seconds, connections, ...auth }, (seconds + 30) * 1000);
  return { ...run, failed: run.non2xx };
}

/** One round with wrk: one-second runs of each route in turn, `seconds` per route in all; server CPU read around each run. */
async function wrkRound(fx: Fixture, server: Child, base: string, seconds: number, connections: number, auth: Auth, first: 0 | 1): Promise<HttpRound> {
  const totals = [0, 1].map(() => ({ requests: 0, seconds: 0, non2xx: 0, errors: 0, cpu: 0, p50: [] as number[], p99: [] as number[], wrkCpu: [] as number[] }));
  const paths = PATHS;
  const runs = Math.max(1, Math.round(seconds));
  const t0 = performance.now();
  const cpu0 = await serverCpu(server);
  for (let i = 0; i < runs; i++) {
    const order = (first + i) % 2 === 0 ? [0, 1] : [1, 0];
    for (const side of order) {
      const before = await serverCpu(server);
      const run = await runWrk({
        url: `${base}${paths[side]!}`,
        seconds: 1,
        connections,
        ...("token" in auth ? { token: auth.token } : { rotate: (rotate ??= rotation(mkdtempSync(join(tmpdir(), "ioserver-oidc-bench-wrk-")), fx.pool)) }),
      });
      const after = await serverCpu(server);
      const total = totals[side]!;
      total.requests += run.requests;
      total.seconds += run.seconds;
      total.non2xx += run.non2xx;
      total.errors += run.socketErrors;
      total.cpu += after - before;
      total.p50.push(run.p50);
      total.p99.push(run.p99);
      total.wrkCpu.push(run.cpu);
    }
  }
  const cpu1 = await serverCpu(server);
  const side = (index: number): Side => {
    const total = totals[index]!;
    return {
      rps: total.requests / total.seconds,
      ok: total.requests - total.non2xx,
      failed: total.non2xx,
      statusCodes: total.non2xx > 0 ? { "non-2xx": total.non2xx } : {},
      p50: median(total.p50),
      p99: median(total.p99),
      cpuPerRequest: (total.cpu * 1e6) / Math.max(1, total.requests - total.non2xx),
    };
  };
  return {
    open: side(0),
    secure: side(1),
    errors: totals[0]!.errors + totals[1]!.errors,
    timeouts: 0,
    clientCpu: median([...totals[0]!.wrkCpu, ...totals[1]!.wrkCpu]),
    serverCpu: (cpu1 - cpu0) / ((performance.now() - t0) / 1000),
  };
}

/** One round of `seconds`: wrk runs, or (autocannon) alternating slices in one run, or two separate runs of half the time. */
async function oneRound(fx: Fixture, server: Child, base: string, seconds: number, connections: number, auth: Auth, first: 0 | 1 = 0): Promise<HttpRound> {
  if (WRK !== undefined) return wrkRound(fx, server, base, seconds / 2, connections, auth, first);
  const cpu0 = await serverCpu(server);
  const t0 = performance.now();
  let result: Omit<HttpRound, "serverCpu">;
  if (SLICE_MS > 0) {
    await server.ask("cpuTraceStart");
    const run = await fx.load.ask<{ a: Side; b: Side; schedule: Schedule; errors: number; timeouts: number; clientCpu: number }>(
      "httpAlternating",
      { url: base, paths: baselineFirst(first, [PATHS[0]!, PATHS[1]!]), seconds, sliceMs: SLICE_MS, connections, ...auth },
      (seconds + 30) * 1000,
    );
    const { trace } = await server.ask<{ trace: Array<[number, number]> }>("cpuTraceStop");
    const [cpuA, cpuB] = splitCpu(trace, run.schedule);
    const [open, secure] = baselineFirst(first, [
      { ...run.a, cpuPerRequest: cpuA / Math.max(1, run.a.ok) },
      { ...run.b, cpuPerRequest: cpuB / Math.max(1, run.b.ok) },
    ]);
    result = {
      open,
      secure,
      errors: run.errors,
      timeouts: run.timeouts,
      clientCpu: run.clientCpu,
    };
  } else {
    const side = async (path: string) => {
      const before = await serverCpu(server);
      const run = await separate(fx, `${base}${path}`, seconds / 2, connections, auth);
      return { ...run, cpuPerRequest: ((await serverCpu(server)) - before) * 1e6 / Math.max(1, run.ok) };
    };
    const loaded: SeparateRun[] = [];
    for (const path of baselineFirst(first, [PATHS[0]!, PATHS[1]!])) loaded.push(await side(path));
    const [a, b] = baselineFirst(first, [loaded[0]!, loaded[1]!]);
    result = { open: a, secure: b, errors: a.errors + b.errors, timeouts: a.timeouts + b.timeouts, clientCpu: (a.clientCpu + b.clientCpu) / 2 };
  }
  const cpu1 = await serverCpu(server);
  return { ...result, serverCpu: (cpu1 - cpu0) / ((performance.now() - t0) / 1000) };
}

export async function runHttp(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  const ids = (["P3", "P4"] as const).filter((id) => only.has(id));
  if (ids.length === 0 && !only.has("M3")) return [];
  const fx = await fixture(params);
  const { server, url } = await fx.startServer("http");
  const profileDir = process.env.BENCH_PROFILE_DIR || undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const rows: Row[] = [];
  const how =
    WRK !== undefined
      ? `wrk, ${params.httpRounds} rounds × ${Math.max(1, Math.round(params.httpSeconds / 2))} alternating 1 s runs per route`
      : SLICE_MS > 0
        ? `autocannon, ${params.httpRounds} rounds × ${params.httpSeconds} s alternating every ${SLICE_MS} ms`
        : `autocannon, ${params.httpRounds} rounds × 2 runs of ${params.httpSeconds / 2} s`;
  try {
    for (const id of ids) {
      const auth: Auth = id === "P3" ? { token: fx.single } : { rotate: true };
      const describe = id === "P3" ? "same token" : `${fx.pool.length} distinct tokens, round-robin`;
      const measure = `server CPU per request, protected ÷ open route (no hook), ${describe}`;
      // Warm-up (JIT, the key set, connections; P4: the first pass over the pool) and the functional check of the protected route.
      const warm = await oneRound(fx, server, url, 2, params.httpConnections, auth);
      if (warm.open.ok === 0 || warm.secure.ok === 0 || warm.secure.failed > 0 || warm.open.failed > 0) {
        rows.push({
          id,
          measure,
          value: "n/a",
          target: `≤ ${TARGET[id]}`,
          status: "FAIL",
          detail: `warm-up: open ${warm.open.ok} ok ${JSON.stringify(warm.open.statusCodes)}; protected ${warm.secure.ok} ok ${JSON.stringify(warm.secure.statusCodes)}; errors ${warm.errors}`,
        });
        continue;
      }
      const rounds: HttpRound[] = [];
      for (let r = 0; r < params.httpRounds; r++) {
        const profile = profileDir !== undefined && r === params.httpRounds - 1;
        if (profile) await server.ask("profileStart");
        const round_ = await oneRound(fx, server, url, params.httpSeconds, params.httpConnections, auth, (r % 2) as 0 | 1);
        if (profile) {
          const path = join(profileDir, `server-${id}.cpuprofile`);
          await server.ask("profileStop", { path });
          log(`${id}: CPU profile of the server during the last round (both routes): ${path}\n${summariseProfile(path, 25)}`);
        }
        rounds.push(round_);
        log(
          `${id} round ${r + 1}/${params.httpRounds}: open ${fmt(round_.open.rps)} req/s, protected ${fmt(round_.secure.rps)} req/s → ` +
            `${round(round_.secure.rps / round_.open.rps, 3)} (CPU: server ${pct(round_.serverCpu)}, load generator ${pct(round_.clientCpu)}; ` +
            `server CPU per request ${round(round_.secure.cpuPerRequest ?? NaN, 2)} vs ${round(round_.open.cpuPerRequest ?? NaN, 2)} µs → ` +
            `${round((round_.secure.cpuPerRequest ?? NaN) / (round_.open.cpuPerRequest ?? NaN), 3)})`,
        );
      }
      const health = await server.ask<{ tokenCache?: unknown } | null>("health");
      if (health !== null) log(`${id}: server token cache ${JSON.stringify(health.tokenCache ?? null)}`);
      const ratios = rounds.map((each) => each.secure.rps / each.open.rps);
      const broken = rounds.reduce((sum, each) => sum + each.open.failed + each.secure.failed + each.errors + each.timeouts, 0);
      const ratio = median(ratios);
      // Protected ÷ open server CPU per request: the cost of the package per request, whichever process is the limit.
      const cpuOpen = median(rounds.map((each) => each.open.cpuPerRequest ?? NaN));
      const cpuSecure = median(rounds.map((each) => each.secure.cpuPerRequest ?? NaN));
      const cpuRatios = rounds.map((each) => (each.secure.cpuPerRequest ?? NaN) / (each.open.cpuPerRequest ?? NaN));
      const cpuRatio = median(cpuRatios);
      const openRps = median(rounds.map((each) => each.open.rps));
      // A load generator near a full CPU may be what limits the open route: the req/s ratio would then flatter the package.
      const clientBound = median(rounds.map((each) => each.clientCpu)) >= 0.9 ? "LOAD GENERATOR SATURATED (req/s ratio may be optimistic); " : "";
      const secureRps = median(rounds.map((each) => each.secure.rps));
      const spread = (values: number[]) => `${round(Math.min(...values), 3)}–${round(Math.max(...values), 3)}`;
      rows.push({
        id,
        measure,
        value: `${round(cpuRatio, 3).toFixed(3)}×`,
        target: `≤ ${TARGET[id]}×`,
        status: broken > 0 ? "FAIL" : ratioStatus(cpuRatio, TARGET[id], "<="),
        detail:
          `${clientBound}${round(cpuSecure, 2)} vs ${round(cpuOpen, 2)} µs server CPU per request (medians; per-round ratios ${spread(cpuRatios)}); ` +
          `req/s ${fmt(secureRps)} vs ${fmt(openRps)} → ${round(ratio, 3)} (rounds ${spread(ratios)}); ${how}, ${params.httpConnections} connections; ` +
          `p99 ${round(median(rounds.map((each) => each.secure.p99)), 2)} vs ${round(median(rounds.map((each) => each.open.p99)), 2)} ms; ` +
          `CPU server ${pct(median(rounds.map((each) => each.serverCpu)))}, load generator ${pct(median(rounds.map((each) => each.clientCpu)))}; ` +
          `${cacheNote(health)}`.replace(/; $/, "") +
          (broken > 0 ? `; ${broken} failed requests: ${JSON.stringify(rounds.map((each) => [each.open.statusCodes, each.secure.statusCodes, each.errors, each.timeouts]))}` : ""),
        data: { ratio, ratios, openRps, secureRps, cpuOpen, cpuSecure, cpuRatio, cpuRatios, rounds, health, load: WRK !== undefined ? "wrk" : "autocannon", sliceMs: SLICE_MS },
      });
    }
    if (only.has("M3")) {
      // The same token as P3; every round is a P3 round, with the metrics adapter attached or not.
      const auth: Auth = { token: fx.single };
      if (!ids.includes("P3")) await oneRound(fx, server, url, 2, params.httpConnections, auth);
      rows.push(
        ...(await metricsRows(server, "M3", "P3 (same token)", params.httpRounds, how, async (index) => {
          const each = await oneRound(fx, server, url, params.httpSeconds, params.httpConnections, auth, (index % 2) as 0 | 1);
          return (each.secure.cpuPerRequest ?? NaN) / (each.open.cpuPerRequest ?? NaN);
        })),
      );
    }
    const logs = await server.ask<{ counts: Record<string, number>; notable: string[] }>("logs");
    if (logs.notable.length > 0) log(`server log lines at level <= 4: ${JSON.stringify(logs.counts)}\n  ${logs.notable.join("\n  ")}`);
  } finally {
    await server.stop();
    if (rotate !== undefined) rmSync(join(rotate.script, ".."), { recursive: true, force: true });
    rotate = undefined;
  }
  return rows;
}
