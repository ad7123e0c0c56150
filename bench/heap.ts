/**
 * P6: server heap per idle authenticated socket (namespace protected by
 * `OidcSocketMiddleware`, expiry timers armed: every token expires in an
 * hour) ÷ per idle socket on an open namespace. Each measurement runs in a
 * FRESH server child (--expose-gc): warm-up (500 sockets connected and
 * closed), heap after forced GCs, N idle sockets held by the load-generator
 * child (raw Engine.IO clients; both namespaces get the same packets, the
 * open one ignores the token), heap after forced GCs again; delta ÷ N.
 * The delta leaves out compiled code: optimised code compiled while the N
 * sockets connect is a one-time cost of the code run, not of the sockets
 * held (the figure with it is printed too). Compiled code is what V8 keeps
 * in its code spaces (machine code) and, from Node 22 on, in its trusted
 * spaces (bytecode, code metadata, deoptimisation data). That growth is not
 * per socket: on Node 26 it halves per socket with 4,000 sockets instead of
 * 2,000, and heap snapshots show about a hundred code objects, not one or
 * more per socket.
 * Interleaved (open, protected, open, …); the median of the round ratios.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Child } from "./lib/child.js";
import { log, median, ratioStatus, round, sleep, type BenchParams, type Row } from "./lib/common.js";
import { fixture, type Fixture } from "./lib/fixture.js";

interface Held {
  connected: number;
  failed: number;
  reasons: Record<string, number>;
}
interface Measurement {
  ns: string;
  before: number;
  after: number;
  /** Heap growth per socket, compiled code (code and trusted spaces) left out. */
  perSocket: number;
  /** The same with the growth of the code and trusted spaces. */
  perSocketWithCode: number;
  connected: number;
  failed: number;
  reasons: Record<string, number>;
}

const TARGET = 1.05;
/**
 * Sockets connected and closed before the first heap reading, on both
 * namespaces alike. Enough for V8 to have compiled the optimised code of the
 * connection path: with only 50, the authenticated side's optimised code
 * (about 170 KB, compiled once, while the 2,000 sockets connect) was counted
 * as about 85 bytes per socket.
 */
const WARM = 500;
/**
 * Warm-up cycles (WARM sockets connected, then closed, each time). One cycle
 * left about 90 bytes per socket of optimised code compiled during the
 * measured connects (heap snapshots, code space); cycles repeat the calls
 * without holding more sockets at once, so tables sized by the number of
 * live sockets (Maps, Sets) are not grown in advance, which would hide a
 * real per-socket cost.
 */
const WARM_CYCLES = Number(process.env.BENCH_HEAP_WARM_CYCLES ?? 3);

async function waitForSockets(server: Child, ns: string, count: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  while (Date.now() < deadline) {
    seen = (await server.ask<{ count: number }>("sockets", { ns })).count;
    if (seen === count) return seen;
    await sleep(100);
  }
  return seen;
}

async function measure(fx: Fixture, ns: string, sockets: number, snapshots?: string): Promise<Measurement> {
  const { server, port } = await fx.startServer(`heap ${ns}`);
  try {
    for (let cycle = 0; cycle < WARM_CYCLES; cycle++) {
      const warm = await fx.load.ask<Held>("hold", { port, ns, count: WARM, tokens: fx.warm, concurrency: 25 }, 60_000);
      await fx.load.ask("release", {}, 30_000);
      if (warm.failed > 0) throw new Error(`warm-up on ${ns}: ${warm.failed} failed ${JSON.stringify(warm.reasons)}`);
      await waitForSockets(server, ns, 0, 10_000);
    }
    await sleep(200);
    const before = await server.ask<{ heapUsed: number; code: number }>("gcHeap", {}, 30_000);
    if (snapshots) await server.ask("snapshot", { path: join(snapshots, `${ns.slice(1)}-before.heapsnapshot`) }, 120_000);
    const held = await fx.load.ask<Held>("hold", { port, ns, count: sockets, auth: "pool", concurrency: 100 }, 120_000);
    const live = await waitForSockets(server, ns, held.connected, 10_000);
    await sleep(200);
    const after = await server.ask<{ heapUsed: number; code: number }>("gcHeap", {}, 30_000);
    if (snapshots) await server.ask("snapshot", { path: join(snapshots, `${ns.slice(1)}-after.heapsnapshot`) }, 120_000);
    await fx.load.ask("release", {}, 60_000);
    if (live !== held.connected) throw new Error(`${ns}: the client holds ${held.connected} sockets but the server counts ${live}`);
    const count = Math.max(1, held.connected);
    return {
      ns,
      before: before.heapUsed,
      after: after.heapUsed,
      perSocket: (after.heapUsed - after.code - (before.heapUsed - before.code)) / count,
      perSocketWithCode: (after.heapUsed - before.heapUsed) / count,
      connected: held.connected,
      failed: held.failed,
      reasons: held.reasons,
    };
  } finally {
    await fx.load.ask("release", {}, 60_000).catch(() => undefined);
    await server.stop();
  }
}

export async function runHeap(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  if (!only.has("P6")) return [];
  const fx = await fixture(params);
  const n = Math.min(params.heapSockets, fx.pool.length);
  const opens: Measurement[] = [];
  const secures: Measurement[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < params.heapRounds; r++) {
    // BENCH_HEAP_SNAPSHOTS=<dir>: heap snapshots before and after, first round only (for diffing by constructor).
    const snapshots = r === 0 ? process.env.BENCH_HEAP_SNAPSHOTS : undefined;
    if (snapshots) mkdirSync(snapshots, { recursive: true });
    const a = await measure(fx, "/open", n, snapshots);
    const b = await measure(fx, "/secure", n, snapshots);
    opens.push(a);
    secures.push(b);
    ratios.push(b.perSocket / a.perSocket);
    log(
      `P6 round ${r + 1}/${params.heapRounds}: open ${round(a.perSocket / 1024)} KB/socket, authenticated ${round(b.perSocket / 1024)} KB/socket → ${round(b.perSocket / a.perSocket, 3)}` +
        ` (with compiled code: ${round(a.perSocketWithCode / 1024)} vs ${round(b.perSocketWithCode / 1024)} KB → ${round(b.perSocketWithCode / a.perSocketWithCode, 3)})`,
    );
  }
  const failed = [...opens, ...secures].reduce((sum, each) => sum + each.failed + (n - each.connected - each.failed), 0);
  const ratio = median(ratios);
  const openKB = median(opens.map((each) => each.perSocket / 1024));
  const secureKB = median(secures.map((each) => each.perSocket / 1024));
  const withCode = median(secures.map((each, i) => each.perSocketWithCode / opens[i]!.perSocketWithCode));
  return [
    {
      id: "P6",
      measure: `heap per authenticated idle socket ÷ per open socket, ${n} sockets, expiry timers armed`,
      value: round(ratio, 3).toFixed(3),
      target: `≤ ${TARGET}`,
      status: failed > 0 ? "FAIL" : ratioStatus(ratio, TARGET, "<="),
      detail:
        `${round(secureKB)} vs ${round(openKB)} KB per socket, compiled code left out (medians, ${params.heapRounds} rounds, a fresh server each; ratios ${ratios.map((x) => round(x, 3)).join(" ")}; ` +
        `with compiled code counted: ${round(withCode, 3)})` +
        (failed > 0 ? `; ${failed} sockets failed ${JSON.stringify(secures.map((each) => each.reasons))}` : ""),
      data: { ratio, ratios, withCode, openKB, secureKB, opens, secures },
    },
  ];
}
