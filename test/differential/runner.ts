/**
 * The end-to-end differential: the package's public verifyOidcToken against
 * the reference (jose.jwtVerify + the package's documented rules, see
 * generate.ts) on every generated token. Shared by
 * test/differential/pipeline.test.ts and bench/differential.ts.
 *
 * The JWKS is served by a real HTTP server on 127.0.0.1 and the package is
 * given its `jwksUri`; the reference uses jose's local key set of the same
 * JWKS. Cases are generated and decided by the reference in worker threads
 * (source.ts); the package verifies them here, as many in flight as
 * `concurrency`. A disagreement is confirmed before it counts: when the two
 * decisions were not made within one second, the pair is re-run here
 * (package and reference together, within one second) — a token at a
 * clock-tolerance edge legitimately flips between seconds.
 */
import { isDeepStrictEqual } from "node:util";
import { OidcAuthError, verifyOidcToken, type OidcConfig } from "../../src/index.js";
import { normalizeConfig } from "../../src/config/normalize.js";
import { startJwksServer, type JwksServer } from "../helpers/keys.js";
import { createKeys, createReference, describeToken, jwksOf, referenceVerify, type Decision, type Reference } from "./generate.js";
import { inProcessSource, pool, workerSource, type CaseSource, type DecidedCase } from "./source.js";

/** What the verifier under test returns: the subject and the verified claims. */
export interface Verified {
  sub: string;
  claims: Readonly<Record<string, unknown>>;
}

export type Verifier = (token: string, config: OidcConfig, configIndex: number) => Promise<Verified>;

/** The package, through its public entry point. */
export const packageVerifier: Verifier = (token, config) => verifyOidcToken(token, config);

export interface DifferentialOptions {
  seed: number;
  /** Worker threads generating and deciding cases (0: in-process). Default 1. */
  workers?: number;
  /** Pre-signed slow (RSA, ES384, ES512) tokens per source. Default 320. */
  poolSize?: number;
}

export interface RunOptions {
  count: number;
  /** Package verifications in flight at once (default 32). */
  concurrency?: number;
  verifier?: Verifier;
  /** Disagreements printed in full (default 20); all are counted. */
  maxReported?: number;
  /** Stop generating after this many disagreements (default: never). */
  stopAfter?: number;
  log?: (line: string) => void;
  /** Log progress every this many tokens (0: never). */
  progressEvery?: number;
}

export interface Tally {
  accepted: number;
  rejected: number;
}

export interface RunReport {
  total: number;
  /** Agreed decisions. */
  accepted: number;
  rejected: number;
  disagreements: number;
  reports: string[];
  byKind: Record<string, Tally>;
  byConfig: Record<string, Tally>;
  /** Refusal codes the package gave (for agreed rejections). */
  codes: Record<string, number>;
  /** Pairs re-run because their two decisions were not made in the same second and differed. */
  rechecks: number;
  ms: number;
}

export interface Differential {
  reference: Reference;
  server: JwksServer;
  /** The package's configs, normalised once (as the middleware does). */
  configs: OidcConfig[];
  run(options: RunOptions): Promise<RunReport>;
  close(): Promise<void>;
}

type Outcome = { accepted: true; verified: Verified } | { accepted: false; error: unknown };

const nowS = () => Math.floor(Date.now() / 1000);

/** No single verification may hang the run: this long, and it counts as a failure. */
const VERIFY_TIMEOUT_MS = 30_000;

class VerifyTimeout extends Error {
  override readonly name = "VerifyTimeout";
}

async function attempt(verifier: Verifier, token: string, config: OidcConfig, index: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new VerifyTimeout(`no answer within ${VERIFY_TIMEOUT_MS} ms`)), VERIFY_TIMEOUT_MS);
    });
    return { accepted: true, verified: await Promise.race([verifier(token, config, index), timeout]) };
  } catch (error) {
    return { accepted: false, error };
  } finally {
    clearTimeout(timer);
  }
}

