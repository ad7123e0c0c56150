/**
 * P7–P10: the key set under a misbehaving identity provider. In-process,
 * through the public `verifyOidcToken`, against a real JWKS HTTP server on
 * 127.0.0.1 that counts its requests. Each check has its own JWKS server
 * (so its own URI, hence a cold key set), its own issuer and its own
 * never-seen tokens (so no verified-token cache can hide a fetch).
 *
 *   P7   500 concurrent first calls on a cold config → 1 JWKS fetch
 *   P8   JWKS answers 503 for 10 s under 50 req/s → fetches ≤ back-off steps
 *        (1 s doubling, capped at 60 s, +1 for the first), not per request
 *   P9   JWKS hangs (jwksTimeout 1000): the first request waits the timeout,
 *        the next ones (inside the retry window) fail fast, < 50 ms, with
 *        ERR_AUTH_UNAVAILABLE
 *   P10  keys cached while healthy (jwksCacheMaxAge 1000, jwksStaleIfError
 *        2000), then the JWKS answers 500: tokens signed by the cached key
 *        still verify past max-age, and are refused once the stale bound has
 *        passed
 *
 * These are functional checks: a wrong answer makes `npm run bench` exit 1.
 */
import { verifyOidcToken, type OidcConfigInput } from "ioserver-oidc";
import { BENCH_AUDIENCE, BENCH_ISSUER, bounded, log, median, percentile, round, sleep, type BenchParams, type Row } from "./lib/common.js";
import { claims, makeKey, signMany, type BenchKey } from "./lib/jwt.js";
import { startJwksServer, type JwksServer } from "./lib/jwksServer.js";

interface Outcome {
  ok: boolean;
  code: string;
  ms: number;
}

async function attempt(token: string, config: OidcConfigInput): Promise<Outcome> {
  const t0 = performance.now();
  try {
    await verifyOidcToken(token, config);
    return { ok: true, code: "OK", ms: performance.now() - t0 };
  } catch (error) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a label for the benchmark table: an error code or message, whatever the library threw
    return { ok: false, code: String((error as { code?: unknown }).code ?? (error as Error).message), ms: performance.now() - t0 };
  }
}

function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { code } of outcomes) counts[code] = (counts[code] ?? 0) + 1;
  return counts;
}

/** Fetches an exponential back-off (1 s doubling, capped at 60 s) allows in `windowMs`, the first one included. */
export function backoffBudget(windowMs: number, start = 1_000, cap = 60_000): number {
  let fetches = 1;
  let at = 0;
  for (let failures = 1; ; failures++) {
    at += Math.min(start * 2 ** (failures - 1), cap);
    if (at > windowMs) return fetches;
    fetches++;
  }
}

/** A JWKS server and a config of its own (distinct issuer, cold key set), closed afterwards. */
async function withProvider<T>(name: string, key: BenchKey, extra: Record<string, unknown>, body: (jwks: JwksServer, config: OidcConfigInput, issuer: string) => Promise<T>): Promise<T> {
  const jwks = await startJwksServer([key.jwk]);
  const issuer = `${BENCH_ISSUER}/${name}`;
  // Options the package may not know yet (jwksStaleIfError) are passed as they are.
  const config = { issuer, audience: BENCH_AUDIENCE, jwksUri: jwks.jwksUri, ...extra } as OidcConfigInput;
  try {
    return await body(jwks, config, issuer);
  } finally {
    await jwks.close();
  }
}

const tokensFor = (key: BenchKey, issuer: string, tag: string, count: number) =>
  signMany(key, count, (i) => claims(issuer, BENCH_AUDIENCE, `${tag}-${i}`, 3_600));

