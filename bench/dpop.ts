/**
 * P11 / P12: the server CPU time per request of the protected route
 * (`OidcHttpMiddleware`, GET /secure/me) with another kind of credential ÷
 * the same route with a cached Bearer JWT, in one server child process
 * pinned to its own CPU, loaded by wrk on the other CPU (as P3: lib/wrk.ts,
 * lib/pin.ts). The server's config adds `dpop` (policy "allowed") and an
 * `introspection` block to P3's.
 *
 *   P11  `Authorization: DPoP <token>` (the same DPoP-bound JWT, cached) with
 *        a fresh proof per request (its own jti; htm and htu of the route),
 *        vs `Authorization: Bearer <token>` (an unbound JWT, cached); one row
 *        per proof algorithm: ES256 (what `ioserver-oidc/client` signs
 *        with) in quick mode, ES256, EdDSA and RS256 in full mode
 *        (BENCH_DPOP_ALGS=ES256,EdDSA,RS256 chooses)
 *   P12  an opaque token (introspected once, then from the introspection
 *        cache) vs a cached Bearer JWT
 *   P13  Socket.IO handshakes on the protected namespace: `auth: { token,
 *        dpop }` (the bound token, a fresh ES256 proof for GET
 *        http://127.0.0.1:<port>/socket.io/) vs `auth: { token }` (a cached
 *        Bearer JWT); server CPU per handshake, the raw Engine.IO client of
 *        P5 in the load generator, which gets each run's proofs before it
 *        (outside the measured interval) and sends each once
 *
 * Proofs are signed in this process before each one-second DPoP run, never
 * during it, while the server is idle: wrk reads them from a file and sends
 * each once (lib/dpopProofs.ts). A proof replayed because the file ran out
 * is refused and counted as a failed request (the row then fails).
 *
 * Interleaving as P3: each round alternates one-second runs of the two
 * credentials (baseline, other, other, baseline, …), the server's CPU time
 * read around each run; the round's figure is other ÷ baseline CPU per
 * request, the row the median of the rounds.
 *
 * A proof costs at least one signature check more than a Bearer request:
 * each P11 row also prints that floor, `crypto.verify` alone timed in this
 * process (another CPU than the server's) on the same kind of proof, as
 * (Bearer + one verify) ÷ Bearer.
 *
 * P11 and P12 need wrk (the Lua script sets the DPoP header per request):
 * without it their rows say so.
 */
import { verify } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OidcConfigInput } from "ioserver-oidc";
import { Child } from "./lib/child.js";
import { BENCH_AUDIENCE, BENCH_ISSUER, fmt, freePort, log, median, ratioStatus, round, type BenchParams, type Row } from "./lib/common.js";
import { dpopScript, makeProofs, startIntrospection, thumbprint, type ProofTarget } from "./lib/dpopProofs.js";
import { fixture } from "./lib/fixture.js";
import { claims, floorInput, keyFor, makeKey, nodeAlgorithm, signToken, type BenchAlg } from "./lib/jwt.js";
import { pin } from "./lib/pin.js";
import { runWrk, WRK, type WrkRun } from "./lib/wrk.js";

/** Server CPU per request, other credential ÷ cached Bearer JWT: at most this. */
const TARGET = { P11: 1.3, P12: 1.1, P13: 1.3 };
const PATH = "/secure/me";
/**
 * Proofs signed per one-second DPoP run: this many for the first (the rate is
 * not known yet), then twice the fastest run seen so far plus a margin. A
 * request past the last proof is refused as a replay and fails the check:
 * RS256 proofs (the cheapest to verify) reached 8,181 requests in the
 * warm-up on this machine, and a run can go nearly twice as fast as the one
 * before when the host's other load drops.
 */
const FIRST_PROOFS = 16_000;
const MAX_PROOFS = 60_000;

interface CpuUsage {
  user: number;
  system: number;
}

interface SideTotal {
  requests: number;
  non2xx: number;
  errors: number;
  cpu: number;
  seconds: number;
  p99: number[];
}

const emptySide = (): SideTotal => ({ requests: 0, non2xx: 0, errors: 0, cpu: 0, seconds: 0, p99: [] });
const perRequest = (side: SideTotal) => (side.cpu * 1e6) / Math.max(1, side.requests - side.non2xx);

