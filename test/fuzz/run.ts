/**
 * `npm run fuzz`: the properties of test/fuzz/properties.ts with 1,000,000
 * cases in all (FUZZ_RUNS overrides; FUZZ_SEED fixes the base seed;
 * FUZZ_CONCURRENCY, default 2, is how many chunks run at once), in chunks of
 * 10,000 seeded fast-check runs so progress is printed as it goes. A property
 * stops at its first failure (after fast-check has shrunk it and printed the
 * counterexample with its seed and path); the others go on. Exits non-zero on
 * any failure, unhandled rejection or uncaught exception.
 */
import {
  createFuzzTarget,
  newStats,
  PROPERTIES,
  runProperty,
  watchProcess,
  type FailureKind,
  type PropertyName,
} from "./properties.js";

/** Share of the total per property (the CI test's proportions). */
const SHARE: Record<PropertyName, number> = { mutations: 0.4, claims: 0.3, junk: 0.15, headers: 0.15 };
const CHUNK = 10_000;

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw.replace(/_/g, ""));
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`fuzz: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const total = intFromEnv("FUZZ_RUNS", 1_000_000);
const baseSeed = intFromEnv("FUZZ_SEED", Math.floor(Math.random() * 2 ** 31));
const concurrency = Math.max(1, intFromEnv("FUZZ_CONCURRENCY", 2));

async function main(): Promise<number> {
  const watch = watchProcess();
  const target = await createFuzzTarget();
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  const failures: Record<FailureKind, number> = { "accepted wrongly": 0, crash: 0, "wrong code": 0, "refused wrongly": 0, other: 0 };
  let cases = 0;

  console.log(`fuzz: ${total} cases, base seed ${baseSeed}, ${concurrency} chunks of ${CHUNK} in flight (replay with FUZZ_SEED=${baseSeed} FUZZ_RUNS=${total})`);
  try {
    // Budgets that add up to exactly `total`.
    const budgets = PROPERTIES.map(({ name }) => Math.floor(total * SHARE[name]));
    budgets[0]! += total - budgets.reduce((a, b) => a + b, 0);

    for (const [i, { name, title }] of PROPERTIES.entries()) {
      const budget = budgets[i]!;
      const stats = newStats();
      const chunks = Math.ceil(budget / CHUNK);
      let nextChunk = 0;
      let done = 0;
      let failed = false;
      const propertyStarted = performance.now();
      console.log(`\n[${name}] ${title}: ${budget} cases`);
      // A few chunks in flight at once: the crypto runs on libuv's thread pool, so this uses more than one core.
      const worker = async () => {
        while (!failed && nextChunk < chunks) {
          const chunk = nextChunk++;
          const numRuns = Math.min(CHUNK, budget - chunk * CHUNK);
          // One seed per chunk, derived from the base seed: any chunk can be replayed alone.
          const seed = (baseSeed + i * 1_000_003 + chunk * 7_919) | 0;
          const report = await runProperty(name, target, { numRuns, seed }, stats);
          done += report.numRuns;
          cases += report.numRuns;
          if (report.failed) {
            const kind = report.kind ?? "other";
            failures[kind]++;
            failed = true;
            console.log(`[${name}] FAILED (${kind}) in chunk ${chunk} (seed ${seed}, numRuns ${numRuns}):\n${report.message ?? ""}`);
            return;
          }
          const rate = Math.round(done / Math.max((performance.now() - propertyStarted) / 1000, 0.001));
          console.log(
            `[${name}] ${done}/${budget}  accepted ${stats.accepted}  refused ${stats.refused}  ` +
              `JWKS hits ${target.jwks.hits} (bound ${target.maxJwksHits()})  ${rate} cases/s  ${seconds()} s`,
          );
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      console.log(`[${name}] codes ${JSON.stringify(stats.codes)}${stats.noopAccepted > 0 ? `, ${stats.noopAccepted} accepted mutations checked to be no-ops` : ""}`);
      if (Object.keys(stats.labels).length > 0) console.log(`[${name}] cases by kind ${JSON.stringify(stats.labels)}`);
      if (target.jwks.hits > target.maxJwksHits()) {
        failures.other++;
        console.log(`[${name}] FAILED: the JWKS was fetched ${target.jwks.hits} times (bound ${target.maxJwksHits()})`);
      }
    }
    if (target.bait.hits !== 0) {
      failures.other++;
      console.log(`FAILED: the jku/x5u bait server was contacted ${target.bait.hits} times`);
    }
  } finally {
    await watch.settle();
    watch.stop();
    await target.close();
  }

  const crashes = failures.crash + watch.uncaughtExceptions;
  const others = failures["wrong code"] + failures["refused wrongly"] + failures.other;
  if (watch.errors.length > 0) console.log(`process errors:\n${watch.errors.map((e) => (e instanceof Error ? (e.stack ?? e.message) : String(e))).join("\n")}`);
  console.log(
    `\nfuzz: ${cases} cases, ${failures["accepted wrongly"]} accepted wrongly, ${crashes} crashes, ${watch.unhandledRejections} unhandled rejections` +
      (others > 0 ? `, ${others} other failures (${failures["wrong code"]} wrong code, ${failures["refused wrongly"]} refused wrongly, ${failures.other} other)` : "") +
      `, ${seconds()} s`,
  );
  return failures["accepted wrongly"] + crashes + watch.unhandledRejections + others === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
    // The servers are closed: the process should end by itself. If a handle still holds it, say so and stop.
    setTimeout(() => {
      console.error("fuzz: the process did not exit by itself within 5 s (a handle is still open)");
      process.exit(code === 0 ? 3 : code);
    }, 5_000).unref();
  },
  (error: unknown) => {
    console.error("fuzz: setup or runner error:", error);
    process.exitCode = 2;
  },
);
