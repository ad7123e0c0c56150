/**
 * P5: Socket.IO handshakes per second on a namespace protected by
 * `OidcSocketMiddleware` ÷ on an open namespace, same server child, raw
 * Engine.IO v4 clients in the load-generator child (WebSocket frames over a
 * bare TCP socket, see clients/rawSocketIo.ts: no socket.io-client and no
 * WebSocket library, so the client is not the bottleneck), a fixed number in
 * flight. Each handshake: connect, `0{...}`, `40/ns,{"token":...}`,
 * `40/ns,{"sid":...}`, close. Both namespaces receive the same packets (the
 * open one ignores the token); tokens rotate over the 2,000-token pool.
 *
 * Interleaving: each round alternates between the two namespaces every
 * BENCH_HANDSHAKE_SLICE_MS (default 500 ms); a handshake counts for the
 * namespace of the slice it started in. BENCH_HANDSHAKE_SLICE_MS=0 runs
 * separate runs instead (open, protected, … each half a round long).
 * Before the rounds, handshakes with the pool's tokens run until the
 * server's token cache holds them (each token is kept from its second
 * verification): the rounds measure the steady state, where a returning
 * token is a cache hit (P1 measures a first verification).
 * The protected side must authenticate every handshake (any `44` fails P5).
 * Two figures, both with targets: the rate ratio, and the server's CPU time
 * per handshake, authenticated ÷ open (the server runs on its own CPU, the
 * load generator on the other: see lib/pin.ts, so the server is the limit).
 * BENCH_PROFILE_DIR=<dir>: a CPU profile of the server during the last round.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Child } from "./lib/child.js";
import { baselineFirst, cacheNote, fmt, log, median, ratioStatus, round, sliceMs, splitCpu, type BenchParams, type Row, type Schedule } from "./lib/common.js";
import { fixture, type Fixture } from "./lib/fixture.js";
import { metricsRows } from "./lib/metricsCost.js";
import { summariseProfile } from "./lib/profile.js";

interface Side {
  rps: number;
  ok: number;
  failed: number;
  reasons: Record<string, number>;
  p50: number;
  p99: number;
  /** Server CPU time per successful handshake, µs. */
  cpuPerHandshake?: number;
}
interface HandshakeRound {
  open: Side;
  secure: Side;
  clientCpu: number;
  serverCpu: number;
}
interface CpuUsage {
  user: number;
  system: number;
}

/** Handshakes/s, authenticated ÷ open: at least this; server CPU per handshake, authenticated ÷ open: at most CPU_TARGET. */
const TARGET = 0.95;
const CPU_TARGET = 1.08;
const SLICE_MS = sliceMs("BENCH_HANDSHAKE_SLICE_MS", 500);
/**
 * The two namespaces compared, baseline first. BENCH_HANDSHAKE_NAMESPACES
 * (diagnosis only) compares others, e.g. "/open,/open": what the harness
 * reads for two identical sides.
 */
const NAMESPACES = namespaces(process.env.BENCH_HANDSHAKE_NAMESPACES ?? "/open,/secure");

function namespaces(value: string): [string, string] {
  const [a, b, ...rest] = value.split(",");
  if (a === undefined || b === undefined || rest.length > 0 || ![a, b].every((ns) => ns === "/open" || ns === "/secure")) {
    throw new Error(`BENCH_HANDSHAKE_NAMESPACES must be two of /open and /secure, comma-separated, got ${JSON.stringify(value)}`);
  }
  return [a, b];
}
const pct = (share: number) => `${Math.round(share * 100)} %`;

async function serverCpu(server: Child): Promise<number> {
  const cpu = await server.ask<CpuUsage>("cpu");
  return (cpu.user + cpu.system) / 1e6;
}

