/**
 * C: what resolving the configuration costs per request — `resolveConfig`,
 * the package's first step on every HTTP request and handshake — when
 * `appHandle.oidcConfig.getConfig()` returns
 *
 *   stable     the same object on every call;
 *   new equal  a new, equal object on every call (recognised by content);
 *   manager    `OidcConfigManager.configure(...)` (its resolved view);
 *   env        no manager: the environment.
 *
 * `baseline` is the new-equal `getConfig()` alone: the object the app itself
 * allocates, so "new equal" minus "baseline" is the package's share.
 * Reported: ns per call (median of rounds, in a child with default flags)
 * and bytes allocated per call (heap growth over calls with no garbage
 * collection in between, in a second child started with --expose-gc and a
 * young generation large enough for them).
 * Functional check: every case resolves to one normalised config.
 *
 *   node --import tsx bench/run.ts --only C      (part of npm run bench)
 *   node --import tsx bench/config.ts            (this case alone, a table on stdout)
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { PerformanceObserver } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { AppHandle } from "ioserver";
import type { OidcAppHandle, OidcConfigInput } from "../src/types.js";
import { BENCH_AUDIENCE, BENCH_ISSUER, log, median, round, type BenchParams, type Row } from "./lib/common.js";

const CASES = ["stable", "new equal", "baseline", "manager", "env"] as const;
type Case = (typeof CASES)[number];

interface Figures {
  nsPerCall: number;
  bytesPerCall: number;
  /** Every call of the case resolved to the same normalised config. */
  oneConfig: boolean;
}

const JWKS_URI = `${BENCH_ISSUER}/jwks`;

function fresh(): OidcConfigInput {
  return { issuer: BENCH_ISSUER, audience: [BENCH_AUDIENCE], jwksUri: JWKS_URI, clockTolerance: 10 };
}

/** The package's internals, loaded in the children only (the suite's own process uses the built package). */
interface Internals {
  resolveConfig: typeof import("../src/config/resolve.js").resolveConfig;
  OidcConfigManager: typeof import("../src/ioserver/OidcConfigManager.js").OidcConfigManager;
}

async function internals(): Promise<Internals> {
  const [{ resolveConfig }, { OidcConfigManager }] = await Promise.all([import("../src/config/resolve.js"), import("../src/ioserver/OidcConfigManager.js")]);
  return { resolveConfig, OidcConfigManager };
}

/** One call of each case; `baseline` only builds the object. */
function callOf(name: Case, { resolveConfig, OidcConfigManager }: Internals): () => unknown {
  const stable = fresh();
  const handle = (oidcConfig: unknown): OidcAppHandle => ({ oidcConfig });
  switch (name) {
    case "stable": {
      const app = handle({ getConfig: () => stable });
      return () => resolveConfig(app);
    }
    case "new equal": {
      const app = handle({ getConfig: fresh });
      return () => resolveConfig(app);
    }
    case "baseline":
      return fresh;
    case "manager": {
      const Manager = OidcConfigManager.configure(fresh());
      const app = handle(undefined);
      app.oidcConfig = new Manager(app as unknown as AppHandle);
      return () => resolveConfig(app);
    }
    case "env": {
      process.env.AUTH_SERVICE_ISSUER = BENCH_ISSUER;
      process.env.AUTH_SERVICE_AUDIENCE = BENCH_AUDIENCE;
      process.env.AUTH_SERVICE_JWKS_URI = JWKS_URI;
      const app = handle(undefined);
      return () => resolveConfig(app);
    }
  }
}

/** Each result is kept here, so the objects a case builds escape as they do in a real request. */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- written, never read, on purpose: see the comment above
let kept: unknown;

/** Child, timing: ns per call of every case (median of rounds), and whether each resolved to one config. */
function timeCases(iterations: number, rounds: number, code: Internals): Record<Case, Pick<Figures, "nsPerCall" | "oneConfig">> {
  const results = {} as Record<Case, Pick<Figures, "nsPerCall" | "oneConfig">>;
  for (const name of CASES) {
    const call = callOf(name, code);
    const first = call();
    let oneConfig = true;
    // Warm-up: optimised code for the loop, caches filled.
    for (let i = 0; i < iterations; i++) if (call() !== first && name !== "baseline") oneConfig = false;
    const ns: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) kept = call();
      ns.push(Number(process.hrtime.bigint() - t0) / iterations);
    }
    results[name] = { nsPerCall: median(ns), oneConfig };
  }
  return results;
}