async function serverCpu(server: Child): Promise<number> {
  const cpu = await server.ask<CpuUsage>("cpu");
  return (cpu.user + cpu.system) / 1e6;
}

/** A load of one second: made (and `prepare`d) first, outside the measured interval; then run with the server's CPU read around it. */
type Load = () => { prepare?: () => Promise<void>; run: () => Promise<WrkRun> };

async function measured(server: Child, load: Load, total: SideTotal): Promise<WrkRun> {
  const { prepare, run } = load();
  await prepare?.();
  const before = await serverCpu(server);
  const result = await run();
  const after = await serverCpu(server);
  total.requests += result.requests;
  total.non2xx += result.non2xx;
  total.errors += result.socketErrors;
  total.cpu += after - before;
  total.seconds += result.seconds;
  total.p99.push(result.p99);
  return result;
}

interface Round {
  base: SideTotal;
  other: SideTotal;
}

/** One round: `runs` alternating one-second runs per side, the first side alternating between rounds. */
async function oneRound(server: Child, base: Load, other: Load, runs: number, first: 0 | 1): Promise<Round> {
  const round_: Round = { base: emptySide(), other: emptySide() };
  for (let i = 0; i < runs; i++) {
    const order = (first + i) % 2 === 0 ? (["base", "other"] as const) : (["other", "base"] as const);
    for (const side of order) await measured(server, side === "base" ? base : other, round_[side]);
  }
  return round_;
}

function row(id: "P11" | "P12" | "P13", name: string, measure: string, rounds: Round[], how: string, note: (baseCpu: number) => string): Row {
  const ratios = rounds.map((each) => perRequest(each.other) / perRequest(each.base));
  const value = median(ratios);
  const failed = rounds.reduce((sum, each) => sum + each.base.non2xx + each.other.non2xx + each.base.errors + each.other.errors, 0);
  const rps = (side: "base" | "other") => median(rounds.map((each) => each[side].requests / each[side].seconds));
  const baseCpu = median(rounds.map((each) => perRequest(each.base)));
  return {
    id: name,
    measure,
    value: `${round(value, 3).toFixed(3)}×`,
    target: `≤ ${TARGET[id]}×`,
    status: failed > 0 ? "FAIL" : ratioStatus(value, TARGET[id], "<="),
    detail:
      `${round(median(rounds.map((each) => perRequest(each.other))), 2)} vs ${round(median(rounds.map((each) => perRequest(each.base))), 2)} µs server CPU per request ` +
      `(medians; per-round ratios ${round(Math.min(...ratios), 3)}–${round(Math.max(...ratios), 3)}); req/s ${fmt(rps("other"))} vs ${fmt(rps("base"))}; ` +
      `p99 ${round(median(rounds.flatMap((each) => each.other.p99)), 2)} vs ${round(median(rounds.flatMap((each) => each.base.p99)), 2)} ms; ${how}; ${note(baseCpu)}` +
      (failed > 0 ? `; ${failed} failed requests` : ""),
    data: { value, ratios, rounds, baseCpu },
  };
}

/** The proof algorithms of the P11 rows. */
function proofAlgs(params: BenchParams): BenchAlg[] {
  const raw = process.env.BENCH_DPOP_ALGS ?? (params.mode === "full" ? "ES256,EdDSA,RS256" : "ES256");
  const algs = raw.split(",").map((alg) => alg.trim()).filter(Boolean);
  for (const alg of algs) {
    if (alg !== "ES256" && alg !== "EdDSA" && alg !== "RS256") {
      process.stderr.write(`BENCH_DPOP_ALGS takes ES256, EdDSA, RS256; got ${raw}\n`);
      process.exit(2);
    }
  }
  return algs as BenchAlg[];
}

/** µs of CPU per `crypto.verify` of a proof of `target` (median of 5 batches of 400), in this process. */
function verifyCost(target: ProofTarget): number {
  const proofs = makeProofs(target, 400).map((proof) => floorInput(proof));
  const key = keyFor(target.key.publicKey, target.key.alg);
  const digest = nodeAlgorithm(target.key.alg);
  const batches: number[] = [];
  for (let batch = 0; batch < 6; batch++) {
    const before = process.cpuUsage();
    for (const { data, signature } of proofs) if (!verify(digest, data, key, signature)) throw new Error("a bench proof does not verify");
    const used = process.cpuUsage(before);
    if (batch > 0) batches.push((used.user + used.system) / proofs.length);
  }
  return median(batches);
}