/** One round; `first` 1 loads the protected namespace first (the rounds alternate). */
async function oneRound(fx: Fixture, server: Child, port: number, seconds: number, concurrency: number, first: 0 | 1): Promise<HandshakeRound> {
  const cpu0 = await serverCpu(server);
  const t0 = performance.now();
  let result: Omit<HandshakeRound, "serverCpu">;
  const timeout = (seconds + 40) * 1000;
  if (SLICE_MS > 0) {
    await server.ask("cpuTraceStart");
    const run = await fx.load.ask<{ a: Side; b: Side; schedule: Schedule; clientCpu: number }>(
      "handshakeAlternating",
      { port, nss: baselineFirst(first, NAMESPACES), seconds, sliceMs: SLICE_MS, concurrency, auth: "pool" },
      timeout,
    );
    const { trace } = await server.ask<{ trace: Array<[number, number]> }>("cpuTraceStop");
    const [cpuA, cpuB] = splitCpu(trace, run.schedule);
    const [open, secure] = baselineFirst(first, [
      { ...run.a, cpuPerHandshake: cpuA / Math.max(1, run.a.ok) },
      { ...run.b, cpuPerHandshake: cpuB / Math.max(1, run.b.ok) },
    ]);
    result = { open, secure, clientCpu: run.clientCpu };
  } else {
    type Separate = { rate: number; ok: number; failed: number; reasons: Record<string, number>; p50: number; p99: number; clientCpu: number };
    const half = async (ns: string): Promise<Side & { clientCpu: number }> => {
      const before = await serverCpu(server);
      const run = await fx.load.ask<Separate>("handshake", { port, ns, seconds: seconds / 2, concurrency, auth: "pool" }, timeout);
      return { ...run, rps: run.rate, cpuPerHandshake: ((await serverCpu(server)) - before) * 1e6 / Math.max(1, run.ok) };
    };
    const loaded: Array<Side & { clientCpu: number }> = [];
    for (const ns of baselineFirst(first, NAMESPACES)) loaded.push(await half(ns));
    const [open, secure] = baselineFirst(first, [loaded[0]!, loaded[1]!]);
    result = { open, secure, clientCpu: (open.clientCpu + secure.clientCpu) / 2 };
  }
  const cpu1 = await serverCpu(server);
  return { ...result, serverCpu: (cpu1 - cpu0) / ((performance.now() - t0) / 1000) };
}

/**
 * Handshakes on the protected namespace with the pool's tokens until the
 * server's token cache holds (nearly) every one of them, at most 30 s: the
 * rounds then measure a server in its steady state, where a returning token
 * is a cache hit. What a first verification costs is P1's figure.
 */
async function warmTokenCache(fx: Fixture, server: Child, port: number, concurrency: number): Promise<{ entries: number; handshakes: number; seconds: number }> {
  const t0 = performance.now();
  let handshakes = 0;
  let entries = 0;
  while (performance.now() - t0 < 30_000) {
    const health = await server.ask<{ tokenCache?: { entries?: number } } | null>("health");
    entries = health?.tokenCache?.entries ?? 0;
    if (health === null || entries >= 0.98 * fx.pool.length) break;
    const run = await fx.load.ask<{ ok: number; failed: number }>("handshake", { port, ns: "/secure", seconds: 2, concurrency, auth: "pool" }, 45_000);
    handshakes += run.ok + run.failed;
  }
  return { entries, handshakes, seconds: (performance.now() - t0) / 1000 };
}

export async function runHandshake(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  if (!only.has("P5") && !only.has("M5")) return [];
  const fx = await fixture(params);
  const { server, port } = await fx.startServer("handshake");
  const profileDir = process.env.BENCH_PROFILE_DIR || undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const measure = `authenticated ÷ open Socket.IO handshakes/s, and server CPU per handshake (raw Engine.IO client, ${params.handshakeConcurrency} in flight)`;
  const how =
    SLICE_MS > 0
      ? `${params.handshakeRounds} rounds × ${params.handshakeSeconds} s alternating every ${SLICE_MS} ms`
      : `${params.handshakeRounds} rounds × 2 runs of ${params.handshakeSeconds / 2} s`;
  try {
    const warm = await oneRound(fx, server, port, 3, params.handshakeConcurrency, 0);
    if (warm.open.ok === 0 || warm.secure.ok === 0 || warm.open.failed > 0 || warm.secure.failed > 0) {
      return [
        {
          id: "P5",
          measure,
          value: "n/a",
          target: `≥ ${TARGET}; CPU ≤ ${CPU_TARGET}×`,
          status: "FAIL",
          detail: `warm-up: open ${warm.open.ok} ok / ${warm.open.failed} failed ${JSON.stringify(warm.open.reasons)}; protected ${warm.secure.ok} ok / ${warm.secure.failed} failed ${JSON.stringify(warm.secure.reasons)}`,
        },
      ];
    }
    // Steady state: every pool token verified twice (the cache keeps a token from its second verification) before measuring.
    const warmed = await warmTokenCache(fx, server, port, params.handshakeConcurrency);
    log(`P5: token cache warmed with the pool: ${warmed.entries} entries after ${warmed.handshakes} handshakes in ${round(warmed.seconds, 1)} s`);
    const rows: Row[] = [];
    if (only.has("P5")) rows.push(await measureP5(fx, server, port, params, measure, how, profileDir));
    if (only.has("M5")) {
      rows.push(
        ...(await metricsRows(server, "M5", "P5 (handshakes)", params.handshakeRounds, how, async (index) => {
          const each = await oneRound(fx, server, port, params.handshakeSeconds, params.handshakeConcurrency, (index % 2) as 0 | 1);
          return (each.secure.cpuPerHandshake ?? NaN) / (each.open.cpuPerHandshake ?? NaN);
        })),
      );
    }
    return rows;
  } finally {
    await server.stop();
  }
}