async function p7(key: BenchKey): Promise<Row> {
  const N = 500;
  return withProvider("p7", key, {}, async (jwks, config, issuer) => {
    const tokens = await tokensFor(key, issuer, "p7", N);
    const outcomes = await bounded(Promise.all(tokens.map((token) => attempt(token, config))), 30_000, "P7's 500 verifications");
    const ok = outcomes.filter((o) => o.ok).length;
    const pass = jwks.hits === 1 && ok === N;
    return {
      id: "P7",
      measure: `JWKS fetches for ${N} concurrent cold requests`,
      value: String(jwks.hits),
      target: "1",
      status: pass ? "PASS" : "FAIL",
      detail: `${ok}/${N} verified${ok === N ? "" : ` ${JSON.stringify(tally(outcomes))}`}; p50 ${round(percentile(outcomes.map((o) => o.ms), 50), 1)} ms`,
      data: { fetches: jwks.hits, verified: ok, outcomes: tally(outcomes) },
    };
  });
}

async function p8(key: BenchKey, params: BenchParams): Promise<Row> {
  const windowMs = params.outageSeconds * 1000;
  const rps = params.outageRps;
  const count = Math.round((windowMs / 1000) * rps);
  const budget = backoffBudget(windowMs);
  return withProvider("p8", key, {}, async (jwks, config, issuer) => {
    const tokens = await tokensFor(key, issuer, "p8", count);
    jwks.mode = "503";
    const pending: Promise<Outcome>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const due = t0 + (i * 1000) / rps;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(attempt(tokens[i]!, config));
    }
    const remaining = windowMs - (performance.now() - t0);
    if (remaining > 0) await sleep(remaining);
    const fetchesInWindow = jwks.hitTimes.filter((at) => at - t0 <= windowMs + 50).length;
    const outcomes = await bounded(Promise.all(pending), 30_000, "P8's requests");
    const codes = tally(outcomes);
    const allUnavailable = codes["ERR_AUTH_UNAVAILABLE"] === count;
    const pass = fetchesInWindow <= budget && allUnavailable;
    const at = jwks.hitTimes.slice(0, 12).map((t) => round((t - t0) / 1000, 2));
    return {
      id: "P8",
      measure: `JWKS fetches while it answers 503 for ${params.outageSeconds} s under ${rps} req/s`,
      value: `${fetchesInWindow} fetches / ${count} requests`,
      target: `≤ ${budget} (back-off 1 s ×2, cap 60 s)`,
      status: pass ? "PASS" : "FAIL",
      detail:
        `fetches at ${at.join(", ")}${jwks.hitTimes.length > 12 ? ", …" : ""} s; outcomes ${JSON.stringify(codes)}; ` +
        `latency p50 ${round(percentile(outcomes.map((o) => o.ms), 50), 1)} / max ${round(Math.max(...outcomes.map((o) => o.ms)), 1)} ms`,
      data: { fetches: fetchesInWindow, requests: count, budget, fetchTimes: jwks.hitTimes.map((t) => (t - t0) / 1000), outcomes: codes },
    };
  });
}

async function p9(key: BenchKey): Promise<Row> {
  const TIMEOUT = 1_000;
  const FOLLOWERS = 20;
  const SPACING = 20;
  return withProvider("p9", key, { jwksTimeout: TIMEOUT }, async (jwks, config, issuer) => {
    const tokens = await tokensFor(key, issuer, "p9", FOLLOWERS + 1);
    jwks.mode = "hang";
    const first = await bounded(attempt(tokens[0]!, config), TIMEOUT + 10_000, "P9's first request");
    // The next ones, inside the 1 s retry window that follows the failed fetch: started every 20 ms, not awaited one by one.
    const pending: Promise<Outcome>[] = [];
    for (let i = 1; i <= FOLLOWERS; i++) {
      pending.push(attempt(tokens[i]!, config));
      await sleep(SPACING);
    }
    const followers = await bounded(Promise.all(pending), TIMEOUT * 3 + 10_000, "P9's follow-up requests");
    const latencies = followers.map((o) => o.ms);
    const p50 = median(latencies);
    const max = Math.max(...latencies);
    const codes = tally(followers);
    const pass = first.code === "ERR_AUTH_UNAVAILABLE" && codes["ERR_AUTH_UNAVAILABLE"] === FOLLOWERS && max < 50;
    return {
      id: "P9",
      measure: `JWKS hangs (jwksTimeout ${TIMEOUT} ms): requests after the first timed-out fetch fail fast`,
      value: `p50 ${round(p50, 1)} ms, max ${round(max, 1)} ms`,
      target: "ERR_AUTH_UNAVAILABLE, each < 50 ms",
      status: pass ? "PASS" : "FAIL",
      detail: `first request ${first.code} after ${round(first.ms)} ms; next ${FOLLOWERS} (one every ${SPACING} ms) ${JSON.stringify(codes)}; JWKS requests ${jwks.hits}`,
      data: { first, p50, max, codes, latencies, fetches: jwks.hits },
    };
  });
}