function describeOutcome(outcome: Outcome): string {
  if (outcome.accepted) return `accepted (sub ${JSON.stringify(outcome.verified.sub)})`;
  const { error } = outcome;
  if (error instanceof OidcAuthError) return `refused ${error.code}: ${error.reason}`;
  return `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
}

function describeDecision(decision: Decision): string {
  return decision.accepted ? `accepted (sub ${JSON.stringify(decision.payload["sub"])})` : `refused: ${decision.reason}`;
}

/** A refusal must be the package's own, with a token-side code (never a crash, or a 503 for a bad token). */
function refusalProblem(error: unknown): string | undefined {
  if (!(error instanceof OidcAuthError)) return "refused with something other than an OidcAuthError";
  if (error.code !== "ERR_AUTH_TOKEN_INVALID" && error.code !== "ERR_AUTH_TOKEN_REQUIRED") return `refused with ${error.code}`;
  return undefined;
}

/** Why the package's answer differs from the reference's, or undefined when they agree. */
function compare(outcome: Outcome, decision: Decision): string | undefined {
  if (outcome.accepted !== decision.accepted) return "accept/reject";
  if (outcome.accepted && decision.accepted) {
    if (outcome.verified.sub !== decision.payload["sub"]) return "different sub";
    if (!isDeepStrictEqual({ ...outcome.verified.claims }, decision.payload)) return "different claims";
    return undefined;
  }
  return refusalProblem((outcome as { error: unknown }).error);
}

/** The same, against a decision made in the worker (payload as JSON). */
function compareDecided(outcome: Outcome, c: DecidedCase): string | undefined {
  if (outcome.accepted !== c.accepted) return "accept/reject";
  if (outcome.accepted) return JSON.stringify(outcome.verified.claims) === c.detail ? undefined : "different claims";
  return refusalProblem((outcome as { error: unknown }).error);
}

function bump(record: Record<string, Tally>, key: string, accepted: boolean): void {
  const tally = (record[key] ??= { accepted: 0, rejected: 0 });
  if (accepted) tally.accepted++;
  else tally.rejected++;
}

/** Keys, a JWKS server on 127.0.0.1, the reference and the case sources. */
export async function startDifferential(options: DifferentialOptions): Promise<Differential> {
  const keys = await createKeys();
  const jwks = jwksOf(keys);
  const server = await startJwksServer(jwks);
  const reference = createReference(jwks, server.jwksUri);
  const configs = reference.configs.map((config) => normalizeConfig(config.input));
  const workers = options.workers ?? 1;
  const init = (i: number) => ({ keys, jwksUri: server.jwksUri, seed: (options.seed + i * 0x9e3779b1) >>> 0, poolSize: options.poolSize ?? 320 });
  let sources: CaseSource[];
  try {
    sources = workers === 0 ? [inProcessSource(init(0))] : await Promise.all(Array.from({ length: workers }, (_, i) => workerSource(init(i))));
  } catch (error) {
    await server.close();
    throw error;
  }

  const run = async (runOptions: RunOptions): Promise<RunReport> => {
    const verifier = runOptions.verifier ?? packageVerifier;
    const concurrency = runOptions.concurrency ?? 32;
    const maxReported = runOptions.maxReported ?? 20;
    const progressEvery = runOptions.progressEvery ?? 0;
    const report: RunReport = { total: 0, accepted: 0, rejected: 0, disagreements: 0, reports: [], byKind: {}, byConfig: {}, codes: {}, rechecks: 0, ms: 0 };
    const started = performance.now();
    let requested = 0;
    let nextProgress = progressEvery;

    const stopped = () => runOptions.stopAfter !== undefined && report.disagreements >= runOptions.stopAfter;

    /** Package and reference on this thread, within one second (three tries). */
    const recheck = async (c: DecidedCase): Promise<{ outcome: Outcome; decision: Decision }> => {
      let result: { outcome: Outcome; decision: Decision } | undefined;
      for (let attemptNo = 0; attemptNo < 3; attemptNo++) {
        const before = nowS();
        const [outcome, decision] = await Promise.all([
          attempt(verifier, c.token, configs[c.config]!, c.config),
          referenceVerify(reference, reference.configs[c.config]!, c.token),
        ]);
        result = { outcome, decision };
        if (nowS() === before) break;
      }
      return result!;
    };

    const one = async (c: DecidedCase): Promise<void> => {
      const before = nowS();
      let outcome = await attempt(verifier, c.token, configs[c.config]!, c.config);
      const second = nowS() === before ? before : -1;
      let problem = compareDecided(outcome, c);
      let decision: Decision | undefined;
      if (problem !== undefined && !(c.second !== -1 && c.second === second)) {
        report.rechecks++;
        ({ outcome, decision } = await recheck(c));
        problem = compare(outcome, decision);
      }
      report.total++;
      const configName = reference.configs[c.config]!.name;
      if (problem === undefined) {
        if (outcome.accepted) report.accepted++;
        else {
          report.rejected++;
          const code = (outcome as { error: unknown }).error instanceof OidcAuthError ? ((outcome as { error: OidcAuthError }).error.code as string) : "other";
          report.codes[code] = (report.codes[code] ?? 0) + 1;
        }
        bump(report.byKind, c.kind, outcome.accepted);
        bump(report.byConfig, configName, outcome.accepted);
      } else {
        report.disagreements++;
        if (report.reports.length < maxReported) {
          decision ??= c.accepted ? { accepted: true, payload: JSON.parse(c.detail) as Record<string, unknown> } : { accepted: false, reason: c.detail };
          const text = [
            `DISAGREEMENT (${problem}) on token #${report.total}, kind ${c.kind}, config ${configName}:`,
            `  package:   ${describeOutcome(outcome)}`,
            `  reference: ${describeDecision(decision)}`,
            describeToken(c.token),
          ].join("\n");
          report.reports.push(text);
          runOptions.log?.(text);
        }
      }
      if (progressEvery > 0 && report.total >= nextProgress) {
        nextProgress += progressEvery;
        const seconds = (performance.now() - started) / 1000;
        runOptions.log?.(`  ${report.total} tokens in ${seconds.toFixed(1)} s (${Math.round(report.total / seconds)}/s), ${report.disagreements} disagreements`);
      }
    };

    const BATCH = 256;
    const take = () => {
      const n = stopped() ? 0 : Math.min(BATCH, runOptions.count - requested);
      requested += n;
      return n;
    };
    // Each source works on its next batch while this thread verifies the current one.
    const drive = async (source: CaseSource): Promise<void> => {
      let n = take();
      let pending = n > 0 ? source.batch(n) : undefined;
      while (pending !== undefined) {
        const batch = await pending;
        n = take();
        pending = n > 0 ? source.batch(n) : undefined;
        pending?.catch(() => {}); // awaited on the next turn; no unhandled-rejection warning meanwhile
        await pool(batch, concurrency, one);
      }
    };
    await Promise.all(sources.map(drive));
    report.ms = performance.now() - started;
    return report;
  };

  return {
    reference,
    server,
    configs,
    run,
    async close() {
      await Promise.all(sources.map((source) => source.close()));
      await server.close();
    },
  };
}

/** One line per kind: how many each side accepted and refused. */
export function summarize(report: RunReport): string {
  const kinds = Object.entries(report.byKind)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, t]) => `${kind} ${t.accepted}/${t.rejected}`)
    .join(", ");
  return (
    `${report.total} tokens in ${(report.ms / 1000).toFixed(1)} s (${Math.round(report.total / (report.ms / 1000))}/s): ` +
    `${report.accepted} accepted and ${report.rejected} refused by both, ${report.disagreements} disagreements, ${report.rechecks} re-checked across a second boundary; ` +
    `by config ${JSON.stringify(report.byConfig)}; refusal codes ${JSON.stringify(report.codes)}; accepted/refused by kind: ${kinds}`
  );
}