/** P5's rounds and row, on a warmed server. */
async function measureP5(fx: Fixture, server: Child, port: number, params: BenchParams, measure: string, how: string, profileDir: string | undefined): Promise<Row> {
  const rounds: HandshakeRound[] = [];
  for (let r = 0; r < params.handshakeRounds; r++) {
    const profile = profileDir !== undefined && r === params.handshakeRounds - 1;
    if (profile) await server.ask("profileStart");
    const each = await oneRound(fx, server, port, params.handshakeSeconds, params.handshakeConcurrency, (r % 2) as 0 | 1);
    if (profile) {
      const path = join(profileDir, "server-P5.cpuprofile");
      await server.ask("profileStop", { path });
      log(`P5: CPU profile of the server during the last round (both namespaces): ${path}\n${summariseProfile(path, 25)}`);
    }
    rounds.push(each);
    log(
      `P5 round ${r + 1}/${params.handshakeRounds}: open ${fmt(each.open.rps)}/s, protected ${fmt(each.secure.rps)}/s → ${round(each.secure.rps / each.open.rps, 3)} ` +
        `(CPU: server ${pct(each.serverCpu)}, load generator ${pct(each.clientCpu)}; ` +
        `server CPU per handshake ${round(each.secure.cpuPerHandshake ?? NaN, 1)} vs ${round(each.open.cpuPerHandshake ?? NaN, 1)} µs)`,
    );
  }
  const health = await server.ask<{ tokenCache?: unknown } | null>("health");
  if (health !== null) log(`P5: server token cache ${JSON.stringify(health.tokenCache ?? null)}`);
  const failed = rounds.reduce((sum, each) => sum + each.open.failed + each.secure.failed, 0);
  const reasons: Record<string, number> = {};
  for (const each of rounds) {
    for (const side of [each.open, each.secure]) for (const [reason, count] of Object.entries(side.reasons)) reasons[reason] = (reasons[reason] ?? 0) + count;
  }
  const authenticated = rounds.reduce((sum, each) => sum + each.secure.ok, 0);
  const ratios = rounds.map((each) => each.secure.rps / each.open.rps);
  const ratio = median(ratios);
  const cpuOpen = median(rounds.map((each) => each.open.cpuPerHandshake ?? NaN));
  const cpuSecure = median(rounds.map((each) => each.secure.cpuPerHandshake ?? NaN));
  const cpuRatios = rounds.map((each) => (each.secure.cpuPerHandshake ?? NaN) / (each.open.cpuPerHandshake ?? NaN));
  const cpuRatio = median(cpuRatios);
  const spread = (values: number[]) => `${round(Math.min(...values), 3)}–${round(Math.max(...values), 3)}`;
  const openRate = median(rounds.map((each) => each.open.rps));
  const clientBound = median(rounds.map((each) => each.clientCpu)) >= 0.9 ? "LOAD GENERATOR SATURATED (ratio may be optimistic); " : "";
  const secureRate = median(rounds.map((each) => each.secure.rps));
  return {
    id: "P5",
    measure,
    value: `${round(ratio, 3).toFixed(3)}; CPU ${round(cpuRatio, 3).toFixed(3)}×`,
    target: `≥ ${TARGET}; CPU ≤ ${CPU_TARGET}×`,
    status: failed > 0 ? "FAIL" : ratioStatus(ratio, TARGET, ">=") === "PASS" && ratioStatus(cpuRatio, CPU_TARGET, "<=") === "PASS" ? "PASS" : "MISS",
    detail:
      `${clientBound}${fmt(secureRate)} vs ${fmt(openRate)} handshakes/s (medians; ${how}; ${authenticated} authenticated, ${failed} failed` +
      `${failed > 0 ? ` ${JSON.stringify(reasons)}` : ""}; p50 ${round(median(rounds.map((each) => each.secure.p50)), 1)} vs ${round(median(rounds.map((each) => each.open.p50)), 1)} ms; ` +
      `CPU server ${pct(median(rounds.map((each) => each.serverCpu)))}, load generator ${pct(median(rounds.map((each) => each.clientCpu)))}; ` +
      `server CPU per handshake ${round(cpuSecure, 1)} vs ${round(cpuOpen, 1)} µs (rounds ${spread(cpuRatios)}); ` +
      `${cacheNote(health)}rate ratios ${spread(ratios)})`,
    data: { ratio, ratios, openRate, secureRate, cpuOpen, cpuSecure, cpuRatio, cpuRatios, rounds, authenticated, failed, health, sliceMs: SLICE_MS },
  };
}
