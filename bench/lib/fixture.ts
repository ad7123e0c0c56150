/**
 * What P3–P6 share within one run: an RS256 key, a JWKS server on 127.0.0.1
 * serving it, the server config, a pool of distinct valid tokens (exp in one
 * hour: expiry timers are armed but never fire during the run), and the
 * load-generator child process. Created on first use, closed at the end.
 */
import type { OidcConfigInput } from "ioserver-oidc";
import { Child } from "./child.js";
import { BENCH_AUDIENCE, BENCH_ISSUER, freePort, log, type BenchParams } from "./common.js";
import { claims, makeKey, signMany, signToken, type BenchKey } from "./jwt.js";
import { startJwksServer, type JwksServer } from "./jwksServer.js";
import { pin } from "./pin.js";

export interface Fixture {
  key: BenchKey;
  jwks: JwksServer;
  /** Plain JSON, sent to the server child. */
  config: OidcConfigInput;
  /** `poolSize` distinct tokens (distinct `sub` and `jti`). */
  pool: string[];
  /** Tokens for warm-ups, never in `pool`. */
  warm: string[];
  /** P3's "same token". */
  single: string;
  load: Child;
  /** A fresh server child (the IOServer app) on a free port. */
  startServer(name: string): Promise<{ server: Child; port: number; url: string }>;
  close(): Promise<void>;
}

let current: Promise<Fixture> | undefined;

async function create(params: BenchParams): Promise<Fixture> {
  const key = makeKey("RS256");
  const jwks = await startJwksServer([key.jwk]);
  // BENCH_SERVER_CONFIG: extra options for the server children as JSON, for diagnosis only (e.g. '{"tokenCache":false}').
  const extra = JSON.parse(process.env.BENCH_SERVER_CONFIG ?? "{}") as Record<string, unknown>;
  const config = { issuer: BENCH_ISSUER, audience: BENCH_AUDIENCE, jwksUri: jwks.jwksUri, ...extra } as OidcConfigInput;
  if (Object.keys(extra).length > 0) log(`BENCH_SERVER_CONFIG: the server children get ${JSON.stringify(extra)} on top of the defaults`);
  log(`signing a pool of ${params.poolSize} distinct RS256 tokens (+100 for warm-ups)`);
  const all = await signMany(key, params.poolSize + 100, (i) => claims(BENCH_ISSUER, BENCH_AUDIENCE, `user-${i}`, 3_600, { email: `user-${i}@bench.invalid` }));
  const pool = all.slice(0, params.poolSize);
  const warm = all.slice(params.poolSize);
  const single = await signToken(key, claims(BENCH_ISSUER, BENCH_AUDIENCE, "user-single", 3_600));
  const load = await Child.start("load generator", "clients/load.ts");
  pin(load.pid, "load");
  await load.ask("setTokens", { tokens: pool });
  return {
    key,
    jwks,
    config,
    pool,
    warm,
    single,
    load,
    async startServer(name) {
      const port = await freePort();
      const server = await Child.start(`server (${name})`, "servers/app.ts", { nodeArgs: ["--expose-gc", "--no-warnings"], start: { port, config } });
      pin(server.pid, "server");
      return { server, port, url: `http://127.0.0.1:${port}` };
    },
    async close() {
      await load.stop().catch(() => undefined);
      await jwks.close();
    },
  };
}

export function fixture(params: BenchParams): Promise<Fixture> {
  current ??= create(params);
  return current;
}

export async function closeFixture(): Promise<void> {
  if (current === undefined) return;
  const pending = current;
  current = undefined;
  await (await pending.catch(() => undefined))?.close();
}
