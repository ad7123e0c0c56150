/**
 * The large differential run: the package's verifyOidcToken against the
 * reference jose.jwtVerify (same JWKS, same options, plus the package's
 * documented rules) on a million generated tokens — the same generator and
 * comparison as test/differential/pipeline.test.ts (100,000 in CI).
 *
 *   DIFFERENTIAL_TOKENS   tokens to generate and compare       (default 1000000)
 *   DIFFERENTIAL_SEED     replay a run (the seed is printed)   (default: random)
 *   DIFFERENTIAL_WORKERS  threads generating and deciding cases with the reference
 *                                                              (default: cores - 1, at least 1)
 *
 * Exit 0 only if the two agree on every token (accept/reject, and the claims
 * when both accept); any disagreement is printed with the token's parts (test
 * keys only: nothing secret) and the run exits 1.
 */
import { availableParallelism } from "node:os";
import { startDifferential, summarize } from "../test/differential/runner.js";

function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const tokens = intEnv("DIFFERENTIAL_TOKENS", 1_000_000, 1, 100_000_000);
const seed = intEnv("DIFFERENTIAL_SEED", (Date.now() % 2 ** 31) >>> 0, 0, 2 ** 32 - 1);
const workers = intEnv("DIFFERENTIAL_WORKERS", Math.max(1, availableParallelism() - 1), 1, 64);

console.log(`differential: ${tokens} tokens, seed ${seed}, ${workers} worker thread(s) (replay with DIFFERENTIAL_SEED=${seed})`);
const started = performance.now();
const differential = await startDifferential({ seed, workers });
console.log(`  keys, JWKS server and token pools ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
let exitCode = 1;
try {
  const report = await differential.run({
    count: tokens,
    maxReported: 50,
    progressEvery: Math.max(10_000, Math.round(tokens / 20)),
    log: (line) => console.log(line),
  });
  console.log(summarize(report));
  console.log(`JWKS fetched ${differential.server.hits} times`);
  if (report.disagreements > 0) {
    console.error(`FAIL: ${report.disagreements} disagreements (seed ${seed})`);
  } else if (report.total !== tokens) {
    console.error(`FAIL: compared ${report.total} tokens, expected ${tokens}`);
  } else {
    console.log(`PASS: verifyOidcToken and jose.jwtVerify agree on all ${tokens} tokens`);
    exitCode = 0;
  }
} finally {
  await differential.close();
}
process.exit(exitCode);
