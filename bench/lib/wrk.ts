/**
 * The HTTP load generator of P3/P4: wrk (Debian package `wrk`), written in C,
 * several times faster than the Node server it loads, so the server is the
 * bottleneck. One thread, keep-alive connections, pinned to the load CPUs
 * (see pin.ts). A rotating Authorization header comes from a small Lua
 * script reading the token pool from a file.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOAD_CPUS } from "./pin.js";

export interface WrkRun {
  requests: number;
  seconds: number;
  rps: number;
  /** Responses outside 2xx/3xx, plus connect/read/write/timeout errors. */
  non2xx: number;
  socketErrors: number;
  p50: number;
  p99: number;
  /** Share of one CPU wrk used (from this process's reaped-children CPU time). */
  cpu: number;
}

/** The wrk binary, or undefined (then the bench falls back to autocannon and says so). */
export const WRK: string | undefined = (() => {
  if (process.env.BENCH_LOAD === "autocannon") return undefined;
  try {
    execFileSync("wrk", ["-v"], { stdio: "ignore" });
    return "wrk";
  } catch (error) {
    // `wrk -v` exits 1 after printing its version
    return (error as { status?: number }).status === 1 ? "wrk" : undefined;
  }
})();

const ROTATE_LUA = `
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
  if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
end
local count = #tokens
local next = 0
request = function()
  next = next + 1
  if next > count then next = 1 end
  return wrk.format(nil, nil, { ["Authorization"] = tokens[next] })
end
`;

/** Write the token pool and the rotation script once; returns what runWrk needs for `rotate`. */
export function rotation(dir: string, tokens: readonly string[]): { script: string; tokensFile: string } {
  const script = join(dir, "rotate.lua");
  const tokensFile = join(dir, "tokens.txt");
  writeFileSync(script, ROTATE_LUA);
  writeFileSync(tokensFile, `${tokens.join("\n")}\n`);
  return { script, tokensFile };
}

/** CPU seconds of this process's children that have been waited for (Linux /proc; 0 elsewhere). */
function reapedChildrenCpu(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): cutime and cstime are fields 16 and 17
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

const ms = (text: string | undefined): number => {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? "");
  if (match === null) return NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value / 1000 : match[2] === "ms" ? value : match[2] === "s" ? value * 1000 : value * 60_000;
};

/** Parse wrk's report (with --latency). */
export function parseWrk(output: string): Omit<WrkRun, "cpu"> {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(output);
  if (total === null) throw new Error(`unexpected wrk output: ${output.slice(0, 500)}`);
  const seconds = ms(`${total[2]}${total[3]}`) / 1000;
  const requests = Number(total[1]);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = errors === null ? 0 : errors.slice(1).reduce((sum, each) => sum + Number(each), 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  return {
    requests,
    seconds,
    rps: requests / seconds,
    non2xx,
    socketErrors,
    p50: ms(/\s50%\s+(\S+)/.exec(output)?.[1]),
    p99: ms(/\s99%\s+(\S+)/.exec(output)?.[1]),
  };
}

export interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  /** The same Authorization header on every request. */
  token?: string;
  /** A rotating header over the pool (see rotation()). */
  rotate?: { script: string; tokensFile: string };
}

/** One wrk run, bounded (killed 30 s after its duration). */
export async function runWrk(options: WrkOptions): Promise<WrkRun> {
  if (WRK === undefined) throw new Error("wrk is not installed");
  const args = ["-t1", `-c${options.connections}`, `-d${options.seconds}s`, "--latency", "--timeout", "10s"];
  if (options.token !== undefined) args.push("-H", `Authorization: Bearer ${options.token}`);
  if (options.rotate !== undefined) args.push("-s", options.rotate.script);
  args.push(options.url);
  const [command, argv] = LOAD_CPUS === undefined ? [WRK, args] : ["taskset", ["-c", LOAD_CPUS, WRK, ...args]];
  const cpu0 = reapedChildrenCpu();
  const t0 = performance.now();
  const child = spawn(command, argv, {
    env: { ...process.env, BENCH_TOKENS_FILE: options.rotate?.tokensFile ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), (options.seconds + 30) * 1000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`wrk exited with ${String(code)}: ${output.slice(0, 500)}`);
  return { ...parseWrk(output), cpu: (reapedChildrenCpu() - cpu0) / wall };
}
