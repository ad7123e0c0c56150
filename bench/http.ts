/**
 * P3 / P4: requests per second of a protected IOServer route
 * (`OidcHttpMiddleware`) ÷ the same route without it, in a server child
 * process, loaded by autocannon in ANOTHER child process.
 *
 *   P3  the same token on every request (both routes get the same header)
 *   P4  a global round-robin over a pool of 2,000 distinct valid tokens
 *       (both routes get the same rotating headers)
 *
 * Interleaving: each round is one autocannon run that alternates between the
 * open and the protected route every BENCH_HTTP_SLICE_MS (default 200 ms:
 * open, protected, open, … equal durations), so a burst of unrelated load on
 * the machine hits both sides alike; a request counts for the route of the
 * slice it was sent in. The round's ratio is protected ÷ open req/s; the
 * median of the rounds is reported. BENCH_HTTP_SLICE_MS=0 runs separate
 * autocannon runs instead (open, protected, open, … each half a round long).
 *
 * Also printed: the server's CPU time per request on each side (its CPU
 * trace split by the same slices) and their ratio — what the req/s ratio
 * would be if the server alone were the limit. On a 2-vCPU machine the load
 * generator saturates a core first (the row then says so), which makes the
 * req/s ratio optimistic; the CPU ratio is not affected by that.
 *
 * BENCH_PROFILE_DIR=<dir>: a CPU profile of the server during the last round
 * of P3 and of P4 (written there, summarised on stderr).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Child } from "./lib/child.js";
import { cacheNote, fmt, log, median, ratioStatus, round, sliceMs, splitCpu, type BenchParams, type Row, type Schedule } from "./lib/common.js";
import { fixture, type Fixture } from "./lib/fixture.js";
import { summariseProfile } from "./lib/profile.js";

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

interface CpuUsage {
  user: number;
  system: number;
}

const TARGET = { P3: 0.85, P4: 0.6 };
const SLICE_MS = sliceMs("BENCH_HTTP_SLICE_MS", 200);
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

/** One round of `seconds`: alternating slices in one run, or two separate runs of half the time. */
async function oneRound(fx: Fixture, server: Child, base: string, seconds: number, connections: number, auth: Auth): Promise<HttpRound> {
  const cpu0 = await serverCpu(server);
  const t0 = performance.now();
  let result: Omit<HttpRound, "serverCpu">;
  if (SLICE_MS > 0) {
    await server.ask("cpuTraceStart");
    const run = await fx.load.ask<{ a: Side; b: Side; schedule: Schedule; errors: number; timeouts: number; clientCpu: number }>(
      "httpAlternating",
      { url: base, paths: ["/open/me", "/secure/me"], seconds, sliceMs: SLICE_MS, connections, ...auth },
      (seconds + 30) * 1000,
    );
    const { trace } = await server.ask<{ trace: Array<[number, number]> }>("cpuTraceStop");
    const [cpuA, cpuB] = splitCpu(trace, run.schedule);
    result = {
      open: { ...run.a, cpuPerRequest: cpuA / Math.max(1, run.a.ok) },
      secure: { ...run.b, cpuPerRequest: cpuB / Math.max(1, run.b.ok) },
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
    const a = await side("/open/me");
    const b = await side("/secure/me");
    result = { open: a, secure: b, errors: a.errors + b.errors, timeouts: a.timeouts + b.timeouts, clientCpu: (a.clientCpu + b.clientCpu) / 2 };
  }
  const cpu1 = await serverCpu(server);
  return { ...result, serverCpu: (cpu1 - cpu0) / ((performance.now() - t0) / 1000) };
}

export async function runHttp(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  const ids = (["P3", "P4"] as const).filter((id) => only.has(id));
  if (ids.length === 0) return [];
  const fx = await fixture(params);
  const { server, url } = await fx.startServer("http");
  const profileDir = process.env.BENCH_PROFILE_DIR || undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const rows: Row[] = [];
  const how = SLICE_MS > 0 ? `${params.httpRounds} rounds × ${params.httpSeconds} s alternating every ${SLICE_MS} ms` : `${params.httpRounds} rounds × 2 runs of ${params.httpSeconds / 2} s`;
  try {
    for (const id of ids) {
      const auth: Auth = id === "P3" ? { token: fx.single } : { rotate: true };
      const describe = id === "P3" ? "same token" : `${fx.pool.length} distinct tokens, round-robin`;
      const measure = `protected ÷ open route req/s, ${describe}`;
      // Warm-up (JIT, the key set, connections; P4: the first pass over the pool) and the functional check of the protected route.
      const warm = await oneRound(fx, server, url, 2, params.httpConnections, auth);
      if (warm.open.ok === 0 || warm.secure.ok === 0 || warm.secure.failed > 0 || warm.open.failed > 0) {
        rows.push({
          id,
          measure,
          value: "n/a",
          target: `≥ ${TARGET[id]}`,
          status: "FAIL",
          detail: `warm-up: open ${warm.open.ok} ok ${JSON.stringify(warm.open.statusCodes)}; protected ${warm.secure.ok} ok ${JSON.stringify(warm.secure.statusCodes)}; errors ${warm.errors}`,
        });
        continue;
      }
      const rounds: HttpRound[] = [];
      for (let r = 0; r < params.httpRounds; r++) {
        const profile = profileDir !== undefined && r === params.httpRounds - 1;
        if (profile) await server.ask("profileStart");
        const round_ = await oneRound(fx, server, url, params.httpSeconds, params.httpConnections, auth);
        if (profile) {
          const path = join(profileDir, `server-${id}.cpuprofile`);
          await server.ask("profileStop", { path });
          log(`${id}: CPU profile of the server during the last round (both routes): ${path}\n${summariseProfile(path, 25)}`);
        }
        rounds.push(round_);
        log(
          `${id} round ${r + 1}/${params.httpRounds}: open ${fmt(round_.open.rps)} req/s, protected ${fmt(round_.secure.rps)} req/s → ` +
            `${round(round_.secure.rps / round_.open.rps, 3)} (CPU: server ${pct(round_.serverCpu)}, load generator ${pct(round_.clientCpu)}; ` +
            `server CPU per request ${round(round_.secure.cpuPerRequest ?? NaN, 1)} vs ${round(round_.open.cpuPerRequest ?? NaN, 1)} µs)`,
        );
      }
      const health = await server.ask<{ tokenCache?: unknown } | null>("health");
      if (health !== null) log(`${id}: server token cache ${JSON.stringify(health.tokenCache ?? null)}`);
      const ratios = rounds.map((each) => each.secure.rps / each.open.rps);
      const broken = rounds.reduce((sum, each) => sum + each.open.failed + each.secure.failed + each.errors + each.timeouts, 0);
      const ratio = median(ratios);
      // Open ÷ protected server CPU per request: what the req/s ratio would be if the server alone were the limit.
      const cpuOpen = median(rounds.map((each) => each.open.cpuPerRequest ?? NaN));
      const cpuSecure = median(rounds.map((each) => each.secure.cpuPerRequest ?? NaN));
      const cpuRatio = median(rounds.map((each) => (each.open.cpuPerRequest ?? NaN) / (each.secure.cpuPerRequest ?? NaN)));
      const openRps = median(rounds.map((each) => each.open.rps));
      // A load generator near a full core may be what limits the open route: the ratio would then flatter the package.
      const clientBound = median(rounds.map((each) => each.clientCpu)) >= 0.9 ? "LOAD GENERATOR SATURATED (ratio may be optimistic); " : "";
      const secureRps = median(rounds.map((each) => each.secure.rps));
      rows.push({
        id,
        measure,
        value: round(ratio, 3).toFixed(3),
        target: `≥ ${TARGET[id]}`,
        status: broken > 0 ? "FAIL" : ratioStatus(ratio, TARGET[id], ">="),
        detail:
          `${clientBound}${fmt(secureRps)} vs ${fmt(openRps)} req/s (medians; ${how}, ${params.httpConnections} connections; ` +
          `p99 ${round(median(rounds.map((each) => each.secure.p99)), 2)} vs ${round(median(rounds.map((each) => each.open.p99)), 2)} ms; ` +
          `CPU server ${pct(median(rounds.map((each) => each.serverCpu)))}, load generator ${pct(median(rounds.map((each) => each.clientCpu)))}; ` +
          `server CPU per request ${round(cpuSecure, 1)} vs ${round(cpuOpen, 1)} µs → ${round(cpuRatio, 3)}; ` +
          `${cacheNote(health)}ratios ${ratios.map((x) => round(x, 2)).join(" ")})` +
          (broken > 0 ? `; ${broken} failed requests: ${JSON.stringify(rounds.map((each) => [each.open.statusCodes, each.secure.statusCodes, each.errors, each.timeouts]))}` : ""),
        data: { ratio, ratios, openRps, secureRps, cpuOpen, cpuSecure, cpuRatio, rounds, health, sliceMs: SLICE_MS },
      });
    }
    const logs = await server.ask<{ counts: Record<string, number>; notable: string[] }>("logs");
    if (logs.notable.length > 0) log(`server log lines at level <= 4: ${JSON.stringify(logs.counts)}\n  ${logs.notable.join("\n  ")}`);
  } finally {
    await server.stop();
  }
  return rows;
}
