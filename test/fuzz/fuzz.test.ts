/**
 * Property-based fuzzing of verifyOidcToken in CI: the four properties of
 * test/fuzz/properties.ts with 22,000 cases in all, against real keys and a
 * real JWKS server. `npm run fuzz` runs the same properties with 1,000,000.
 *
 * FUZZ_SEED=<n> replays a run (each property's seed is printed as a
 * diagnostic, and a failure prints fast-check's counterexample, seed and path).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createFuzzTarget, PROPERTIES, runProperty, watchProcess, type FuzzTarget, type PropertyName, type ProcessWatch } from "./properties.js";

/** Cases per property: 22,000 in all (about 20 s on a 2-core machine). */
const BUDGET: Record<PropertyName, number> = { mutations: 8_000, claims: 6_000, junk: 4_000, headers: 4_000 };
const SEED = process.env["FUZZ_SEED"] === undefined || process.env["FUZZ_SEED"] === "" ? undefined : Number(process.env["FUZZ_SEED"]);

let target: FuzzTarget;
let watch: ProcessWatch;
const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();

before(
  async () => {
    watch = watchProcess();
    target = await createFuzzTarget();
  },
  { timeout: 30_000 },
);

after(
  async () => {
    watch?.stop();
    await target?.close();
  },
  { timeout: 10_000 },
);

describe("fuzz: verifyOidcToken", () => {
  let total = 0;

  for (const { name, title } of PROPERTIES) {
    it(`${name}: ${title}`, { timeout: 120_000 }, async (t) => {
      const report = await runProperty(name, target, { numRuns: BUDGET[name], ...(SEED === undefined ? {} : { seed: SEED }) });
      total += report.numRuns;
      const { stats } = report;
      t.diagnostic(
        `${name}: ${report.numRuns} cases (${report.numSkips} skipped) in ${(report.ms / 1000).toFixed(1)} s, seed ${report.seed}; ` +
          `accepted ${stats.accepted}, refused ${stats.refused} ${JSON.stringify(stats.codes)}` +
          (stats.noopAccepted > 0 ? `, ${stats.noopAccepted} accepted mutations checked to be no-ops` : "") +
          (Object.keys(stats.labels).length > 0 ? `; cases by kind ${JSON.stringify(stats.labels)}` : ""),
      );
      assert.ok(!report.failed, `${report.kind ?? "failure"}\n${report.message ?? ""}`);
      assert.equal(report.numRuns, BUDGET[name]);
      assert.ok(target.jwks.hits <= target.maxJwksHits(), `JWKS fetched ${target.jwks.hits} times (bound ${target.maxJwksHits()})`);
    });
  }

  it("ran ≥ 20,000 cases; no unhandled rejection, no uncaught exception, bounded JWKS hits, bait never contacted", async (t) => {
    await watch.settle();
    t.diagnostic(`${total} cases in all; JWKS hits ${target.jwks.hits}; unhandled rejections ${watch.unhandledRejections}`);
    assert.ok(total >= 20_000, `only ${total} cases ran`);
    assert.equal(watch.unhandledRejections, 0, `unhandled rejections: ${watch.errors.map(String).join("; ")}`);
    assert.equal(watch.uncaughtExceptions, 0, `uncaught exceptions: ${watch.errors.map(String).join("; ")}`);
    assert.ok(target.jwks.hits >= 1 && target.jwks.hits <= target.maxJwksHits(), `JWKS fetched ${target.jwks.hits} times`);
    assert.equal(target.bait.hits, 0, "the jku/x5u server was never contacted");
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeKeys, "Object.prototype was not polluted");
  });
});
