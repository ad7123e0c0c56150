/**
 * Load and soak run (`npm run soak`): many authenticated Socket.IO
 * connections that live through several token lifetimes by refreshing
 * in-band, plus steady HTTP traffic, against an IOServer app protected by
 * ioserver-oidc running ALONE in a child process (so its heap and event-loop
 * delay are its own). Loopback only, bounded in count and time; it stops by
 * itself.
 *
 *   SOAK_SOCKETS   authenticated sockets to open               (default 5000)
 *   SOAK_SECONDS   hold time once all sockets are connected    (default 60)
 *   SOAK_BATCH     handshakes started at once                  (default 250)
 *   SOAK_HTTP_RPS  HTTP requests per second, keep-alive        (default 200)
 *   SOAK_TOKEN_TTL token lifetime in seconds                   (default 20)
 *   SOAK_ALG       RS256 or ES256                              (default RS256)
 *   SOAK_ROUNDS    connect / hold / disconnect rounds          (default 1)
 *   SOAK_SERVER_NODE_ARGS  extra node flags for the server child (e.g. --cpu-prof)
 *   SOAK_SERVER_CONFIG     JSON merged into the server's config, for diagnosis (e.g. '{"tokenCache":false}')
 *   SOAK_HEAP_SNAPSHOTS    a directory: heap snapshots of the server before and after each round
 *
 * Exit 0 only if: no failed handshake, no failed refresh, no socket
 * disconnected by expiry (or otherwise by the server), every socket refreshed
 * at least once, no failed HTTP request, and the server's heap after all
 * sockets are gone (forced GC, after the last round) within 10 % of the warm
 * baseline (taken after a 20-socket warm-up, also after a forced GC).
 */
import { execSync, fork, type ChildProcess } from "node:child_process";
import { Agent, request } from "node:http";
import { freePort, intEnv } from "./lib/common.js";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { io, type Socket } from "socket.io-client";
import { createTestIssuer } from "ioserver-oidc/testing";

// ---------------------------------------------------------------------------
// Parameters (bounded).


const SOCKETS = intEnv("SOAK_SOCKETS", 5_000, 1, 20_000);
const SECONDS = intEnv("SOAK_SECONDS", 60, 5, 1_800);
const BATCH = intEnv("SOAK_BATCH", 250, 1, 2_000);
const HTTP_RPS = intEnv("SOAK_HTTP_RPS", 200, 0, 5_000);
const TTL = intEnv("SOAK_TOKEN_TTL", 20, 6, 3_600);
const ALG = process.env.SOAK_ALG === "ES256" ? "ES256" : "RS256";
const ROUNDS = intEnv("SOAK_ROUNDS", 1, 1, 10);
const HTTP_MAX_IN_FLIGHT = 500;
const HANDSHAKE_TIMEOUT = 30_000;
const REFRESH_ACK_TIMEOUT = 10_000;
/** Hard limit on the whole run: ramp-up budget + hold + teardown. */
const WATCHDOG_MS = (ROUNDS * (SECONDS + 120 + Math.ceil(SOCKETS / 100)) + 120) * 1000;

