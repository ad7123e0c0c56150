/**
 * A real redis-server for tests, on 127.0.0.1 and a free port, with no
 * persistence. `.ci/run` installs Debian's redis-server; locally the binary
 * must be on PATH (`apt-get install redis-server`). In CI a missing binary
 * fails the test instead of skipping it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { connect } from "node:net";
import { Redis } from "ioredis";
import { freePort } from "./app.js";
import { waitFor } from "./wait.js";

export interface RedisServer {
  port: number;
  url: string;
  /** Stop the server (SIGTERM, then SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
  /** Start it again on the same port (after `stop()`). */
  restart(): Promise<void>;
}

/** A random key prefix, so runs sharing one Redis (REDIS_URL) do not see each other. */
export function runPrefix(): string {
  return `ioserver-oidc-test-${randomBytes(4).toString("hex")}:`;
}

/** Whether redis-server can be started here; in CI its absence is an error, not a skip. */
export function redisAvailable(): boolean {
  const found = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
  if (!found && process.env["CI"]) throw new Error("redis-server is not installed (.ci/run installs Debian's redis-server)");
  return found;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.end("PING\r\n");
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Start a private redis-server. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    child = proc;
    const failed = once(proc, "exit").then(([code]) => {
      throw new Error(`redis-server exited early with ${String(code)}`);
    });
    failed.catch(() => undefined);
    await Promise.race([waitForPort(port, 10_000), failed]);
  };
  await launch();
  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    async restart() {
      await stop();
      await launch();
    },
  };
}

/**
 * An ioredis client as the docs recommend for the stores: commands fail at
 * once while Redis is down (no offline queue, one retry), reconnects every
 * 100 ms, errors swallowed (the tests look at the outcomes). Resolves once ready.
 */
export async function fastFailingClient(redis: RedisServer): Promise<Redis> {
  const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on("error", () => undefined);
  await once(client, "ready");
  return client;
}

/** Stop `redis` and wait (bounded) until `client` has noticed. */
export async function stopRedis(redis: RedisServer, client: Redis): Promise<void> {
  await redis.stop();
  await waitFor("client noticed", () => client.status !== "ready", 5_000, 20);
}

/** Start `redis` again, empty (no persistence), and wait (bounded) until `client` is ready again. */
export async function restartRedis(redis: RedisServer, client: Redis): Promise<void> {
  await redis.restart();
  await waitFor("client reconnected", () => client.status === "ready", 10_000, 20);
}
