/**
 * P1 / P2: `verifyOidcToken` on distinct tokens, one at a time, against the
 * physical floor — `crypto.verify` on the same signing input and signature
 * with a KeyObject — per algorithm (RS256; ES256, EdDSA). In-process, keys
 * from a real JWKS HTTP server on 127.0.0.1, one config object reused (the
 * package memoises its normalisation by identity). Every token is new to the
 * package (distinct `jti` and `sub`, never verified before). Each round
 * interleaves the two sides every 50 tokens (verifyOidcToken on 50, the
 * floor on the same 50, …); its ratio is floor time ÷ verifyOidcToken time
 * over the pairs not disturbed by the machine (a chunk over twice its side's
 * median is a descheduled process, not the code: that pair is dropped); the
 * median of the rounds is reported. Before the rounds, BENCH_MICRO_WARM
 * (5,000) tokens per algorithm are verified the same way, so the rounds see
 * the package's code optimised, as in a server that has been running.
 */
import { verify } from "node:crypto";
import { verifyOidcToken, type OidcConfigInput } from "ioserver-oidc";
import { BENCH_AUDIENCE, BENCH_ISSUER, fmt, log, median, ratioStatus, round, type BenchParams, type Row } from "./lib/common.js";
import { claims, floorInput, keyFor, makeKey, nodeAlgorithm, signMany, type BenchAlg, type BenchKey, type FloorInput } from "./lib/jwt.js";
import { startJwksServer } from "./lib/jwksServer.js";

const ALGS: readonly BenchAlg[] = ["RS256", "ES256", "EdDSA"];
const TARGET: Record<BenchAlg, number> = { RS256: 0.85, ES256: 0.92, EdDSA: 0.92 };
/** Tokens per interleaving step: verifyOidcToken on CHUNK tokens, then the floor on the same CHUNK, and so on. */
const CHUNK = 50;

async function timeVerifyOidcToken(tokens: readonly string[], config: OidcConfigInput): Promise<number> {
  const t0 = performance.now();
  for (const token of tokens) await verifyOidcToken(token, config);
  return performance.now() - t0;
}

/**
 * Milliseconds to verify each of `inputs` once with crypto.verify. Once, as
 * the package verifies each token once: a second pass over the same inputs
 * would find them in the CPU's caches, where the package never finds a new
 * token.
 */
function timeFloor(inputs: readonly FloorInput[], key: BenchKey): number {
  const algorithm = nodeAlgorithm(key.alg);
  const publicKey = keyFor(key.publicKey, key.alg);
  const t0 = performance.now();
  for (const { data, signature } of inputs) {
    if (!verify(algorithm, data, publicKey, signature)) throw new Error(`floor: crypto.verify refused a valid ${key.alg} signature`);
  }
  return performance.now() - t0;
}

