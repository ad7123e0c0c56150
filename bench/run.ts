/**
 * `npm run bench`: the performance benchmark suite. Every target
 * is a ratio or a count measured in this one run — medians over interleaved
 * rounds, never absolute thresholds — and printed as a markdown table:
 *
 *   P1, P2  verifyOidcToken ÷ crypto.verify (RS256; ES256, EdDSA)   bench/micro.ts
 *   P3, P4  server CPU per request, protected ÷ open route (wrk)      bench/http.ts
 *   P5      authenticated ÷ open Socket.IO handshakes (CPU, rate)     bench/handshake.ts
 *   P6      heap per authenticated ÷ per open idle socket             bench/heap.ts
 *   P7–P10  JWKS fetch coalescing, back-off, fail-fast, stale-if-error bench/resilience.ts
 *   M3, M5  P3 and P5 with a metrics adapter attached ÷ without        bench/lib/metricsCost.ts
 *           (prom-client's; the rows "M3 OTel", "M5 OTel": OpenTelemetry's)
 *   P11     server CPU per request, DPoP (fresh proof) ÷ Bearer, per proof alg  bench/dpop.ts
 *   P12     server CPU per request, introspected opaque ÷ cached JWT   bench/dpop.ts
 *   P13     server CPU per Socket.IO handshake, DPoP ÷ Bearer          bench/dpop.ts
 *   C       resolveConfig: a stable vs a new equal config per call      bench/config.ts
 *   D       differential run, verifyOidcToken vs jose.jwtVerify        bench/differential.ts
 *
 * The server under load and the load generator are separate child processes,
 * pinned to different CPUs where the machine allows (lib/pin.ts).
 *
 *   BENCH_MODE=quick (default, ≈ 2 min) | full (more rounds, longer runs, ≈ 6 min)
 *   node --import tsx bench/run.ts --only P3,P4
 *   BENCH_PROFILE_DIR=<dir>  CPU profiles of the server during the last round of P3, P4, P5
 *   BENCH_SERVER_NODE_ARGS   extra node flags for the server children
 *   (every variable: BENCHMARKS.md, section "npm run bench")
 *
 * Exit code: 1 on a functional failure (P7–P10 wrong, a protected request or
 * handshake refused, a crash), 3 when the watchdog fired, else 0 — a ratio
 * that misses its target on a noisy machine prints MISS but does not fail.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runConfig } from "./config.js";
import { runDpop } from "./dpop.js";
import { runHandshake } from "./handshake.js";
import { runHeap } from "./heap.js";
import { runHttp } from "./http.js";
import { killAllChildren } from "./lib/child.js";
import { elapsedS, FATAL, log, machine, paramsFor, round, type BenchMode, type Machine, type Row } from "./lib/common.js";
import { closeFixture } from "./lib/fixture.js";
import { runMicro } from "./micro.js";
import { runResilience } from "./resilience.js";
import { pin, pinning } from "./lib/pin.js";
import { WRK } from "./lib/wrk.js";

/**
 * D: the large differential run (bench/differential.ts) in its own process:
 * verifyOidcToken and jose.jwtVerify must agree on every generated token.
 * 200,000 tokens in quick mode, 1,000,000 in full (DIFFERENTIAL_TOKENS overrides).
 */
async function runDifferential(params: { mode?: unknown }): Promise<Row[]> {
  const full = (process.env.BENCH_MODE ?? "quick") === "full";
  const tokens = process.env.DIFFERENTIAL_TOKENS ?? (full ? "1000000" : "200000");
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./differential.ts", import.meta.url))], {
    env: { ...process.env, DIFFERENTIAL_TOKENS: tokens },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    process.stderr.write(chunk);
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), (full ? 1_200 : 300) * 1000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  void params;
  const summary = (output.split("\n").filter((line) => / tokens in .*disagreements/.test(line)).at(-1) ?? "").split("; by config")[0]!;
  return [
    {
      id: "D",
      measure: "differential: verifyOidcToken vs jose.jwtVerify, generated tokens (valid, mutated, re-signed, attack catalogue)",
      value: `${Number(tokens).toLocaleString("en-US")} tokens`,
      target: "0 disagreements",
      status: code === 0 ? "PASS" : "FAIL",
      detail: summary.replace(/\s+/g, " ").slice(0, 300) || `exit code ${String(code)}`,
    },
  ];
}