/**
 * Child, allocation (run with --expose-gc and a young generation large
 * enough that no collection runs during a measurement; one that did is
 * detected and the measurement retried): heap growth per call.
 */
function bytesOfCases(iterations: number, code: Internals): Record<Case, number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  let collections = 0;
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  });
  observer.observe({ entryTypes: ["gc"] });
  const results = {} as Record<Case, number>;
  const calls = Math.min(iterations, 20_000);
  for (const name of CASES) {
    const call = callOf(name, code);
    for (let i = 0; i < iterations; i++) kept = call();
    let bytes = NaN;
    for (let attempt = 0; attempt < 5 && Number.isNaN(bytes); attempt++) {
      gc();
      gc();
      const seen = collections;
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < calls; i++) kept = call();
      const after = process.memoryUsage().heapUsed;
      if (collections === seen) bytes = Math.max(0, (after - before) / calls);
    }
    results[name] = bytes;
  }
  observer.disconnect();
  return results;
}

function describe(results: Record<Case, Figures>): string {
  const share = Math.max(0, results["new equal"].bytesPerCall - results.baseline.bytesPerCall);
  return (
    CASES.map((name) => `${name} ${round(results[name].nsPerCall, 1)} ns, ${round(results[name].bytesPerCall, 1)} B`).join("; ") +
    `; the package's share of a new equal object: ${round(results["new equal"].nsPerCall - results.baseline.nsPerCall, 1)} ns, ${round(share, 1)} B`
  );
}

async function runChild(nodeArgs: readonly string[], args: readonly string[]): Promise<unknown> {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", fileURLToPath(import.meta.url), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  if (code !== 0) throw new Error(`config bench child exited with ${String(code)}`);
  return JSON.parse(output.trim().split("\n").at(-1)!);
}

/** Timing and allocation in two children: a 64 MiB young generation (no collection while measuring) slows every call down. */
async function measure(iterations: number, rounds: number): Promise<Record<Case, Figures>> {
  const times = (await runChild([], ["--time", String(iterations), String(rounds)])) as Record<Case, Pick<Figures, "nsPerCall" | "oneConfig">>;
  const bytes = (await runChild(["--expose-gc", "--min-semi-space-size=64", "--max-semi-space-size=64"], ["--bytes", String(iterations)])) as Record<Case, number>;
  return Object.fromEntries(CASES.map((name) => [name, { ...times[name], bytesPerCall: bytes[name] }])) as Record<Case, Figures>;
}

export async function runConfig(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  if (!only.has("C")) return [];
  const quick = params.mode === "quick";
  const iterations = quick ? 100_000 : 300_000;
  const rounds = quick ? 5 : 11;
  log(`C: resolveConfig, ${rounds} rounds × ${iterations.toLocaleString("en-US")} calls per case`);
  const results = await measure(iterations, rounds);
  const ok = CASES.every((name) => results[name].oneConfig);
  return [
    {
      id: "C",
      measure: "resolveConfig per request: a stable config object vs a new equal object per getConfig() call",
      value: `${round(results.stable.nsPerCall, 1)} / ${round(results["new equal"].nsPerCall, 1)} ns`,
      target: "one normalised config (one token cache) for equal objects",
      status: ok ? "PASS" : "FAIL",
      detail: describe(results),
      data: results,
    },
  ];
}

const [, , role, iterationsArg, roundsArg] = process.argv;
if (role === "--time" || role === "--bytes") {
  internals().then(
    (code) => {
      const result = role === "--time" ? timeCases(Number(iterationsArg), Number(roundsArg), code) : bytesOfCases(Number(iterationsArg), code);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      process.exitCode = 1;
    },
  );
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  measure(200_000, 7).then(
    (results) => {
      process.stdout.write("| case | ns per call | bytes per call | one normalised config |\n|---|---|---|---|\n");
      for (const name of CASES) {
        const { nsPerCall, bytesPerCall, oneConfig } = results[name];
        process.stdout.write(`| ${name} | ${round(nsPerCall, 1)} | ${round(bytesPerCall, 1)} | ${name === "baseline" ? "—" : oneConfig ? "yes" : "**no**"} |\n`);
      }
      process.stdout.write(`\n${describe(results)}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
