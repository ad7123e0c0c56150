/**
 * The end-to-end differential: the package's public verifyOidcToken and the
 * reference jose.jwtVerify (same JWKS, same options, plus the package's
 * documented rules: compact form, maxTokenLength, `sub` a non-empty string)
 * agree on accept/reject — and on the claims when both accept — for every
 * one of DIFFERENTIAL_TOKENS (default 100,000) generated tokens: valid ones
 * for RS256/PS256/RS384/PS512/ES256/ES384/ES512/EdDSA/Ed25519, claim
 * mutations around every clock-tolerance edge, header tricks (alg swaps,
 * none, HS256 keyed with the public key, kid games, crit/b64, extra
 * members), bit flips and character substitutions in every segment
 * (including the malleable last character of the signature), truncations,
 * wrong keys, raw JSON oddities, tokens around maxTokenLength, and repeats,
 * against three configurations (defaults-like; strict with maxTokenAge;
 * two issuers). The JWKS comes from a real HTTP server on 127.0.0.1.
 *
 * DIFFERENTIAL_SEED=<n> replays a run (the seed is printed).
 * `bench/differential.ts` runs the same with 1,000,000 tokens.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { OidcAuthError } from "../../src/index.js";
import { referenceVerify } from "./generate.js";
import { startDifferential, summarize, type Differential, type Verifier } from "./runner.js";

const TOKENS = Number(process.env["DIFFERENTIAL_TOKENS"] ?? 100_000);
const SEED = process.env["DIFFERENTIAL_SEED"] ? Number(process.env["DIFFERENTIAL_SEED"]) : (Date.now() % 2 ** 31) >>> 0;

let differential: Differential;

before(
  async () => {
    differential = await startDifferential({ seed: SEED, workers: 1 });
  },
  { timeout: 120_000 },
);

after(
  async () => {
    await differential?.close();
  },
  { timeout: 30_000 },
);

describe("pipeline differential: verifyOidcToken vs jose.jwtVerify", () => {
  it("the harness catches a verifier that is off by one second of clock tolerance", { timeout: 120_000 }, async (t) => {
    // A stand-in verifier: the reference with one more second of tolerance.
    const { reference } = differential;
    const lenient = reference.configs.map((config) => ({ ...config, reference: config.reference.map((options) => ({ ...options, clockTolerance: Number(options.clockTolerance) + 1 })) }));
    const offByOne: Verifier = async (token, _config, index) => {
      const decision = await referenceVerify(reference, lenient[index]!, token);
      if (!decision.accepted) throw new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason: decision.reason });
      return { sub: decision.payload["sub"] as string, claims: decision.payload };
    };
    const report = await differential.run({ count: 4_000, verifier: offByOne, maxReported: 0 });
    t.diagnostic(`off-by-one verifier: ${report.disagreements} disagreements in ${report.total} tokens`);
    assert.ok(report.disagreements > 0, "the comparison did not notice a one-second tolerance error");
  });

  it(`agree on every one of ${TOKENS} generated tokens`, { timeout: 900_000 }, async (t) => {
    const report = await differential.run({ count: TOKENS, maxReported: 20, progressEvery: 25_000, log: (line) => t.diagnostic(line) });
    t.diagnostic(`seed ${SEED}: ${summarize(report)}`);
    t.diagnostic(`JWKS fetched ${differential.server.hits} times`);
    assert.equal(report.total, TOKENS);
    assert.equal(report.disagreements, 0, `${report.disagreements} disagreements (seed ${SEED}), first ones:\n${report.reports.join("\n\n")}`);

    // Both classes well represented, overall and per config.
    assert.ok(report.accepted > TOKENS * 0.2, `only ${report.accepted} accepted`);
    assert.ok(report.rejected > TOKENS * 0.4, `only ${report.rejected} refused`);
    for (const [name, tally] of Object.entries(report.byConfig)) {
      assert.ok(tally.accepted > TOKENS * 0.03 && tally.rejected > TOKENS * 0.03, `config ${name}: ${JSON.stringify(tally)}`);
    }
    // Every family of case occurred, and the ones that can go either way did.
    const families = new Map<string, { accepted: number; rejected: number }>();
    for (const [kind, tally] of Object.entries(report.byKind)) {
      const family = kind.split(":")[0]!;
      const sum = families.get(family) ?? { accepted: 0, rejected: 0 };
      sum.accepted += tally.accepted;
      sum.rejected += tally.rejected;
      families.set(family, sum);
    }
    for (const family of ["valid", "repeat", "claims", "header", "segment", "wrong-key", "raw", "length", "pool"]) {
      assert.ok(families.has(family), `no ${family} cases`);
    }
    for (const family of ["claims", "header", "segment", "raw", "length", "pool", "repeat"]) {
      const sum = families.get(family)!;
      assert.ok(sum.accepted > 0 && sum.rejected > 0, `${family}: ${JSON.stringify(sum)}`);
    }
    assert.equal(families.get("wrong-key")!.accepted, 0);
    // The malleable last signature character: some substitutions decode to the same bytes and verify.
    assert.ok((report.byKind["segment:last-sig-char"]?.accepted ?? 0) > 0, "no last-character no-op was accepted");
  });
});