const ALL = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13", "M3", "M5", "C", "D"] as const;
/** The order of the final table. */
const ORDER = ["P1", "P2 ES256", "P2 EdDSA", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11 ES256", "P11 EdDSA", "P11 RS256", "P12", "P13", "M3", "M3 OTel", "M5", "M5 OTel", "C", "D"];

function parseOnly(argv: readonly string[]): Set<string> {
  const index = argv.findIndex((arg) => arg === "--only" || arg.startsWith("--only="));
  if (index < 0) return new Set(ALL);
  const raw = argv[index]!.includes("=") ? argv[index]!.slice("--only=".length) : argv[index + 1];
  const ids = (raw ?? "").split(",").map((id) => id.trim().toUpperCase()).filter(Boolean);
  const unknown = ids.filter((id) => !(ALL as readonly string[]).includes(id));
  if (ids.length === 0 || unknown.length > 0) {
    process.stderr.write(`--only takes a comma-separated list of ${ALL.join(", ")}; got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return new Set(ids);
}

function modeOf(): BenchMode {
  const raw = process.env.BENCH_MODE ?? "quick";
  if (raw !== "quick" && raw !== "full") {
    process.stderr.write(`BENCH_MODE must be quick or full, got ${raw}\n`);
    process.exit(2);
  }
  return raw;
}

function table(rows: readonly Row[]): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|");
  const sorted = [...rows].sort((a, b) => ORDER.indexOf(a.id) - ORDER.indexOf(b.id));
  return [
    "| # | measure | measured | target | result | details |",
    "|---|---|---|---|---|---|",
    ...sorted.map((row) => `| ${row.id} | ${cell(row.measure)} | ${cell(row.value)} | ${cell(row.target)} | ${row.status === "PASS" ? "PASS" : `**${row.status}**`} | ${cell(row.detail)} |`),
  ].join("\n");
}

function header(mode: BenchMode, info: Machine): string {
  return (
    `## npm run bench — ${mode} mode\n\n` +
    `Date: ${info.date}\n` +
    `Machine: ${info.nproc} CPU (${info.cpu}), ${info.memoryGiB} GiB, ${info.platform}; Node ${info.node}; ulimit -n ${info.ulimitN}\n` +
    `CPUs: ${pinning()}; HTTP load generator: ${WRK !== undefined ? "wrk" : "autocannon (wrk not found: apt-get install wrk)"}\n` +
    `Load average at start: ${info.loadAverage.join(", ")}${(info.loadAverage[0] ?? 0) > info.nproc / 2 ? " (the machine is busy: expect noisy ratios)" : ""}\n` +
    `Packages: ${Object.entries(info.packages).map(([name, version]) => `${name} ${version}`).join(", ")}\n`
  );
}

const rows: Row[] = [];

async function main(): Promise<number> {
  const mode = modeOf();
  const only = parseOnly(process.argv.slice(2));
  const params = paramsFor(mode);
  const info = await machine();
  pin(process.pid, "load");
  process.stdout.write(`${header(mode, info)}\nMeasuring ${[...only].join(", ")} …\n`);

  const watchdogS = Number(process.env.BENCH_WATCHDOG_S ?? (mode === "quick" ? 540 : 2_400));
  const watchdog = setTimeout(() => {
    log(`WATCHDOG: the run exceeded ${watchdogS} s; killing every child and stopping`);
    killAllChildren();
    process.stdout.write(`\n${table(rows)}\n\nWATCHDOG: stopped after ${watchdogS} s (partial results above)\n`);
    process.exit(3);
  }, watchdogS * 1000);
  watchdog.unref();

  const groups: Array<[string[], (p: typeof params, o: Set<string>) => Promise<Row[]>]> = [
    [["P1", "P2"], runMicro],
    [["P3", "P4", "M3"], runHttp],
    [["P11", "P12", "P13"], runDpop],
    [["P5", "M5"], runHandshake],
    [["P6"], runHeap],
    [["P7", "P8", "P9", "P10"], runResilience],
    [["C"], runConfig],
    [["D"], runDifferential],
  ];
  try {
    for (const [ids, runGroup] of groups) {
      const wanted = ids.filter((id) => only.has(id));
      if (wanted.length === 0) continue;
      const t0 = elapsedS();
      log(`${wanted.join(", ")}: start`);
      try {
        rows.push(...(await runGroup(params, only)));
      } catch (error) {
        log(`${wanted.join(", ")} crashed: ${error instanceof Error ? error.stack : String(error)}`);
        for (const id of wanted) {
          if (!rows.some((row) => row.id === id || row.id.startsWith(`${id} `))) {
            rows.push({ id, measure: id, value: "n/a", target: "", status: "ERROR", detail: (error instanceof Error ? error.message : String(error)).split("\n")[0]! });
          }
        }
      }
      log(`${wanted.join(", ")}: done in ${round(elapsedS() - t0, 1)} s`);
    }
  } finally {
    await closeFixture().catch(() => undefined);
    killAllChildren();
    clearTimeout(watchdog);
  }

  const total = round(elapsedS(), 1);
  const out = join(tmpdir(), `ioserver-oidc-bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(out, JSON.stringify({ mode, machine: info, params, totalSeconds: total, rows }, null, 2));
  const misses = rows.filter((row) => row.status === "MISS").map((row) => row.id);
  const fatal = rows.filter((row) => FATAL.has(row.status)).map((row) => row.id);
  process.stdout.write(
    `\n${table(rows)}\n\n` +
      `Total ${total} s (${mode} mode). JSON: ${out}\n` +
      (misses.length > 0 ? `MISS (ratio below target in this run; not a failure): ${misses.join(", ")}\n` : "") +
      (fatal.length > 0 ? `FAILED (functional): ${fatal.join(", ")}\n` : "All functional checks passed.\n"),
  );
  return fatal.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Nothing should be left open; do not wait for it if something is.
    setTimeout(() => process.exit(code), 1_000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    killAllChildren();
    process.exit(1);
  },
);