export async function runDpop(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  const ids = (["P11", "P12", "P13"] as const).filter((id) => only.has(id));
  if (ids.length === 0) return [];
  const skipped: Row[] = [];
  if (WRK === undefined) {
    for (const id of ids.filter((each) => each !== "P13")) skipped.push({ id, measure: id, value: "n/a", target: `≤ ${TARGET[id]}×`, status: "SKIP", detail: "needs wrk (apt-get install wrk): the DPoP header changes per request" });
    if (!ids.includes("P13")) return skipped;
  }
  const fx = await fixture(params);
  const dir = mkdtempSync(join(tmpdir(), "ioserver-oidc-bench-dpop-"));
  const opaque = `opaque-${"x".repeat(40)}`;
  const now = Math.floor(Date.now() / 1000);
  const introspection = await startIntrospection(opaque, { iss: BENCH_ISSUER, aud: BENCH_AUDIENCE, sub: "user-opaque", exp: now + 3_600, iat: now, scope: "api", client_id: "bench-client", token_type: "Bearer" });
  const config = {
    ...fx.config,
    dpop: { policy: "allowed" },
    introspection: { endpoint: introspection.endpoint, clientId: "bench-resource-server", clientSecret: "bench-secret", cacheTtl: 3_600_000 },
  } as OidcConfigInput;
  const port = await freePort();
  const server = await Child.start("server (dpop)", "servers/app.ts", { nodeArgs: ["--expose-gc", "--no-warnings"], start: { port, config } });
  pin(server.pid, "server");
  const url = `http://127.0.0.1:${port}${PATH}`;
  const rows: Row[] = skipped;
  const runs = Math.max(1, Math.round(params.httpSeconds / 2));
  const how = `wrk, ${params.httpRounds} rounds × ${runs} alternating 1 s runs per credential, ${params.httpConnections} connections`;
  try {
    const bearer: Load = () => ({ run: () => runWrk({ url, seconds: 1, connections: params.httpConnections, token: fx.single }) });
    const jobs: Array<{ id: "P11" | "P12" | "P13"; name: string; alg?: BenchAlg }> = [];
    if (ids.includes("P11") && WRK !== undefined) for (const alg of proofAlgs(params)) jobs.push({ id: "P11", name: `P11 ${alg}`, alg });
    if (ids.includes("P12") && WRK !== undefined) jobs.push({ id: "P12", name: "P12" });
    if (ids.includes("P13")) jobs.push({ id: "P13", name: "P13" });
    for (const { id, name, alg } of jobs) {
      let other: Load;
      let base = bearer;
      let measure: string;
      let note: (baseCpu: number) => string;
      if (id === "P13") {
        const key = makeKey("ES256");
        const bound = await signToken(fx.key, claims(BENCH_ISSUER, BENCH_AUDIENCE, "user-dpop-socket", 3_600, { cnf: { jkt: thumbprint(key.jwk) } }));
        // The Socket.IO engine endpoint the client opens: scheme, host and path, no query, no namespace.
        const target: ProofTarget = { key, method: "GET", url: `http://127.0.0.1:${port}/socket.io/`, accessToken: bound };
        const concurrency = params.handshakeConcurrency;
        let fastest = 0;
        let signed = 0;
        const reasons: Record<string, number> = {};
        const handshakes = async (auth: string): Promise<WrkRun> => {
          const run = await fx.load.ask<{ ok: number; failed: number; reasons: Record<string, number>; elapsed: number; p99: number }>("handshake", { port, ns: "/secure", seconds: 1, concurrency, auth }, 60_000);
          for (const [reason, count] of Object.entries(run.reasons)) reasons[reason] = (reasons[reason] ?? 0) + count;
          const requests = run.ok + run.failed;
          return { requests, seconds: run.elapsed, rps: requests / run.elapsed, non2xx: run.failed, socketErrors: 0, p50: NaN, p99: run.p99, cpu: NaN };
        };
        base = () => ({ run: () => handshakes(`token:${fx.single}`) });
        other = () => {
          const count = fastest === 0 ? 4_000 : Math.min(MAX_PROOFS, Math.ceil(fastest * 1.5) + 500);
          signed += count;
          const proofs = makeProofs(target, count);
          return {
            prepare: async () => {
              await fx.load.ask("setAuths", { auths: proofs.map((dpop) => ({ token: bound, dpop })) }, 60_000);
            },
            run: async () => {
              const result = await handshakes("list");
              fastest = Math.max(fastest, result.requests);
              return result;
            },
          };
        };
        measure = `server CPU per Socket.IO handshake, DPoP (cached bound token, a fresh ES256 proof in auth.dpop) ÷ Bearer (cached token), raw Engine.IO client, ${concurrency} in flight`;
        note = () => `${fmt(signed)} proofs signed and handed to the load generator before the runs${Object.keys(reasons).length > 0 ? `; refusals ${JSON.stringify(reasons)}` : ""}`;
      } else if (alg !== undefined) {
        const key = makeKey(alg);
        const jkt = thumbprint(key.jwk);
        const bound = await signToken(fx.key, claims(BENCH_ISSUER, BENCH_AUDIENCE, "user-dpop", 3_600, { cnf: { jkt } }));
        const target: ProofTarget = { key, method: "GET", url, accessToken: bound };
        const script = dpopScript(dir, bound);
        const proofsFile = join(dir, "proofs.txt");
        let fastest = 0;
        let signing = 0;
        let signed = 0;
        other = () => {
          // Signed now, before the server's CPU is read: the server is idle meanwhile.
          const count = fastest === 0 ? FIRST_PROOFS : Math.min(MAX_PROOFS, Math.ceil(fastest * 2) + 2_000);
          const t0 = performance.now();
          writeFileSync(proofsFile, `${makeProofs(target, count).join("\n")}\n`);
          signing += performance.now() - t0;
          signed += count;
          return {
            run: async () => {
              const result = await runWrk({ url, seconds: 1, connections: params.httpConnections, rotate: { script, tokensFile: proofsFile } });
              fastest = Math.max(fastest, result.requests);
              return result;
            },
          };
        };
        measure = `server CPU per request, DPoP (cached bound token, a fresh ${alg} proof per request) ÷ Bearer (cached token), same route`;
        note = (baseCpu) => {
          const verify = verifyCost(target);
          return (
            `floor (Bearer + one ${alg} crypto.verify, ${round(verify, 1)} µs in the bench process) ÷ Bearer ${round((baseCpu + verify) / baseCpu, 2)}×; ` +
            `${fmt(signed)} proofs signed before the runs (${round((signing / Math.max(1, signed)) * 1000, 1)} µs each, outside the measured intervals)`
          );
        };
      } else {
        other = () => ({ run: () => runWrk({ url, seconds: 1, connections: params.httpConnections, token: opaque }) });
        measure = "server CPU per request, opaque token through introspection (warm cache) ÷ cached JWT, same route";
        note = () => `introspection endpoint called ${introspection.hits} time(s) in all`;
      }
      // Warm-up (JIT, key set, the token cache, the introspection cache) and the functional check.
      const warm = await oneRound(server, base, other, 1, 0);
      if (warm.base.requests === 0 || warm.other.requests === 0 || warm.base.non2xx + warm.other.non2xx > 0) {
        rows.push({ id: name, measure, value: "n/a", target: `≤ ${TARGET[id]}×`, status: "FAIL", detail: `warm-up: baseline ${warm.base.requests} requests (${warm.base.non2xx} non-2xx), other ${warm.other.requests} (${warm.other.non2xx} non-2xx)` });
        continue;
      }
      const rounds: Round[] = [];
      for (let r = 0; r < params.httpRounds; r++) {
        const each = await oneRound(server, base, other, runs, (r % 2) as 0 | 1);
        rounds.push(each);
        log(`${name} round ${r + 1}/${params.httpRounds}: server CPU per request ${round(perRequest(each.other), 2)} vs ${round(perRequest(each.base), 2)} µs → ${round(perRequest(each.other) / perRequest(each.base), 3)}`);
      }
      rows.push(row(id, name, measure, rounds, id === "P13" ? `${params.httpRounds} rounds × ${runs} alternating 1 s runs per credential` : how, note));
    }
    const logs = await server.ask<{ counts: Record<string, number>; notable: string[] }>("logs");
    if (logs.notable.length > 0) log(`server log lines at level <= 4: ${JSON.stringify(logs.counts)}\n  ${logs.notable.join("\n  ")}`);
  } finally {
    await server.stop();
    await introspection.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
