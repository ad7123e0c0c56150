/**
 * Figures at scale (`npm run bench:cluster`): an IOServer app protected by
 * ioserver-oidc (public API only, bench/cluster/server.ts) under nearly twenty
 * thousand authenticated sockets held by several client processes
 * (bench/cluster/client.ts), then three such nodes sharing a real
 * redis-server. Clients, server nodes and Redis all run on this one machine.
 *
 * A. One node, CLUSTER_SOCKETS sockets, each refreshing in band at least once
 *    during the hold; heap per socket, handshake latency, event-loop delay,
 *    heap after everyone left against the warm baseline.
 * B. Past the descriptor limit (same node, sockets still held): more
 *    connections than the node has descriptors for. The node must refuse the
 *    extra connections, keep serving the ones it has (refreshes, HTTP on
 *    kept-alive connections), log the shortage once, and accept connections
 *    again once descriptors are free — no crash, nothing lost. The key set is
 *    re-fetched every 15 s (jwksCacheMaxAge) so one re-fetch meets EMFILE and
 *    must fall back to the cached keys (stale-if-error).
 * C. Three nodes and a redis-server (redisSessionStore, redisRevocationStore,
 *    attachRedisAdapter, back-channel logout with redisReplayStore), with
 *    CLUSTER_NODES_SOCKETS sockets spread over them: disconnectUser() on one
 *    node → disconnect seen by the clients on every node; list() and
 *    listByUser(); back-channel logout POST → sockets gone on the other
 *    nodes; redis-server killed and restarted empty on the same port → time
 *    until revocations reach every node and list() is complete again.
 *
 * Variables (all optional):
 *
 *   CLUSTER_MODE            full (default) or quick (a few hundred sockets, the
 *                           node's descriptor limit lowered with prlimit so
 *                           part B still runs out)
 *   CLUSTER_ONLY            single (A+B), cluster (C) or all (default)
 *   CLUSTER_SOCKETS         A: sockets on the one node          (19000; quick 600)
 *   CLUSTER_CLIENT_SOCKETS  most sockets per client process     (5000, at most 6000)
 *   CLUSTER_BATCH           handshakes in flight, all clients   (200)
 *   CLUSTER_TOKEN_TTL       token lifetime, seconds             (60; quick 15): oidc:expiring comes a third of it before expiry
 *   CLUSTER_HOLD_SECONDS    A: hold once all are connected      (50; quick 20): at least two thirds of the lifetime
 *   CLUSTER_FD_LIMIT        B: the node's soft descriptor limit (0 = as inherited, 20000 here; quick: sockets + 300)
 *   CLUSTER_OVER            B: connections attempted beyond the limit (500; quick 100)
 *   CLUSTER_EMFILE_SECONDS  B: time spent out of descriptors    (20; quick 8)
 *   CLUSTER_NODES_SOCKETS   C: sockets over the three nodes     (6000; quick 600)
 *   CLUSTER_TRIALS          C: trials of each latency           (40; quick 10)
 *   CLUSTER_ALG             RS256 (default) or ES256
 *   CLUSTER_WATCHDOG_S      hard limit on the whole run         (1200; quick 300)
 *
 * Prints a markdown table (measure, value, target, PASS / MISS / FAIL,
 * details) and writes every figure as JSON under os.tmpdir(). Exit code 1 on
 * a functional failure (a refused handshake or refresh, a lost socket, a
 * crash, a node that did not recover), 3 when the watchdog stopped the run,
 * 0 otherwise — a missed latency target is reported, not an error.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Child, killAllChildren } from "../lib/child.js";
import { freePort, intEnv } from "../lib/common.js";
import { epochMs, killRedisServers, makeSigningKey, Minter, percentile, RedisServer, round, serveJwks, sleep, type ClusterAlg, type SigningSpec } from "./lib.js";
import type { SocketSpec } from "./client.js";
import type { NodeStart } from "./server.js";

// ---------------------------------------------------------------------------
// Parameters.


const QUICK = process.env.CLUSTER_MODE === "quick";
const ONLY = process.env.CLUSTER_ONLY ?? "all";
if (!["all", "single", "cluster"].includes(ONLY)) {
  process.stderr.write(`CLUSTER_ONLY must be all, single or cluster, got ${ONLY}\n`);
  process.exit(2);
}
const SOCKETS = intEnv("CLUSTER_SOCKETS", QUICK ? 600 : 19_000, 20, 19_500);
const PER_CLIENT = intEnv("CLUSTER_CLIENT_SOCKETS", 5_000, 100, 6_000);
const BATCH = intEnv("CLUSTER_BATCH", 200, 1, 2_000);
const TTL = intEnv("CLUSTER_TOKEN_TTL", QUICK ? 15 : 60, 9, 3_600);
const HOLD = intEnv("CLUSTER_HOLD_SECONDS", QUICK ? 20 : 50, 5, 1_800);
const FD_LIMIT = intEnv("CLUSTER_FD_LIMIT", QUICK ? SOCKETS + 300 : 0, 0, 1_000_000);
const OVER = intEnv("CLUSTER_OVER", QUICK ? 100 : 500, 10, 5_000);
const EMFILE_SECONDS = intEnv("CLUSTER_EMFILE_SECONDS", QUICK ? 8 : 20, 2, 600);
const NODES_SOCKETS = intEnv("CLUSTER_NODES_SOCKETS", QUICK ? 600 : 6_000, 60, 18_000);
const TRIALS = intEnv("CLUSTER_TRIALS", QUICK ? 10 : 40, 3, 500);
const ALG: ClusterAlg = process.env.CLUSTER_ALG === "ES256" ? "ES256" : "RS256";
const WATCHDOG_S = intEnv("CLUSTER_WATCHDOG_S", QUICK ? 300 : 1_200, 30, 7_200);
/** Key-set max age in part A/B: short, so a re-fetch happens while the node is out of descriptors. */
const JWKS_MAX_AGE = 15_000;
const PROBE_USERS = 10;
/** Part A's warm-up: sockets per round (two rounds). */
const WARM = Math.min(1_000, Math.ceil(SOCKETS / 10));

