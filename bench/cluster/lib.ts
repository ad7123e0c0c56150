/**
 * Shared pieces of `npm run bench:cluster`: the signing key the bench's
 * clients mint tokens with (node:crypto directly, so minting is independent
 * of the code under test and can run in any process), the JWKS endpoint that
 * publishes it, a redis-server the run owns, statistics and clocks.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

/** Wall-clock epoch ms with sub-ms resolution: comparable between the processes of one machine. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const round = (value: number, digits = 1): number => (Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : NaN);

// ---------------------------------------------------------------------------
// Tokens.

export type ClusterAlg = "RS256" | "ES256";

/** What a client process needs to mint tokens: the private key as PEM, its kid and algorithm, the claims' iss and aud. */
export interface SigningSpec {
  pem: string;
  kid: string;
  alg: ClusterAlg;
  issuer: string;
  audience: string;
}

export interface SigningKey {
  spec: Omit<SigningSpec, "issuer" | "audience">;
  /** The public JWK as published. */
  jwk: Record<string, unknown>;
}

export function makeSigningKey(alg: ClusterAlg): SigningKey {
  const pair = alg === "RS256" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = `cluster-${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  const jwk = { ...(pair.publicKey.export({ format: "jwk" }) as Record<string, unknown>), kid, alg, use: "sig" };
  return { spec: { pem: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(), kid, alg }, jwk };
}

const b64 = (value: string | Buffer): string => Buffer.from(value).toString("base64url");

/** Signs compact JWS tokens with one key; the signature runs on libuv's thread pool. */
export class Minter {
  private readonly key: KeyObject;
  constructor(readonly spec: SigningSpec) {
    this.key = createPrivateKey(spec.pem);
  }

  /** A token with `iss`, `aud`, `iat`, `exp` (now + ttl), a fresh `jti`, and `claims` merged over them. */
  async mint(claims: Record<string, unknown>, ttlSeconds: number, typ = "JWT"): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: this.spec.issuer, aud: this.spec.audience, iat: now, exp: now + ttlSeconds, jti: randomUUID(), ...claims };
    const input = `${b64(JSON.stringify({ alg: this.spec.alg, kid: this.spec.kid, typ }))}.${b64(JSON.stringify(payload))}`;
    const options = this.spec.alg === "ES256" ? { key: this.key, dsaEncoding: "ieee-p1363" as const } : this.key;
    const signature = await new Promise<Buffer>((resolve, reject) =>
      sign("sha256", Buffer.from(input), options, (error, value) => (error ? reject(error) : resolve(value))),
    );
    return `${input}.${b64(signature)}`;
  }
}

/** A JWKS endpoint on 127.0.0.1 publishing `keys` at /jwks, counting its requests. */
export interface JwksEndpoint {
  readonly url: string;
  readonly jwksUri: string;
  readonly hits: number;
  close(): Promise<void>;
}

export async function serveJwks(keys: ReadonlyArray<Record<string, unknown>>): Promise<JwksEndpoint> {
  const body = JSON.stringify({ keys });
  let hits = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    if ((req.url ?? "").split("?")[0] !== "/jwks") {
      res.writeHead(404).end();
      return;
    }
    hits++;
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksUri: `${url}/jwks`,
    get hits() {
      return hits;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------
// redis-server, owned by the run (no persistence: a restart comes back empty).

const redisProcesses = new Set<ChildProcess>();
/** Kill every redis-server this process started (SIGKILL): on exit, on signals, after a failure. */
export function killRedisServers(): void {
  for (const proc of redisProcesses) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  redisProcesses.clear();
}
process.on("exit", killRedisServers);

async function redisAnswers(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const timer = setTimeout(() => finish(false), 1_000);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => finish(data.toString().startsWith("+PONG")));
    socket.once("error", () => finish(false));
  });
}

export class RedisServer {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Start redis-server and resolve once it answers PING (bounded). */
  async start(timeoutMs = 10_000): Promise<void> {
    const proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    redisProcesses.add(proc);
    proc.once("exit", () => redisProcesses.delete(proc));
    this.proc = proc;
    const deadline = Date.now() + timeoutMs;
    while (!(await redisAnswers(this.port))) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`redis-server exited during start-up (${proc.exitCode ?? proc.signalCode})`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${this.port} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** Kill it (default SIGKILL: a crash, nothing flushed) and wait for the exit (bounded). */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(timer);
  }
}