async function p10(key: BenchKey): Promise<Row> {
  const MAX_AGE = 1_000;
  const STALE = 2_000;
  const options = { jwksCacheMaxAge: MAX_AGE, jwksStaleIfError: STALE, jwksTimeout: 1_000 };
  return withProvider("p10", key, options, async (jwks, config, issuer) => {
    const tokens = await tokensFor(key, issuer, "p10", 4);
    const t0 = performance.now();
    const healthy = await attempt(tokens[0]!, config);
    jwks.mode = "500";
    const at = async (ms: number, token: string) => {
      const wait = t0 + ms - performance.now();
      if (wait > 0) await sleep(wait);
      return { ...(await bounded(attempt(token, config), 10_000, `P10's request at +${ms} ms`)), at: ms };
    };
    const staleEarly = await at(MAX_AGE + 500, tokens[1]!); // past max-age, inside the stale bound
    const staleLate = await at(MAX_AGE + STALE - 500, tokens[2]!); // still inside
    const refused = await at(MAX_AGE + STALE + 1_500, tokens[3]!); // past the bound
    const kept = healthy.ok && staleEarly.ok && staleLate.ok;
    const bounded_ = refused.code === "ERR_AUTH_UNAVAILABLE";
    const show = (o: Outcome & { at: number }) => `+${round(o.at / 1000, 1)} s ${o.ok ? "verified" : o.code}`;
    return {
      id: "P10",
      measure: `IdP down after keys were cached: stale-if-error (jwksCacheMaxAge ${MAX_AGE} ms, jwksStaleIfError ${STALE} ms)`,
      value: `${kept ? "kept" : "NOT kept"} past max-age; ${bounded_ ? "refused" : "NOT refused"} past the bound`,
      target: "kept, then refused (ERR_AUTH_UNAVAILABLE)",
      status: kept && bounded_ ? "PASS" : "FAIL",
      detail: `healthy ${healthy.ok ? "verified" : healthy.code}; JWKS 500 from +0 s: ${show(staleEarly)}, ${show(staleLate)}, ${show(refused)}; JWKS requests ${jwks.hits}`,
      data: { healthy, staleEarly, staleLate, refused, fetches: jwks.hits },
    };
  });
}

export async function runResilience(params: BenchParams, only: ReadonlySet<string>): Promise<Row[]> {
  const checks: Array<[string, (key: BenchKey) => Promise<Row>]> = [
    ["P7", p7],
    ["P8", (key) => p8(key, params)],
    ["P9", p9],
    ["P10", p10],
  ];
  const wanted = checks.filter(([id]) => only.has(id));
  if (wanted.length === 0) return [];
  const key = makeKey("RS256");
  const rows: Row[] = [];
  for (const [id, check] of wanted) {
    log(`${id}: running`);
    try {
      rows.push(await check(key));
    } catch (error) {
      rows.push({ id, measure: id, value: "n/a", target: "", status: "ERROR", detail: (error instanceof Error ? error.message : String(error)).split("\n")[0]! });
    }
    log(`${id}: ${rows[rows.length - 1]!.status} ${rows[rows.length - 1]!.value}`);
  }
  return rows;
}