const started = Date.now();
const log = (text: string): void => {
  process.stderr.write(`[cluster +${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
};
const ms = (value: number): string => `${round(value, 1)} ms`;
const fmt = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a");
const SAME_MACHINE = "clients, node(s) and Redis on the same 2-core machine";

// ---------------------------------------------------------------------------
// Results.

type Verdict = "PASS" | "MISS" | "FAIL" | "—";
interface Row {
  part: string;
  measure: string;
  value: string;
  target: string;
  result: Verdict;
  details: string;
}
const rows: Row[] = [];
const json: Record<string, unknown> = {};

function row(part: string, measure: string, value: string, target: string, result: Verdict, details = ""): void {
  rows.push({ part, measure, value, target, result, details });
}
/** A functional check: PASS or FAIL. */
function check(part: string, measure: string, ok: boolean, value: string, details = ""): void {
  row(part, measure, value, "functional", ok ? "PASS" : "FAIL", details);
}
/** A latency target: PASS or MISS (never a failure). */
function target(part: string, measure: string, value: number, limit: number, details: string): void {
  row(part, measure, ms(value), `≤ ${limit} ms`, Number.isFinite(value) && value <= limit ? "PASS" : "MISS", details);
}

// ---------------------------------------------------------------------------
// Processes.

function fdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** The lowest descriptor number `pid` does not use: the next one it would get. */
function lowestFreeFd(pid: number): number {
  const used = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (used.has(fd)) fd++;
  return fd;
}

function softFdLimitOf(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, "utf8")
      .split("\n")
      .find((each) => each.startsWith("Max open files"));
    return Number(line?.split(/\s+/)[3]);
  } catch {
    return NaN;
  }
}

interface ConnectResult {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  ms: number[];
}
interface ClientStats {
  expiring: number;
  expiringIgnored: number;
  refreshOk: number;
  refreshFailed: number;
  refreshErrors: Record<string, number>;
  expired: number;
  revoked: number;
  goneByTag: Record<string, number>;
  reasons: Record<string, number>;
  inFlight: number;
  connected: number;
  byTag: Record<string, { held: number; connected: number; neverRefreshed: number }>;
}
interface Gone {
  sub: string;
  node: string;
  goneAt?: number;
  reason?: string;
}
interface Heap {
  heapUsedMB: number;
  /** Of which compiled code (V8's code and trusted spaces). */
  codeMB: number;
  rssMB: number;
  peakHeapMB?: number;
  peakRssMB?: number;
}
interface Eld {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

async function startClients(count: number, prefix: string, signing: SigningSpec): Promise<Child[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => Child.start(`${prefix}-${i + 1}`, "cluster/client.ts", { start: { signing, ttl: TTL } })));
}

async function startNode(name: string, start: Omit<NodeStart, "type" | "name">): Promise<Child> {
  return Child.start(`server-${name}`, "cluster/server.ts", { nodeArgs: ["--expose-gc", "--disable-warning=FSTDEP022"], readyTimeoutMs: 60_000, start: { name, ...start } });
}

/** Sum of the clients' statistics. */
async function clientStats(clients: Child[]): Promise<ClientStats> {
  const all = await Promise.all(clients.map((client) => client.ask<ClientStats>("stats")));
  const total: ClientStats = { expiring: 0, expiringIgnored: 0, refreshOk: 0, refreshFailed: 0, refreshErrors: {}, expired: 0, revoked: 0, goneByTag: {}, reasons: {}, inFlight: 0, connected: 0, byTag: {} };
  const merge = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
  };
  for (const each of all) {
    for (const key of ["expiring", "expiringIgnored", "refreshOk", "refreshFailed", "expired", "revoked", "inFlight", "connected"] as const) total[key] += each[key];
    merge(total.refreshErrors, each.refreshErrors);
    merge(total.goneByTag, each.goneByTag);
    merge(total.reasons, each.reasons);
    for (const [tag, value] of Object.entries(each.byTag)) {
      const into = (total.byTag[tag] ??= { held: 0, connected: 0, neverRefreshed: 0 });
      into.held += value.held;
      into.connected += value.connected;
      into.neverRefreshed += value.neverRefreshed;
    }
  }
  return total;
}

/** Open `specs` (each with its node URL) from `clients`, round-robin, all clients at once, BATCH in flight in total. */
async function connectSpread(clients: Child[], specs: Array<SocketSpec & { url: string }>): Promise<ConnectResult> {
  const perClient = clients.map(() => new Map<string, SocketSpec[]>());
  specs.forEach((spec, i) => {
    const byUrl = perClient[i % clients.length]!;
    const { url, ...rest } = spec;
    const list = byUrl.get(url) ?? [];
    list.push(rest);
    byUrl.set(url, list);
  });
  const batch = Math.max(1, Math.ceil(BATCH / clients.length));
  const results = await Promise.all(
    clients.map(async (client, i) => {
      const parts: ConnectResult[] = [];
      // Several nodes per client: interleave them so every node ramps up together.
      const lists = [...perClient[i]!.entries()];
      const slice = 1_000;
      for (let offset = 0; lists.some(([, list]) => offset < list.length); offset += slice) {
        for (const [url, list] of lists) {
          if (offset >= list.length) continue;
          parts.push(await client.ask<ConnectResult>("connect", { url, specs: list.slice(offset, offset + slice), batch }, 600_000));
        }
      }
      return parts;
    }),
  );
  const total: ConnectResult = { ok: 0, failed: 0, errors: {}, ms: [] };
  for (const part of results.flat()) {
    total.ok += part.ok;
    total.failed += part.failed;
    for (const [key, value] of Object.entries(part.errors)) total.errors[key] = (total.errors[key] ?? 0) + value;
    for (const value of part.ms) total.ms.push(value);
  }
  return total;
}

async function gone(clients: Child[], subs: string[]): Promise<Gone[]> {
  return (await Promise.all(clients.map((client) => client.ask<Gone[]>("gone", { subs })))).flat();
}

/** Wait (bounded) until every socket of `subs` is gone; resolves to their records (some may still be connected on timeout). */
async function waitGone(clients: Child[], subs: string[], expected: number, timeoutMs: number): Promise<Gone[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await gone(clients, subs);
    if (records.filter((each) => each.goneAt !== undefined).length >= expected || Date.now() > deadline) return records;
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------
// A + B: one node.

async function singleNode(signing: SigningSpec, config: Record<string, unknown>): Promise<void> {
  const holders = Math.ceil(SOCKETS / PER_CLIENT);
  const port = await freePort();
  const node = await startNode("single", { port, config });
  const url = `http://127.0.0.1:${port}`;
  const pid = node.pid!;
  if (FD_LIMIT > 0) execFileSync("prlimit", ["--pid", String(pid), `--nofile=${FD_LIMIT}:`]);
  const limit = softFdLimitOf(pid);
  log(`A: node pid ${pid} on ${url}, descriptor limit ${limit}; ${holders} client processes for ${SOCKETS} sockets, and one for HTTP and part B`);
  const clients = await startClients(holders, "client", signing);
  const [extra] = await startClients(1, "pressure", signing);
  const everyone = [...clients, extra!];
  try {
    // HTTP: four keep-alive connections opened now, 20 requests per second until the end of part B.
    await extra!.ask("httpStart", { url, connections: 4, rps: 20 });
    // Warm-up: two rounds of WARM sockets in, one refresh each, out. The baseline then includes one-time
    // allocations and the code V8 compiles for the hot paths (which is not retention).
    for (let cycle = 0; cycle < 2; cycle++) {
      await connectSpread(clients, Array.from({ length: WARM }, (_, i) => ({ sub: `warm-${i}`, tag: "warm", url })));
      await Promise.all(clients.map((client) => client.ask("refresh", { tag: "warm" }, 120_000)));
      await Promise.all(clients.map((client) => client.ask("leave", { tag: "warm" })));
    }
    for (let i = 0; i < 100 && (await node.ask<{ sessions: number }>("sessions")).sessions !== 0; i++) await sleep(50);
    const cold = node.ready as unknown as Heap;
    const before = await node.ask<Heap>("gcHeap");
    log(`A: heap cold ${cold.heapUsedMB} MB, warm baseline ${before.heapUsedMB} MB (compiled code ${before.codeMB} MB)`);
    await node.ask("eldReset");

    // Ramp-up.
    const specs = Array.from({ length: SOCKETS }, (_, i) => ({ sub: `s-${i}`, tag: "hold", url }));
    const rampStart = Date.now();
    const ramp = await connectSpread(clients, specs);
    const rampMs = Date.now() - rampStart;
    const eldRamp = await node.ask<Eld>("eld");
    log(`A: ${ramp.ok} connected, ${ramp.failed} failed in ${(rampMs / 1000).toFixed(1)} s; node fds ${fdsOf(pid)}; holding ${HOLD} s`);

    const holdStart = Date.now();
    while (Date.now() - holdStart < HOLD * 1000) {
      await sleep(Math.min(10_000, HOLD * 1000 - (Date.now() - holdStart)));
      const [stats, heap] = await Promise.all([clientStats(clients), node.ask<Heap>("heap")]);
      log(`A: hold ${Math.round((Date.now() - holdStart) / 1000)} s: connected ${stats.connected}, refreshes ok ${stats.refreshOk} failed ${stats.refreshFailed}, node heap ${heap.heapUsedMB} MB`);
    }
    const eldAll = await node.ask<Eld>("eld");
    const full = await node.ask<Heap>("gcHeap");
    const afterHold = await clientStats(clients);
    log(`A: all connected, heap after GC ${full.heapUsedMB} MB; ${afterHold.byTag.hold?.neverRefreshed ?? "?"} sockets not refreshed yet`);

    // ------------------------------------------------------------------ B
    await node.ask("eldReset");
    const httpBefore = await extra!.ask<{ ok: number; failed: number }>("http");
    const refreshBefore = afterHold.refreshOk;
    const fdsBefore = fdsOf(pid);
    const attempts = Math.max(0, limit - fdsBefore) + OVER;
    log(`B: node has ${fdsBefore} descriptors open of ${limit}; opening ${attempts} more connections`);
    const over = await extra!.ask<ConnectResult>("connect", { url, specs: Array.from({ length: attempts }, (_, i) => ({ sub: `over-${i}`, tag: "over" })), batch: 100 }, 600_000);
    const fdsPeak = fdsOf(pid);
    log(`B: ${over.ok} accepted, ${over.failed} refused ${JSON.stringify(over.errors)}; node fds ${fdsPeak}`);
    const shortageStart = Date.now();
    const cpuBefore = await node.ask<{ ms: number }>("cpu");
    const during = { ok: 0, failed: 0, errors: {} as Record<string, number> };
    let inShortageSeen = false;
    while (Date.now() - shortageStart < EMFILE_SECONDS * 1000) {
      const probe = await extra!.ask<ConnectResult>("connect", { url, specs: Array.from({ length: 10 }, (_, i) => ({ sub: `during-${i}`, tag: "during" })), batch: 10 });
      during.ok += probe.ok;
      during.failed += probe.failed;
      for (const [key, value] of Object.entries(probe.errors)) during.errors[key] = (during.errors[key] ?? 0) + value;
      const fd = await node.ask<{ inShortage: boolean }>("fd");
      inShortageSeen ||= fd.inShortage;
      await sleep(2_000);
    }
    const cpuShare = ((await node.ask<{ ms: number }>("cpu")).ms - cpuBefore.ms) / (Date.now() - shortageStart);
    const refreshDuring = (await clientStats(clients)).refreshOk - refreshBefore;
    const httpDuring = await extra!.ask<{ ok: number; failed: number; errors: Record<string, number>; sockets: number }>("http");
    const eldShortage = await node.ask<Eld>("eld");
    const healthDuring = await node.ask<{ status: string; issuers: Array<{ keySets?: unknown }> }>("health");
    log(`B: ${EMFILE_SECONDS} s out of descriptors: ${refreshDuring} refreshes ok, HTTP ${httpDuring.ok - httpBefore.ok} ok / ${httpDuring.failed - httpBefore.failed} failed, new connections ${during.ok} ok / ${during.failed} refused`);

    // Recovery: the extra connections leave; new ones must be accepted again.
    await extra!.ask("leave", { tag: "over" });
    await extra!.ask("leave", { tag: "during" });
    const freedAt = Date.now();
    let recoveredAfter = NaN;
    for (let i = 0; Date.now() - freedAt < 30_000; i++) {
      const probe = await extra!.ask<ConnectResult>("connect", { url, specs: [{ sub: `recover-probe-${i}`, tag: "recover" }], batch: 1 });
      if (probe.ok === 1) {
        recoveredAfter = Date.now() - freedAt;
        break;
      }
      await sleep(100);
    }
    const recover = await extra!.ask<ConnectResult>("connect", { url, specs: Array.from({ length: 200 }, (_, i) => ({ sub: `recover-${i}`, tag: "recover" })), batch: 50 });
    await sleep(4_000); // the node's probe (every 500 ms) calls the shortage over after 3 s of available descriptors
    const fdAfter = await node.ask<{ inShortage: boolean; episodes: number; serverErrors: Record<string, number>; probeFailures: number; rssUnreadable: number }>("fd");
    log(`B: recovered ${round(recoveredAfter, 0)} ms after the extra connections left; 200 new: ${recover.ok} ok, ${recover.failed} failed`);
    await extra!.ask("leave", { tag: "recover" });

    // Drain, then check that nothing of part A was lost.
    const drains = await Promise.all(clients.map((client) => client.ask<{ pending: number }>("drain", {}, 30_000)));
    const pending = drains.reduce((sum, each) => sum + each.pending, 0);
    const final = await clientStats(clients);
    const httpFinal = await extra!.ask<{ ok: number; failed: number; errors: Record<string, number>; ms: number[] }>("httpStop");
    const logs = await node.ask<{ counts: Record<string, number>; notable: string[]; emfile: string[] }>("logs");
    const healthAfter = await node.ask<unknown>("health");

    // Teardown.
    await Promise.all(clients.map((client) => client.ask("leave", {}, 120_000)));
    let left = { sessions: -1, chatSockets: -1 };
    for (let i = 0; i < 300; i++) {
      left = await node.ask<{ sessions: number; chatSockets: number }>("sessions");
      if (left.sessions === 0 && left.chatSockets === 0) break;
      await sleep(100);
    }
    await sleep(1_000);
    const after = await node.ask<Heap>("gcHeap");
    log(`A: all left; heap after GC ${after.heapUsedMB} MB (warm baseline ${before.heapUsedMB} MB)`);

    // ------------------------------------------------------------------ rows
    const hold = final.byTag.hold ?? { held: 0, connected: 0, neverRefreshed: 0 };
    const lost = SOCKETS - hold.connected;
    const perSocketKB = ((full.heapUsedMB - before.heapUsedMB) * 1024) / Math.max(1, ramp.ok);
    const growth = (after.heapUsedMB - before.heapUsedMB) / before.heapUsedMB;
    const shortageLines = logs.emfile.filter((line) => line.includes("out of file descriptors"));
    const recoveryLines = logs.emfile.filter((line) => line.includes("available again"));
    const packageEmfile = logs.notable.filter((line) => /EMFILE/.test(line) && !line.includes("[single]"));
    const refreshMs = (await Promise.all(clients.map((client) => client.ask<number[]>("refreshMs")))).flat();

    const where = `1 node; ${holders} client processes; ${SAME_MACHINE}`;
    check("A", "handshakes failed", ramp.failed === 0, `${fmt(ramp.failed)} of ${fmt(SOCKETS)}`, `${JSON.stringify(ramp.errors)}; ramp-up ${round(rampMs / 1000)} s, ${BATCH} in flight; ${where}`);
    check("A", "refreshes failed (incl. unanswered)", final.refreshFailed === 0 && pending === 0, `${fmt(final.refreshFailed + pending)} of ${fmt(final.refreshOk + final.refreshFailed + pending)}`, `${fmt(final.refreshOk)} ok ${JSON.stringify(final.refreshErrors)}; token lifetime ${TTL} s; round trip p50 / p99 ${ms(percentile(refreshMs, 50))} / ${ms(percentile(refreshMs, 99))} incl. minting; ${where}`);
    check("A", "sockets that never refreshed in band", hold.neverRefreshed === 0, fmt(hold.neverRefreshed), `hold ${HOLD} s after the ramp-up`);
    check("A", "sockets lost (expired, or closed by the node)", lost === 0 && final.expired === 0, fmt(lost), `${fmt(hold.connected)} of ${fmt(SOCKETS)} still connected after A and B; expired ${final.expired}; reasons ${JSON.stringify(final.reasons)}`);
    row("A", "heap per socket (GC)", `${round(perSocketKB, 2)} KB`, "—", "—", `${before.heapUsedMB} MB warm → ${full.heapUsedMB} MB with ${fmt(ramp.ok)} sockets (peak ${full.peakHeapMB} MB, RSS peak ${full.peakRssMB} MB); ${where}`);
    row("A", "handshake latency p50 / p99", `${ms(percentile(ramp.ms, 50))} / ${ms(percentile(ramp.ms, 99))}`, "—", "—", `max ${ms(Math.max(...ramp.ms))}; mostly queueing: ${BATCH} handshakes in flight, token minting in the clients; ${where}`);
    row("A", "event-loop delay p99, ramp-up / ramp-up + hold", `${ms(eldRamp.p99)} / ${ms(eldAll.p99)}`, "—", "—", `max ${ms(eldAll.max)}, mean ${ms(eldAll.mean)} (beyond a 10 ms timer); ${where}`);
    row("A", "heap after everyone left vs warm baseline", `${growth >= 0 ? "+" : ""}${round(growth * 100, 1)} %`, "≤ +10 %", growth <= 0.1 ? "PASS" : "MISS", `${after.heapUsedMB} MB after vs ${before.heapUsedMB} MB (forced GC; warm-up: 2 × ${WARM} sockets in, refreshed, out); of the difference, compiled code ${round(after.codeMB - before.codeMB, 2)} MB; sessions left ${left.sessions}, sockets left ${left.chatSockets}`);
    check("A", "sessions left after teardown", left.sessions === 0 && left.chatSockets === 0, `${left.sessions}`, `chat sockets ${left.chatSockets}`);

    const whereB = `descriptor limit ${limit}; ${SAME_MACHINE}`;
    check("B", "new connections refused when out of descriptors", over.failed > 0 && during.failed > 0, `${fmt(over.failed)} of ${fmt(attempts)} refused`, `${fmt(over.ok)} accepted up to the limit (node fds ${fdsBefore} → ${fdsPeak}); during ${EMFILE_SECONDS} s more: ${during.failed} refused, ${during.ok} accepted${during.ok > 0 ? " (a descriptor came free for a moment)" : ""}; client errors ${JSON.stringify({ ...over.errors, ...during.errors })}; ${whereB}`);
    check("B", "in-band refreshes while out of descriptors", refreshDuring > 0 && final.refreshFailed === 0, `${fmt(refreshDuring)} ok, 0 failed`, `the held sockets keep refreshing; ${whereB}`);
    check("B", "HTTP on kept-alive connections while out of descriptors", httpDuring.ok - httpBefore.ok > 0 && httpFinal.failed === 0, `${fmt(httpDuring.ok - httpBefore.ok)} ok, ${fmt(httpDuring.failed - httpBefore.failed)} failed`, `4 keep-alive connections opened before; whole run ${fmt(httpFinal.ok)} ok / ${fmt(httpFinal.failed)} failed ${JSON.stringify(httpFinal.errors)}; p99 ${ms(percentile(httpFinal.ms, 99))}`);
    check("B", "shortage logged once, recovery logged", inShortageSeen && fdAfter.episodes === 1 && shortageLines.length === 1 && recoveryLines.length === 1, `${shortageLines.length} line(s)`, `${shortageLines.join(" / ")} ${recoveryLines.join(" / ")}; server 'error' events ${JSON.stringify(fdAfter.serverErrors)}; failed fd probes ${fdAfter.probeFailures}`);
    check("B", "new connections accepted again after descriptors freed", recover.failed === 0 && Number.isFinite(recoveredAfter), `after ${round(recoveredAfter, 0)} ms`, `200 new handshakes: ${recover.ok} ok, ${recover.failed} failed ${JSON.stringify(recover.errors)}`);
    check("B", "node alive, no unhandled error", true, "yes", `package log lines at level ≤ 4 mentioning EMFILE: ${packageEmfile.length ? packageEmfile.join(" / ") : "none"}; log lines by level ${JSON.stringify(logs.counts)}`);
    row("B", "event-loop delay p99 while out of descriptors", ms(eldShortage.p99), "—", "—", `max ${ms(eldShortage.max)}; the window also holds ${fmt(over.ok)} handshakes and ${fmt(refreshDuring)} refreshes; node CPU ${round(cpuShare * 100, 0)} % of one core while out of descriptors; ${whereB}`);
    json.single = { sockets: SOCKETS, holders, limit, rampMs, ramp: { ...ramp, ms: undefined, p50: percentile(ramp.ms, 50), p99: percentile(ramp.ms, 99) }, cold, before, full, after, growth, perSocketKB, eldRamp, eldAll, eldShortage, afterHold, final, pending, refreshMs: { p50: percentile(refreshMs, 50), p99: percentile(refreshMs, 99) }, over, during, fdsBefore, fdsPeak, refreshDuring, httpDuring, httpBefore, httpFinal: { ...httpFinal, ms: undefined }, recoveredAfter, recover: { ...recover, ms: undefined }, fdAfter, cpuShare, logs, healthDuring, healthAfter, left };
  } finally {
    await Promise.all(everyone.map((client) => client.stop()));
    await node.stop();
  }
}

// ---------------------------------------------------------------------------
// C: three nodes and a redis-server.

/** One timed listByUser() call, with what the node saw during it (bench/cluster/server.ts). */
interface ByUserRun {
  node?: string;
  ms: number;
  length: number;
  /** Epoch ms at the start of the call. */
  at: number;
  /** The store's Redis commands during the call, each timed from the node's side. */
  redis: Array<{ command: string; ms: number }>;
  /** GC pauses of the node inside the call. */
  gcMs: number;
  /** Time inside the call during which the node's own heartbeat was writing. */
  heartbeatMs: number;
  /** A PING on the store's client right after the call. */
  pingMs: number;
  /** A setImmediate round just before the call. */
  loopMs: number;
}

/** Where the slow listByUser() calls (over 5 ms) went: heartbeats of any node, Redis's slow log, GC, the Redis round trips. */
async function explainSlow(runs: ByUserRun[], nodes: Child[], names: string[]): Promise<{ summary: string; counts: string; slow: unknown[] }> {
  const touches = (await Promise.all(nodes.map((node) => node.ask<Array<{ start: number; end: number; records: number }>>("touches")))).map((each, n) => each.map((span) => ({ ...span, node: names[n]! })));
  const slowlog = await nodes[0]!.ask<Array<{ at: number; ms: number; command: string }>>("slowlog", {});
  const slow = runs
    .filter((run) => run.ms > 5)
    .map((run) => {
      const end = run.at + run.ms;
      const beats = touches.flat().filter((span) => span.start < end && span.end > run.at).map((span) => span.node);
      // The slow log's times are whole seconds: an entry within the call's second, or the next.
      const redisSlow = slowlog.filter((entry) => entry.at >= Math.floor(run.at / 1000) * 1000 && entry.at <= end).map((entry) => `${entry.command} ${round(entry.ms, 1)} ms`);
      const roundTrips = run.redis.reduce((sum, each) => sum + each.ms, 0);
      return { node: run.node, ms: round(run.ms, 1), roundTrips: round(roundTrips, 1), commands: run.redis.map((each) => `${each.command} ${round(each.ms, 1)}`).join(", "), gcMs: round(run.gcMs, 1), heartbeats: beats, redisSlow, pingMs: round(run.pingMs, 1), loopMs: round(run.loopMs, 1) };
    });
  const with_ = (test: (each: (typeof slow)[number]) => boolean) => slow.filter(test).length;
  const counts =
    `${slow.length} of ${runs.length}; of them during a heartbeat of some node ${with_((each) => each.heartbeats.length > 0)}, with a GC pause over 1 ms ${with_((each) => each.gcMs > 1)}, ` +
    `Redis round trips half the call or more ${with_((each) => each.roundTrips >= each.ms / 2)}, a PING after it over 5 ms ${with_((each) => each.pingMs > 5)}; Redis slow log (over 1 ms) during the phase: ${slowlog.length} entries`;
  const summary = counts + (slow.length > 0 ? `; e.g. ${JSON.stringify(slow.slice(0, 6))}` : "");
  return { summary, counts, slow };
}

async function cluster(signing: SigningSpec, config: Record<string, unknown>, minter: Minter): Promise<void> {
  const redis = new RedisServer(await freePort());
  await redis.start();
  const prefix = `bench-cluster-${randomBytes(3).toString("hex")}:`;
  const names = ["a", "b", "c"];
  const ports = await Promise.all(names.map(() => freePort()));
  const nodes = await Promise.all(names.map((name, i) => startNode(name, { port: ports[i]!, config, redisUrl: redis.url, prefix, sessionTtl: 60 })));
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const clientCount = Math.max(1, Math.ceil(NODES_SOCKETS / PER_CLIENT));
  const clients = await startClients(clientCount, "cluster-client", signing);
  log(`C: redis-server pid ${redis.pid} on ${redis.url}; nodes ${nodes.map((node) => node.pid).join(", ")}; ${clientCount} client processes`);
  try {
    // Users of three sockets each, one per node. The first V users are revoked with disconnectUser, the next V are
    // logged out by sid, the next PROBE_USERS probe the recovery after a Redis restart, the rest stay. Each kind of
    // trial starts with one uncounted warm-up per node (the first call of a code path compiles it).
    const V = TRIALS + 3;
    const users = Math.floor(NODES_SOCKETS / 3);
    if (users < 2 * V + PROBE_USERS + 10) throw new Error(`CLUSTER_NODES_SOCKETS=${NODES_SOCKETS} is too small for ${TRIALS} trials`);
    const tagOf = (u: number) => (u < V ? "victim" : u < 2 * V ? "logout" : u < 2 * V + PROBE_USERS ? "probe" : "fill");
    const specs: Array<SocketSpec & { url: string }> = [];
    for (let u = 0; u < users; u++) {
      for (let n = 0; n < 3; n++) {
        const tag = tagOf(u);
        specs.push({ sub: `u-${u}`, tag, url: urls[n]!, ...(tag === "logout" ? { sid: `sid-${u}` } : {}) });
      }
    }
    const total = specs.length;
    const rampStart = Date.now();
    const ramp = await connectSpread(clients, specs);
    log(`C: ${ramp.ok} connected, ${ramp.failed} failed in ${((Date.now() - rampStart) / 1000).toFixed(1)} s`);
    // The store registers sessions asynchronously: wait until node a lists them all.
    const listedBy = Date.now() + 30_000;
    let listed = 0;
    while (Date.now() < listedBy) {
      listed = (await nodes[0]!.ask<Array<{ length: number }>>("list", { repeat: 1 }))[0]!.length;
      if (listed === ramp.ok) break;
      await sleep(200);
    }
    const perNode = await Promise.all(nodes.map((node) => node.ask<{ chatSockets: number }>("counts")));
    log(`C: node a lists ${listed} sessions; sockets per node ${perNode.map((each) => each.chatSockets).join(" / ")}`);

    // list() and listByUser() on every node.
    // One call at a time (a node after the other), while the clients keep refreshing.
    const lists: Array<{ ms: number; length: number }> = [];
    for (const node of nodes) lists.push(...(await node.ask<Array<{ ms: number; length: number }>>("list", { repeat: Math.max(5, Math.ceil(TRIALS / 3)) }, 120_000)));
    // listByUser() costs about a millisecond: 15 calls per trial, so that its p99 is not just the second-slowest call.
    const fillCount = users - 2 * V - PROBE_USERS;
    const fillUsers = Array.from({ length: Math.min(fillCount, 15 * TRIALS) }, (_, i) => `u-${2 * V + PROBE_USERS + ((i * 7919) % fillCount)}`);
    const byUser: ByUserRun[] = [];
    await nodes[0]!.ask("slowlog", { reason: "reset" });
    for (const [n, node] of nodes.entries()) byUser.push(...(await node.ask<ByUserRun[]>("listByUser", { users: fillUsers.filter((_, i) => i % 3 === n) }, 120_000)).map((run) => ({ ...run, node: names[n]! })));
    const byUserWhy = await explainSlow(byUser, nodes, names);
    log(`C: listByUser() calls over 5 ms: ${byUserWhy.summary}`);
    const listMs = lists.map((each) => each.ms);
    const byUserMs = byUser.map((each) => each.ms);
    const listComplete = lists.every((each) => each.length === ramp.ok);
    const byUserComplete = byUser.every((each) => each.length === 3);
    log(`C: list() p50 ${ms(percentile(listMs, 50))} p99 ${ms(percentile(listMs, 99))}; listByUser() p50 ${ms(percentile(byUserMs, 50))} p99 ${ms(percentile(byUserMs, 99))}`);

    // disconnectUser() on one node (rotating) → the disconnect of that user's socket on every node.
    const revokeTrials: Array<{ caller: string; count: number; callMs: number; worst: number; local: number; remote: number[]; missing: number }> = [];
    for (let t = 0; t < V; t++) {
      const caller = t % 3;
      const user = `u-${t}`;
      const call = await nodes[caller]!.ask<{ t0: number; t1: number; count: number }>("disconnectUser", { user, reason: "bench" });
      const records = await waitGone(clients, [user], 3, 5_000);
      const latencies = records.map((each) => (each.goneAt === undefined ? NaN : each.goneAt - call.t0));
      const local = records.find((each) => each.node === urls[caller]);
      revokeTrials.push({
        caller: names[caller]!,
        count: call.count,
        callMs: call.t1 - call.t0,
        worst: latencies.some(Number.isNaN) ? NaN : Math.max(...latencies),
        local: local?.goneAt === undefined ? NaN : local.goneAt - call.t0,
        remote: records.filter((each) => each !== local).map((each) => (each.goneAt === undefined ? NaN : each.goneAt - call.t0)),
        missing: records.filter((each) => each.goneAt === undefined).length + (3 - records.length),
      });
      await sleep(50);
    }
    revokeTrials.splice(0, 3); // the warm-up
    const revokeWorst = revokeTrials.map((each) => each.worst);
    const revokeRemote = revokeTrials.flatMap((each) => each.remote);
    const revokeMissing = revokeTrials.reduce((sum, each) => sum + each.missing, 0);
    log(`C: disconnectUser → every node: p50 ${ms(percentile(revokeWorst, 50))} p99 ${ms(percentile(revokeWorst, 99))}; missing ${revokeMissing}`);

    // Back-channel logout POST (sid) to one node → that session's sockets on the other nodes.
    const logoutTrials: Array<{ target: string; responded: number; status: number; worstRemote: number; remote: number[]; missing: number }> = [];
    for (let t = 0; t < V; t++) {
      const target = t % 3;
      const u = V + t;
      const token = await minter.mint({ sid: `sid-${u}`, events: { "http://schemas.openid.net/event/backchannel-logout": {} } }, 120, "logout+jwt");
      const t0 = epochMs();
      const response = await fetch(`${urls[target]}/oidc/backchannel-logout`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ logout_token: token }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
      await response.text();
      const responded = epochMs() - t0; // the node answers once it has asked every node to disconnect the sockets
      const records = await waitGone(clients, [`u-${u}`], 3, 5_000);
      const remote = records.filter((each) => each.node !== urls[target]).map((each) => (each.goneAt === undefined ? NaN : each.goneAt - t0));
      logoutTrials.push({
        target: names[target]!,
        responded,
        status: response.status,
        worstRemote: remote.some(Number.isNaN) || remote.length < 2 ? NaN : Math.max(...remote),
        remote,
        missing: records.filter((each) => each.goneAt === undefined).length + (3 - records.length),
      });
      await sleep(50);
    }
    logoutTrials.splice(0, 3); // the warm-up
    const logoutWorst = logoutTrials.map((each) => each.worstRemote);
    const logoutAnswered = logoutTrials.map((each) => each.responded);
    const logoutMissing = logoutTrials.reduce((sum, each) => sum + each.missing, 0);
    const logoutStatuses = [...new Set(logoutTrials.map((each) => each.status))];
    log(`C: back-channel logout → other nodes: p50 ${ms(percentile(logoutWorst, 50))} p99 ${ms(percentile(logoutWorst, 99))}; missing ${logoutMissing}; statuses ${logoutStatuses.join(",")}`);

    // Until list() on node a is complete again and a disconnectUser() on node `caller` reaches every other node.
    let probe = 2 * V;
    const heal = async (caller: number, since: number) => {
      let listAt = NaN;
      let revokeAt = NaN;
      let attemptCount = 0;
      const attempts: Array<Promise<unknown>> = [];
      while ((Number.isNaN(listAt) || Number.isNaN(revokeAt)) && epochMs() - since < 60_000) {
        if (Number.isNaN(listAt)) {
          // Complete: as many sessions as the clients hold (the same count before and after the call).
          const heldBefore = (await clientStats(clients)).connected;
          const length = await nodes[0]!.ask<Array<{ length: number }>>("list", { repeat: 1 }).then(
            (runs) => runs[0]!.length,
            () => -1,
          );
          const heldAfter = (await clientStats(clients)).connected;
          if (length === heldBefore && heldBefore === heldAfter) listAt = epochMs();
        }
        if (Number.isNaN(revokeAt) && probe < 2 * V + PROBE_USERS) {
          // A probe user has a socket on every node; done once the other nodes' sockets are gone too.
          const user = `u-${probe}`;
          attemptCount++;
          attempts.push(nodes[caller]!.ask("disconnectUser", { user, reason: "bench" }).catch(() => undefined));
          const records = await waitGone(clients, [user], 3, 250);
          const remote = records.filter((each) => each.node !== urls[caller]);
          if (remote.length === 2 && remote.every((each) => each.goneAt !== undefined)) {
            revokeAt = Math.max(...remote.map((each) => each.goneAt!));
            probe++;
          }
        }
        await sleep(100);
      }
      await Promise.all(attempts);
      return { list: listAt - since, revoke: revokeAt - since, attempts: attemptCount };
    };

    // Redis killed (SIGKILL) and restarted empty on the same port.
    const fillBefore = (await clientStats(clients)).byTag.fill?.connected ?? 0;
    const killedAt = epochMs();
    await redis.kill("SIGKILL");
    log("C: redis-server killed");
    await sleep(2_000);
    const degraded = await Promise.all(nodes.map((node) => node.ask<{ degraded: boolean }>("counts")));
    await redis.start();
    const restartedAt = epochMs();
    log(`C: redis-server restarted (outage ${round(restartedAt - killedAt, 0)} ms); nodes degraded meanwhile: ${degraded.map((each) => each.degraded).join(" / ")}`);
    const healed = await heal(1, restartedAt);
    const listHeal = healed.list;
    const revokeHeal = healed.revoke;
    const attemptCount = healed.attempts;
    const afterHeal = await Promise.all(nodes.map((node) => node.ask<{ degraded: boolean; chatSockets: number }>("counts")));
    log(`C: healed: list() complete after ${round(listHeal, 0)} ms, revocations across nodes after ${round(revokeHeal, 0)} ms (${attemptCount} attempts)`);

    // The same while node c is out of file descriptors: its Redis reconnects fail with EMFILE until descriptors are back.
    const pidC = nodes[2]!.pid!;
    const limitC = softFdLimitOf(pidC);
    const fdsC = fdsOf(pidC);
    const killed2At = epochMs();
    await redis.kill("SIGKILL");
    await sleep(300);
    // The limit bounds descriptor numbers: at the lowest free number, every new descriptor fails with EMFILE.
    // Lowered again and again for 1.5 s, so the numbers the failing reconnects free are below it too.
    let starveAt = Infinity;
    for (const until = Date.now() + 1_500; Date.now() < until; await sleep(50)) {
      const lowest = lowestFreeFd(pidC);
      if (lowest < starveAt) {
        starveAt = lowest;
        execFileSync("prlimit", ["--pid", String(pidC), `--nofile=${starveAt}:`]);
      }
    }
    await redis.start();
    const restarted2At = epochMs();
    await sleep(5_000);
    const starved = await Promise.all(nodes.map((node) => node.ask<{ degraded: boolean; chatSockets: number; redis: string[]; redisErrors: Record<string, number> }>("counts")));
    const starvedFd = await nodes[2]!.ask<{ inShortage: boolean }>("fd");
    execFileSync("prlimit", ["--pid", String(pidC), `--nofile=${limitC}:`]);
    const restoredAt = epochMs();
    log(`C: node c held at ${starveAt} descriptors (${fdsC} open) while Redis restarted (${round(restarted2At - killed2At, 0)} ms down); 5 s later degraded ${starved.map((each) => each.degraded).join(" / ")}; limit restored`);
    const healed2 = await heal(0, restoredAt);
    const afterHeal2 = await Promise.all(nodes.map((node) => node.ask<{ degraded: boolean; chatSockets: number }>("counts")));
    log(`C: node c healed: list() complete ${round(healed2.list, 0)} ms and revocations reach it ${round(healed2.revoke, 0)} ms after its descriptors came back`);
    const fillAfter = (await clientStats(clients)).byTag.fill?.connected ?? 0;

    const final = await clientStats(clients);
    const logs = await Promise.all(nodes.map((node) => node.ask<{ counts: Record<string, number>; notable: string[] }>("logs")));

    const where = `3 nodes, 1 redis-server, ${clientCount} client processes; ${SAME_MACHINE}`;
    check("C", "handshakes failed", ramp.failed === 0, `${fmt(ramp.failed)} of ${fmt(total)}`, `${JSON.stringify(ramp.errors)}; sockets per node ${perNode.map((each) => each.chatSockets).join(" / ")}; ${where}`);
    target("C", "disconnectUser() → disconnect on every node, p50", percentile(revokeWorst, 50), 100, `${TRIALS} trials (caller rotates over the nodes), each the slowest of the user's 3 sockets; ${where}`);
    target("C", "disconnectUser() → disconnect on every node, p99", percentile(revokeWorst, 99), 100, `max ${ms(Math.max(...revokeWorst))}; other nodes' sockets alone p50 ${ms(percentile(revokeRemote, 50))}; the call itself resolves in p50 ${ms(percentile(revokeTrials.map((each) => each.callMs), 50))}`);
    check("C", "revoked sockets that stayed connected", revokeMissing === 0, fmt(revokeMissing), `within 5 s of each disconnectUser(); counts returned ${[...new Set(revokeTrials.map((each) => each.count))].join(",")}`);
    target("C", `list() of ${fmt(ramp.ok)} sessions, p50`, percentile(listMs, 50), 250, `${lists.length} calls over the 3 nodes; ${where}`);
    target("C", `list() of ${fmt(ramp.ok)} sessions, p99`, percentile(listMs, 99), 250, `max ${ms(Math.max(...listMs))}; every answer complete: ${listComplete}`);
    target("C", "listByUser() (3 sessions), p99", percentile(byUserMs, 99), 10, `p50 ${ms(percentile(byUserMs, 50))}, p90 ${ms(percentile(byUserMs, 90))}, max ${ms(Math.max(...byUserMs))}; ${byUser.length} calls, one at a time, a node after the other; every answer complete: ${byUserComplete}; calls over 5 ms: ${byUserWhy.counts}; ${where}`);
    check("C", "list() / listByUser() complete", listComplete && byUserComplete, listComplete && byUserComplete ? "yes" : "no", `expected ${ramp.ok} and 3`);
    target("C", "back-channel logout POST → sockets gone on the other nodes, p50", percentile(logoutWorst, 50), 100, `${TRIALS} trials (target node rotates), logout token with sid, each the slowest of the 2 other nodes' sockets; ${where}`);
    target("C", "back-channel logout POST → sockets gone on the other nodes, p99", percentile(logoutWorst, 99), 100, `max ${ms(Math.max(...logoutWorst))}; the POST answered in p50 ${ms(percentile(logoutAnswered, 50))}, max ${ms(Math.max(...logoutAnswered))}; statuses ${logoutStatuses.join(",")}`);
    check("C", "logged-out sockets that stayed connected", logoutMissing === 0 && logoutStatuses.every((status) => status === 200), fmt(logoutMissing), `HTTP statuses ${logoutStatuses.join(",")}`);
    row("C", "Redis restart: list() complete again", `${fmt(listHeal)} ms`, "—", Number.isFinite(listHeal) ? "—" : "FAIL", `after redis-server answered again (killed with SIGKILL, down ${fmt(restartedAt - killedAt)} ms, restarted empty on the same port); complete = as many sessions as the clients hold; ${where}`);
    row("C", "Redis restart: revocations reach every node again", `${fmt(revokeHeal)} ms`, "—", Number.isFinite(revokeHeal) ? "—" : "FAIL", `disconnectUser() on node b every ~400 ms until the user's sockets on a and c went too (${attemptCount} attempts); nodes degraded during the outage: ${degraded.map((each) => each.degraded).join("/")}, after: ${afterHeal.map((each) => each.degraded).join("/")}`);
    row("C", "Redis restart while node c is out of descriptors: list() complete again", `${fmt(healed2.list)} ms`, "—", Number.isFinite(healed2.list) ? "—" : "FAIL", `(a node that has not noticed the outage writes its sessions back at its next heartbeat, every session ttl / 3 = 20 s) after node c's descriptors came back (soft limit lowered to its lowest free descriptor number, ${starveAt}, with prlimit while redis-server was killed and restarted; its reconnects failed meanwhile); 5 s after the restart: nodes degraded ${starved.map((each) => each.degraded).join("/")}, node c out of descriptors ${starvedFd.inShortage}, its Redis clients ${starved[2]!.redis.join("/")} with errors ${JSON.stringify(starved[2]!.redisErrors)}; ${where}`);
    row("C", "Redis restart while node c is out of descriptors: revocations reach node c again", `${fmt(healed2.revoke)} ms`, "—", Number.isFinite(healed2.revoke) ? "—" : "FAIL", `disconnectUser() on node a (${healed2.attempts} attempts); degraded after: ${afterHeal2.map((each) => each.degraded).join("/")}; node c log lines at level ≤ 4: ${logs[2]!.notable.slice(-4).join(" / ") || "none"}`);
    check("C", "nodes alive and not degraded at the end", afterHeal2.every((each) => !each.degraded), afterHeal2.every((each) => !each.degraded) ? "yes" : "no", `sockets per node ${afterHeal2.map((each) => each.chatSockets).join(" / ")}`);
    check("C", "sockets lost across the outage", fillAfter === fillBefore && final.expired === 0 && (final.goneByTag.fill ?? 0) === 0, fmt(fillBefore - fillAfter), `${fmt(fillAfter)} of ${fmt(fillBefore)} still connected; refreshes ok ${final.refreshOk} failed ${final.refreshFailed}`);
    check("C", "refreshes failed", final.refreshFailed === 0, fmt(final.refreshFailed), `${fmt(final.refreshOk)} ok ${JSON.stringify(final.refreshErrors)}`);
    json.cluster = { total, ramp: { ...ramp, ms: undefined, p50: percentile(ramp.ms, 50), p99: percentile(ramp.ms, 99) }, perNode, lists, byUser, byUserWhy, revokeTrials, logoutTrials, listHeal, revokeHeal, killedAt, restartedAt, degraded, afterHeal, healed2, starved, starvedFd, afterHeal2, fdsC, limitC, starveAt, fillBefore, fillAfter, final, logs };
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.kill("SIGTERM");
  }
}

// ---------------------------------------------------------------------------

function commit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

async function main(): Promise<number> {
  const watchdog = setTimeout(() => {
    log(`WATCHDOG: the run exceeded ${WATCHDOG_S} s; killing every child`);
    killAllChildren();
    killRedisServers();
    process.exit(3);
  }, WATCHDOG_S * 1000);
  watchdog.unref();
  const machine = `${cpus().length} CPU (${cpus()[0]?.model ?? "?"}), ${round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}, load average ${loadavg().map((each) => each.toFixed(2)).join(" ")}`;
  log(`${QUICK ? "quick" : "full"} mode; ${machine}; CLUSTER_SOCKETS=${SOCKETS} CLUSTER_NODES_SOCKETS=${NODES_SOCKETS} CLUSTER_TOKEN_TTL=${TTL} CLUSTER_HOLD_SECONDS=${HOLD} CLUSTER_ALG=${ALG}`);

  const key = makeSigningKey(ALG);
  const jwks = await serveJwks([key.jwk]);
  const signing: SigningSpec = { ...key.spec, issuer: jwks.url, audience: "cluster-bench" };
  const minter = new Minter(signing);
  const base = { issuer: jwks.url, audience: "cluster-bench", jwksUri: jwks.jwksUri };
  let error: unknown;
  try {
    if (ONLY !== "cluster") await singleNode(signing, { ...base, jwksCacheMaxAge: JWKS_MAX_AGE });
    if (ONLY !== "single") await cluster(signing, base, minter);
  } catch (caught) {
    error = caught;
    log(`ERROR: ${caught instanceof Error ? (caught.stack ?? caught.message) : String(caught)}`);
  } finally {
    await jwks.close();
    clearTimeout(watchdog);
  }
  if (error !== undefined) check("run", "completed without a crash or an unanswered node", false, "no", error instanceof Error ? error.message : JSON.stringify(error));

  const table = [
    "| part | measure | value | target | result | details |",
    "|---|---|---|---|---|---|",
    ...rows.map((each) => `| ${each.part} | ${each.measure} | ${each.value} | ${each.target} | ${each.result} | ${each.details.replaceAll("|", "\\|")} |`),
  ].join("\n");
  const file = join(tmpdir(), `ioserver-oidc-bench-cluster-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), commit: commit(), machine, quick: QUICK, params: { SOCKETS, PER_CLIENT, BATCH, TTL, HOLD, FD_LIMIT, OVER, EMFILE_SECONDS, NODES_SOCKETS, TRIALS, ALG }, rows, ...json, jwksRequests: jwks.hits }, null, 2));
  process.stdout.write(
    `\n## Figures at scale (${QUICK ? "quick" : "full"} mode)\n\n` +
      `${new Date().toISOString()}, commit ${commit()}; ${machine}; everything (clients, nodes, Redis) on this one machine; ${round((Date.now() - started) / 1000, 0)} s.\n\n${table}\n\nJSON: ${file}\n`,
  );
  const failed = rows.filter((each) => each.result === "FAIL");
  if (failed.length > 0) process.stdout.write(`\nFAIL: ${failed.map((each) => `${each.part} ${each.measure}`).join("; ")}\n`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`bench:cluster failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    killAllChildren();
    killRedisServers();
    process.exit(1);
  },
);