export async function runMicro(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  const wanted = ALGS.filter((alg) => only.has(alg === "RS256" ? "P1" : "P2"));
  if (wanted.length === 0) return [];
  const keys = Object.fromEntries(wanted.map((alg) => [alg, makeKey(alg)])) as Record<BenchAlg, BenchKey>;
  const jwks = await startJwksServer(wanted.map((alg) => keys[alg].jwk));
  try {
    // Created once and reused for every call.
    const config: OidcConfigInput = { issuer: BENCH_ISSUER, audience: BENCH_AUDIENCE, jwksUri: jwks.jwksUri };
    const n = params.microTokens;
    const rounds = params.microRounds;
    // At least one warm-up token: its verification fetches the key set.
    const warm = Math.max(1, params.microWarmTokens);
    log(`P1/P2: signing ${rounds} × ${n} distinct tokens per algorithm (${wanted.join(", ")}) + ${warm} for the warm-up`);
    const batches = {} as Record<BenchAlg, { warm: string[]; rounds: string[][] }>;
    for (const alg of wanted) {
      const all = await signMany(keys[alg], n * rounds + warm, (i) => claims(BENCH_ISSUER, BENCH_AUDIENCE, `micro-${alg}-${i}`, 3_600));
      batches[alg] = { warm: all.slice(0, warm), rounds: Array.from({ length: rounds }, (_, r) => all.slice(warm + r * n, warm + (r + 1) * n)) };
    }
    // Warm-up, interleaved like the rounds: the first call fetches the key set, and V8's optimising compiler takes
    // the package's per-token functions only after a few thousand calls (crypto.verify is native from the start),
    // so the rounds measure the steady state of a server that has been verifying tokens for a while.
    for (const alg of wanted) {
      const tokens = batches[alg].warm;
      for (let start = 0; start < tokens.length; start += CHUNK) {
        const chunk = tokens.slice(start, start + CHUNK);
        await timeVerifyOidcToken(chunk, config);
        timeFloor(chunk.map(floorInput), keys[alg]);
      }
    }
    const fetchesAfterWarmUp = jwks.hits;

    const perAlg = Object.fromEntries(wanted.map((alg) => [alg, { verifyMs: [] as number[], floorMs: [] as number[], ratios: [] as number[], dropped: 0, pairs: 0 }])) as Record<
      BenchAlg,
      { verifyMs: number[]; floorMs: number[]; ratios: number[]; dropped: number; pairs: number }
    >;
    for (let r = 0; r < rounds; r++) {
      for (const alg of wanted) {
        const tokens = batches[alg].rounds[r]!;
        const inputs = tokens.map(floorInput); // prepared outside the timed region
        // Interleaved chunk by chunk (a few ms each), so a burst of other work on the machine hits both sides alike.
        const chunksA: number[] = [];
        const chunksB: number[] = [];
        for (let start = 0; start < n; start += CHUNK) {
          chunksA.push(await timeVerifyOidcToken(tokens.slice(start, start + CHUNK), config));
          chunksB.push(timeFloor(inputs.slice(start, start + CHUNK), keys[alg]));
        }
        // A pair in which either chunk took over twice its side's median was disturbed (the process was
        // descheduled): it is dropped. GC pauses and the like, a fraction of a chunk, stay in.
        const limitA = 2 * median(chunksA);
        const limitB = 2 * median(chunksB);
        let a = 0;
        let b = 0;
        let kept = 0;
        for (let i = 0; i < chunksA.length; i++) {
          if (chunksA[i]! > limitA || chunksB[i]! > limitB) continue;
          a += chunksA[i]!;
          b += chunksB[i]!;
          kept++;
        }
        perAlg[alg].verifyMs.push((a * chunksA.length) / kept);
        perAlg[alg].floorMs.push((b * chunksB.length) / kept);
        perAlg[alg].ratios.push(b / a);
        perAlg[alg].dropped += chunksA.length - kept;
        perAlg[alg].pairs += chunksA.length;
      }
      log(`P1/P2 round ${r + 1}/${rounds}: ${wanted.map((alg) => `${alg} ${round(perAlg[alg].ratios[r]!, 3)}`).join(", ")}`);
    }

    return wanted.map((alg): Row => {
      const { verifyMs, floorMs, ratios, dropped, pairs } = perAlg[alg];
      const verifyOps = median(verifyMs.map((ms) => (n * 1000) / ms));
      const floorOps = median(floorMs.map((ms) => (n * 1000) / ms));
      const ratio = median(ratios);
      return {
        id: alg === "RS256" ? "P1" : `P2 ${alg}`,
        measure: `verifyOidcToken ÷ crypto.verify, distinct ${alg} tokens, one at a time`,
        value: round(ratio, 3).toFixed(3),
        target: `≥ ${TARGET[alg]}`,
        status: ratioStatus(ratio, TARGET[alg], ">="),
        detail:
          `${fmt(verifyOps)} vs ${fmt(floorOps)} verifications/s (medians, ${rounds} rounds × ${n} tokens interleaved every ${CHUNK}; ` +
          `${dropped}/${pairs} disturbed pairs dropped; ratios ${ratios.map((x) => round(x, 2)).join(" ")})`,
        data: { verifyOps, floorOps, ratio, ratios, verifyMs, floorMs, tokensPerRound: n, rounds, chunk: CHUNK, dropped, pairs, jwksFetches: jwks.hits, fetchesAfterWarmUp },
      };
    });
  } finally {
    await jwks.close();
  }
}