const started = Date.now();
const log = (text: string) => process.stderr.write(`[soak +${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nowS = () => Math.floor(Date.now() / 1000);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}
const round = (value: number, digits = 1) => (Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : NaN);


function fdLimit(): number | undefined {
  try {
    return Number(execSync("ulimit -n", { shell: "/bin/sh", encoding: "utf8" }).trim());
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// The server child and its IPC.

interface HeapFigures {
  heapUsedMB: number;
  rssMB: number;
  peakHeapMB?: number;
  peakRssMB?: number;
}
interface Eld {
  p50: number;
  p99: number;
  max: number;
  mean: number;
  count: number;
}

class ServerChild {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private constructor(readonly child: ChildProcess) {
    child.on("message", (message: { id?: number; result?: unknown; error?: string; type?: string }) => {
      if (message.id === undefined) return;
      const entry = this.waiting.get(message.id);
      if (entry === undefined) return;
      this.waiting.delete(message.id);
      clearTimeout(entry.timer);
      if (message.error !== undefined) entry.reject(new Error(message.error));
      else entry.resolve(message.result);
    });
  }

  static async start(port: number, config: unknown): Promise<{ server: ServerChild; cold: HeapFigures }> {
    const child = fork(fileURLToPath(new URL("./soak-server.ts", import.meta.url)), [], {
      // SOAK_SERVER_NODE_ARGS: extra flags for the server child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
      execArgv: ["--expose-gc", "--import", "tsx", ...(process.env.SOAK_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean)],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const server = new ServerChild(child);
    const cold = await new Promise<HeapFigures>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server child did not start within 30 s")), 30_000);
      child.on("message", (message: { type?: string; error?: string } & HeapFigures) => {
        if (message.type === "spawned") child.send({ type: "start", port, config });
        if (message.type === "ready") {
          clearTimeout(timer);
          resolve(message);
        }
        if (message.type === "fatal") {
          clearTimeout(timer);
          reject(new Error(`server child: ${message.error}`));
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server child exited (${code})`));
      });
    });
    return { server, cold };
  }

  ask<T>(cmd: string, timeoutMs = 30_000, extra: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`server child did not answer ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.send({ id, cmd, ...extra });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    await this.ask("stop", 10_000).catch(() => undefined);
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(killer);
  }
}

// ---------------------------------------------------------------------------
// Counters.

const stats = {
  handshakesAttempted: 0,
  handshakesFailed: 0,
  handshakeErrors: {} as Record<string, number>,
  handshakeMs: [] as number[],
  expiring: 0,
  /** oidc:expiring received while draining at the end of a hold (deliberately not answered). */
  expiringIgnored: 0,
  refreshOk: 0,
  refreshFailed: 0,
  refreshErrors: {} as Record<string, number>,
  refreshMs: [] as number[],
  expired: 0,
  revoked: 0,
  serverDisconnects: 0,
  disconnectReasons: {} as Record<string, number>,
  httpOk: 0,
  httpFailed: 0,
  httpErrors: {} as Record<string, number>,
  httpSkipped: 0,
  httpMs: [] as number[],
};
const bump = (table: Record<string, number>, key: string) => {
  table[key] = (table[key] ?? 0) + 1;
};

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const limit = fdLimit();
  log(`SOAK_SOCKETS=${SOCKETS} SOAK_SECONDS=${SECONDS} SOAK_BATCH=${BATCH} SOAK_HTTP_RPS=${HTTP_RPS} SOAK_TOKEN_TTL=${TTL} SOAK_ALG=${ALG} SOAK_ROUNDS=${ROUNDS}; ulimit -n ${limit ?? "unknown"}`);
  // Each connection is one descriptor in this process and one in the server child (plus a few hundred for everything else).
  if (limit !== undefined && limit < SOCKETS + 1_000) {
    log(`WARNING: ulimit -n is ${limit}; ${SOCKETS} sockets need about ${SOCKETS + 1_000} descriptors per process. Raise it in the shell (ulimit -n ${SOCKETS + 2_000}) before npm run soak.`);
    // This script holds every client socket itself: near a hard cap, spread the clients over several processes instead.
    log("(npm run bench:cluster spreads the clients over several processes, so only the server needs that many.)");
  }

  const issuer = await createTestIssuer({ appSlug: "soak-app", accessTokenTtl: TTL });
  const port = await freePort();
  // SOAK_SERVER_CONFIG: extra config for the server child as JSON, for diagnosis only (e.g. '{"tokenCache":false}').
  const extra = JSON.parse(process.env.SOAK_SERVER_CONFIG ?? "{}") as Record<string, unknown>;
  const { server, cold: ready } = await ServerChild.start(port, { ...issuer.config, ...extra });
  const cold: HeapFigures = { heapUsedMB: ready.heapUsedMB, rssMB: ready.rssMB };
  const url = `http://127.0.0.1:${port}`;
  log(`server child pid ${server.child.pid} on ${url}; issuer ${issuer.issuer}`);

  const sockets: Socket[] = [];
  const refreshedOnce = new Set<number>();
  /** Sockets this script disconnected on purpose (teardown): their cut-short refreshes and disconnects are not failures. */
  const leaving = new WeakSet<Socket>();
  /** False while draining at the end of a hold: no new refresh starts, the ones in flight finish. */
  let answering = true;
  const inFlightRefreshes = () => stats.expiring - stats.expiringIgnored - stats.refreshOk - stats.refreshFailed;
  const leave = (socket: Socket) => {
    leaving.add(socket);
    socket.disconnect();
  };
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  let httpTimer: NodeJS.Timeout | undefined;
  let httpInFlight = 0;

  const mint = (sub: string) => issuer.mint({ sub, exp: nowS() + TTL }, { alg: ALG });

  const watchdog = setTimeout(() => {
    log(`WATCHDOG: the run exceeded ${WATCHDOG_MS / 1000} s; aborting`);
    server.child.kill("SIGKILL");
    process.exit(3);
  }, WATCHDOG_MS);
  watchdog.unref();

  function connectOne(index: number, token: string): Promise<void> {
    stats.handshakesAttempted++;
    const t0 = performance.now();
    const socket = io(`${url}/chat`, {
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      timeout: HANDSHAKE_TIMEOUT,
      auth: { token },
    });
    socket.on("oidc:expiring", () => {
      stats.expiring++;
      if (!answering) {
        stats.expiringIgnored++;
        return;
      }
      const r0 = performance.now();
      mint(`soak-${index}`)
        .then((fresh) => socket.timeout(REFRESH_ACK_TIMEOUT).emitWithAck("oidc:refresh", { token: fresh }))
        .then(
          (ack: { ok: boolean; code?: string }) => {
            if (ack?.ok === true) {
              stats.refreshOk++;
              stats.refreshMs.push(performance.now() - r0);
              refreshedOnce.add(index);
            } else {
              stats.refreshFailed++;
              bump(stats.refreshErrors, String(ack?.code));
            }
          },
          (error: unknown) => {
            if (leaving.has(socket)) return;
            stats.refreshFailed++;
            bump(stats.refreshErrors, error instanceof Error ? error.message : String(error));
          },
        );
    });
    socket.on("oidc:expired", () => stats.expired++);
    socket.on("oidc:revoked", () => stats.revoked++);
    socket.on("disconnect", (reason) => {
      if (leaving.has(socket) && reason === "io client disconnect") return;
      bump(stats.disconnectReasons, reason);
      if (reason === "io server disconnect") stats.serverDisconnects++;
    });
    return new Promise<void>((resolve) => {
      const done = (error?: string) => {
        socket.off("connect", onConnect);
        socket.off("connect_error", onError);
        if (error === undefined) {
          stats.handshakeMs.push(performance.now() - t0);
          sockets.push(socket);
        } else {
          stats.handshakesFailed++;
          bump(stats.handshakeErrors, error);
          socket.disconnect();
        }
        resolve();
      };
      const onConnect = () => done();
      const onError = (error: Error) => done(error.message);
      socket.on("connect", onConnect);
      socket.on("connect_error", onError);
    });
  }

  // HTTP traffic: HTTP_RPS requests per second, in 20 ticks of 50 ms, keep-alive, bounded in flight.
  let httpToken = await mint("http-client");
  let httpTokenAt = Date.now();
  function httpOne(): void {
    if (httpInFlight >= HTTP_MAX_IN_FLIGHT) {
      stats.httpSkipped++;
      return;
    }
    httpInFlight++;
    const t0 = performance.now();
    const req = request(`${url}/api/me`, { agent, headers: { authorization: `Bearer ${httpToken}` }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => {
        httpInFlight--;
        if (res.statusCode === 200) {
          stats.httpOk++;
          stats.httpMs.push(performance.now() - t0);
        } else {
          stats.httpFailed++;
          bump(stats.httpErrors, `HTTP ${res.statusCode}`);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (error) => {
      httpInFlight--;
      stats.httpFailed++;
      bump(stats.httpErrors, error.message);
    });
    req.end();
  }
  // Paced on the clock (not on the number of ticks), so a late tick catches up.
  const http = { startedAt: 0, sent: 0, activeMs: 0 };
  function startHttp(): void {
    if (HTTP_RPS === 0) return;
    http.startedAt = Date.now();
    http.sent = 0;
    httpTimer = setInterval(() => {
      if (Date.now() - httpTokenAt > (TTL * 1000) / 3) {
        httpTokenAt = Date.now();
        void mint("http-client").then((token) => (httpToken = token));
      }
      const due = Math.floor(((Date.now() - http.startedAt) / 1000) * HTTP_RPS) - http.sent;
      for (let i = 0; i < due; i++) {
        http.sent++;
        httpOne();
      }
    }, 50);
  }
  function stopHttp(): void {
    if (httpTimer === undefined) return;
    clearInterval(httpTimer);
    httpTimer = undefined;
    http.activeMs += Date.now() - http.startedAt;
  }

  interface RoundResult {
    rampMs: number;
    eldRamp: Eld;
    eldAll: Eld;
    /** Heap with every socket connected, after GC (with the round's peak). */
    full: HeapFigures;
    after: HeapFigures;
    connectedAtEnd: number;
    never: number;
    left: { sessions: number; chatSockets: number };
  }

  let exitCode: number;
  try {
    // Warm-up: a few handshakes, a refresh and HTTP requests, so the baseline includes
    // one-time allocations (jose, the key set, compiled code, Socket.IO namespaces).
    for (let i = 0; i < 20; i++) httpOne();
    const warm = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const socket = io(`${url}/chat`, { transports: ["websocket"], reconnection: false, forceNew: true, auth: { token: await mint(`warm-${i}`) } });
        await new Promise<void>((resolve, reject) => {
          socket.once("connect", () => resolve());
          socket.once("connect_error", (error) => reject(error));
        });
        await socket.timeout(5_000).emitWithAck("oidc:refresh", { token: await mint(`warm-${i}`) });
        return socket;
      }),
    );
    for (const socket of warm) socket.disconnect();
    while (httpInFlight > 0) await sleep(20);
    for (let i = 0; i < 100 && (await server.ask<{ sessions: number }>("sessions")).sessions !== 0; i++) await sleep(50);
    stats.httpOk = 0;
    stats.httpMs.length = 0;
    const before = await server.ask<HeapFigures>("gcHeap");
    log(`baseline heap: cold ${cold.heapUsedMB} MB, warm ${before.heapUsedMB} MB (rss ${before.rssMB} MB)`);
    const snapshots = process.env.SOAK_HEAP_SNAPSHOTS;
    const snapshot = async (name: string) => {
      if (snapshots === undefined || snapshots === "") return;
      const written = await server.ask<{ path: string }>("snapshot", 120_000, { path: `${snapshots}/soak-${name}.heapsnapshot` });
      log(`heap snapshot ${written.path}`);
    };
    await snapshot("before");

    const rounds: RoundResult[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      await server.ask("eldReset"); // also resets the sampled peaks
      sockets.length = 0;
      refreshedOnce.clear();
      answering = true;

      // Ramp-up, in batches; HTTP traffic starts with it.
      startHttp();
      const rampStart = Date.now();
      for (let i = 0; i < SOCKETS; i += BATCH) {
        const size = Math.min(BATCH, SOCKETS - i);
        const tokens = await Promise.all(Array.from({ length: size }, (_, k) => mint(`soak-${i + k}`)));
        await Promise.all(tokens.map((token, k) => connectOne(i + k, token)));
        if ((i / BATCH) % 4 === 3 || i + size >= SOCKETS) log(`round ${r}: connected ${sockets.length}/${SOCKETS} (failed so far ${stats.handshakesFailed})`);
      }
      const rampMs = Date.now() - rampStart;
      const eldRamp = await server.ask<Eld>("eld");

      // Hold: every socket lives through at least one refresh.
      const holdStart = Date.now();
      const atFull = await server.ask<{ sessions: number; chatSockets: number }>("sessions");
      log(`round ${r}: all connected in ${(rampMs / 1000).toFixed(1)} s; server sees ${atFull.sessions} sessions, ${atFull.chatSockets} chat sockets; holding ${SECONDS} s`);
      while (Date.now() - holdStart < SECONDS * 1000) {
        await sleep(Math.min(10_000, SECONDS * 1000 - (Date.now() - holdStart)));
        const heap = await server.ask<HeapFigures>("heap");
        log(
          `round ${r}: hold ${Math.round((Date.now() - holdStart) / 1000)} s: refreshes ok ${stats.refreshOk} failed ${stats.refreshFailed}, expired ${stats.expired}, ` +
            `HTTP ok ${stats.httpOk} failed ${stats.httpFailed}, server heap ${heap.heapUsedMB} MB (peak ${heap.peakHeapMB})`,
        );
      }
      // Drain: refreshes in flight finish (bounded by the ack timeout); no new one starts. The
      // sockets' tokens are still valid for at least a third of their lifetime plus the tolerance.
      answering = false;
      const drainStart = Date.now();
      while (inFlightRefreshes() > 0 && Date.now() - drainStart < REFRESH_ACK_TIMEOUT + 1_000) await sleep(20);
      log(`round ${r}: drained in ${Date.now() - drainStart} ms; ${inFlightRefreshes()} refreshes still unanswered`);
      stopHttp();
      const eldAll = await server.ask<Eld>("eld");
      const connectedAtEnd = sockets.filter((socket) => socket.connected).length;
      const full = await server.ask<HeapFigures>("gcHeap"); // everything connected, after GC
      const never = sockets.length - refreshedOnce.size;

      // Teardown: the clients leave; the server must let go of everything.
      while (httpInFlight > 0) await sleep(20);
      agent.destroy(); // the keep-alive connections go too (the agent opens new ones if used again)
      for (let i = 0; i < sockets.length; i += 500) {
        for (const socket of sockets.slice(i, i + 500)) leave(socket);
        await sleep(50);
      }
      let left = { sessions: -1, chatSockets: -1 };
      for (let i = 0; i < 300; i++) {
        left = await server.ask<{ sessions: number; chatSockets: number }>("sessions");
        if (left.sessions === 0 && left.chatSockets === 0) break;
        await sleep(100);
      }
      await sleep(1_000);
      const after = await server.ask<HeapFigures>("gcHeap");
      log(`round ${r}: all disconnected; server heap after GC ${after.heapUsedMB} MB (before: ${before.heapUsedMB} MB)`);
      rounds.push({ rampMs, eldRamp, eldAll, full, after, connectedAtEnd, never, left });
      await snapshot(`after-round-${r}`);
    }

    const logs = await server.ask<{ counts: Record<string, number>; notable: string[] }>("logs");
    const first = rounds[0]!;
    const last = rounds[rounds.length - 1]!;
    const growth = (last.after.heapUsedMB - before.heapUsedMB) / before.heapUsedMB;
    const heapOk = growth <= 0.1;
    const never = rounds.reduce((sum, each) => sum + each.never, 0);
    const refreshesPending = inFlightRefreshes();
    const httpSeconds = http.activeMs / 1000;
    const pct = (value: number) => `${value >= 0 ? "+" : ""}${round(value * 100, 1)} %`;

    // ------------------------------------------------------------------------
    const hs = [...stats.handshakeMs].sort((a, b) => a - b);
    const rs = [...stats.refreshMs].sort((a, b) => a - b);
    const hm = [...stats.httpMs].sort((a, b) => a - b);
    const checks: Array<[string, boolean]> = [
      ["0 failed handshakes", stats.handshakesFailed === 0],
      ["0 failed refreshes (none left unanswered)", stats.refreshFailed === 0 && refreshesPending === 0],
      ["0 sockets disconnected by expiry or by the server", stats.expired === 0 && stats.serverDisconnects === 0],
      ["every socket refreshed at least once", never === 0],
      ["0 failed HTTP requests", stats.httpFailed === 0 && stats.httpSkipped === 0],
      ["server heap after within 10 % of before", heapOk],
    ];
    const rows: Array<[string, string]> = [
      ["sockets (SOAK_SOCKETS), batch", `${SOCKETS}, ${BATCH} at a time${ROUNDS > 1 ? `, ${ROUNDS} rounds` : ""}`],
      ["hold (SOAK_SECONDS), token lifetime", `${SECONDS} s, ${TTL} s (${ALG})`],
      ["handshakes attempted / failed", `${stats.handshakesAttempted} / ${stats.handshakesFailed}${stats.handshakesFailed ? ` ${JSON.stringify(stats.handshakeErrors)}` : ""}`],
      ["ramp-up time", rounds.map((each) => `${round(each.rampMs / 1000)} s`).join(", ")],
      ["handshake latency p50 / p95 / p99 / max", `${round(percentile(hs, 50))} / ${round(percentile(hs, 95))} / ${round(percentile(hs, 99))} / ${round(hs[hs.length - 1] ?? NaN)} ms`],
      ["oidc:expiring received", `${stats.expiring}`],
      ["refreshes ok / failed", `${stats.refreshOk} / ${stats.refreshFailed}${stats.refreshFailed ? ` ${JSON.stringify(stats.refreshErrors)}` : ""}`],
      ["refreshes unanswered after the drain (counted as failed)", `${refreshesPending}`],
      ["oidc:expiring not answered on purpose (drain at the end of the hold)", `${stats.expiringIgnored}`],
      ["refresh round trip p50 / p99 (incl. minting)", `${round(percentile(rs, 50))} / ${round(percentile(rs, 99))} ms`],
      ["sockets that never refreshed", `${never}`],
      ["sockets disconnected by expiry (oidc:expired)", `${stats.expired}`],
      ["other server-side disconnects", `${stats.serverDisconnects}${Object.keys(stats.disconnectReasons).length ? ` ${JSON.stringify(stats.disconnectReasons)}` : ""}`],
      ["sockets still connected at the end of the hold", rounds.map((each) => `${each.connectedAtEnd} / ${SOCKETS}`).join(", ")],
      ["HTTP requests ok / failed / skipped (over 500 in flight)", `${stats.httpOk} / ${stats.httpFailed} / ${stats.httpSkipped}${stats.httpFailed ? ` ${JSON.stringify(stats.httpErrors)}` : ""}`],
      ["HTTP rate: target / achieved", `${HTTP_RPS}/s / ${round(stats.httpOk / Math.max(0.001, httpSeconds))}/s over ${round(httpSeconds)} s (ramp-up + hold)`],
      ["HTTP latency p50 / p99", `${round(percentile(hm, 50))} / ${round(percentile(hm, 99))} ms`],
      ["server heap used: cold start (GC)", `${cold.heapUsedMB} MB`],
      ["server heap used: before, warm (GC)", `${before.heapUsedMB} MB`],
      ["server heap used: peak (sampled every 250 ms, no GC)", rounds.map((each) => `${each.full.peakHeapMB} MB`).join(", ")],
      [
        "server heap used: all sockets connected (GC)",
        rounds.map((each) => `${each.full.heapUsedMB} MB (${round(((each.full.heapUsedMB - before.heapUsedMB) * 1024) / Math.max(1, each.connectedAtEnd), 2)} KB per socket)`).join(", "),
      ],
      ["server heap used: after all disconnected (GC)", rounds.map((each) => `${each.after.heapUsedMB} MB (${pct((each.after.heapUsedMB - before.heapUsedMB) / before.heapUsedMB)})`).join(", ")],
      ["after vs before", `${pct(growth)} → ${heapOk ? "within 10 %" : "NOT within 10 %"}`],
      ["server RSS: before / peak / after", `${before.rssMB} / ${Math.max(...rounds.map((each) => each.full.peakRssMB ?? 0))} / ${last.after.rssMB} MB`],
      ["server event-loop delay p50 / p99 / max, ramp-up (beyond the 10 ms sampling interval)", rounds.map((each) => `${each.eldRamp.p50} / ${each.eldRamp.p99} / ${each.eldRamp.max} ms`).join(", ")],
      ["server event-loop delay p50 / p99 / max, ramp-up + hold (same)", rounds.map((each) => `${each.eldAll.p50} / ${each.eldAll.p99} / ${each.eldAll.max} ms`).join(", ")],
      ["server log lines by level", JSON.stringify(logs.counts)],
      ["sessions left after teardown", rounds.map((each) => `${each.left.sessions} (chat sockets ${each.left.chatSockets})`).join(", ")],
      ["total run time", `${round((Date.now() - started) / 1000)} s`],
    ];
    const table = ["| measure | value |", "|---|---|", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
    const verdicts = checks.map(([name, ok]) => `- ${ok ? "PASS" : "FAIL"}: ${name}`).join("\n");
    process.stdout.write(
      `\n## Soak: ${SOCKETS} sockets, ${SECONDS} s${ROUNDS > 1 ? `, ${ROUNDS} rounds` : ""}\n\n` +
        `Machine: ${cpus().length} CPU (${cpus()[0]?.model ?? "?"}), ${round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}; ulimit -n ${limit ?? "?"}\n\n` +
        `${table}\n\n${verdicts}\n`,
    );
    if (logs.notable.length > 0) process.stdout.write(`\nServer log lines at level <= 4 (first ${logs.notable.length}):\n${logs.notable.map((line) => `    ${line}`).join("\n")}\n`);
    process.stdout.write(
      `\nSOAK_JSON ${JSON.stringify({
        sockets: SOCKETS,
        seconds: SECONDS,
        rounds: ROUNDS,
        ttl: TTL,
        alg: ALG,
        stats: { ...stats, handshakeMs: undefined, refreshMs: undefined, httpMs: undefined },
        handshake: { p50: percentile(hs, 50), p95: percentile(hs, 95), p99: percentile(hs, 99) },
        http: { p50: percentile(hm, 50), p99: percentile(hm, 99), seconds: httpSeconds },
        heap: { cold, before, growth },
        perRound: rounds,
        firstRampMs: first.rampMs,
        never,
        checks,
      })}\n`,
    );
    exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
    if (!heapOk) {
      process.stdout.write(
        `\nThe heap target was missed: ${before.heapUsedMB} MB before, ${last.after.heapUsedMB} MB after (${pct(growth)}). ` +
          "Reported as measured; see BENCHMARKS.md for the discussion.\n",
      );
    }
  } finally {
    stopHttp();
    for (const socket of sockets) leave(socket);
    agent.destroy();
    await server.stop();
    await issuer.close();
    clearTimeout(watchdog);
  }
  return exitCode;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Anything still open after the run would be a bug in this script: do not wait for it.
    setTimeout(() => process.exit(code), 2_000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`soak failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(2);
  },
);
