/**
 * Test-cluster plumbing: IOServer nodes in child processes (node.ts), real
 * socket.io-client connections, bounded waits.
 */
import { fork, type ChildProcess } from "node:child_process";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { io, type Socket as ClientSocket } from "socket.io-client";
import type { OidcSessionRecord } from "../../src/index.js";
import { freePort, next } from "../helpers/app.js";

export { next };
import type { NodeConfig, NodeStats } from "./node.js";

const nodeScript = fileURLToPath(new URL("./node.ts", import.meta.url));

export interface ScaleNode {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** Whether the process has exited, and how. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  call<T = unknown>(cmd: string, ...args: unknown[]): Promise<T>;
  list(): Promise<OidcSessionRecord[]>;
  stats(): Promise<NodeStats>;
  logs(): Promise<Array<{ level: number; text: string }>>;
  /** Open a real client on this node's `chat` namespace. */
  connect(token: string): ClientSocket;
  /** Kill the process (default SIGTERM) and wait for it to exit (bounded). */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Every node started by this test file and not exited yet. */
const liveNodes = new Set<ScaleNode>();

// Whatever a test file's own hooks do (a before hook that failed half-way never
// records the nodes it did start), no node outlives the file: a live child
// would keep the test process, and the whole run, waiting.
after(async () => {
  await Promise.all([...liveNodes].map((node) => node.kill()));
});

/**
 * Start an IOServer node in a child process. A node given no port gets a free
 * one, and another if that one was taken before the node could bind it.
 */
export async function startNode(options: Omit<NodeConfig, "port"> & { port?: number }, timeoutMs = 30_000): Promise<ScaleNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodeOnce(options, timeoutMs);
    } catch (error) {
      const retry = options.port === undefined && attempt < 3 && /exited during start-up/.test((error as Error).message);
      if (!retry) throw error;
    }
  }
}

async function startNodeOnce(options: Omit<NodeConfig, "port"> & { port?: number }, timeoutMs: number): Promise<ScaleNode> {
  const port = options.port ?? (await freePort());
  const config: NodeConfig = { ...options, port };
  const child = fork(nodeScript, [], {
    execArgv: ["--import", "tsx", "--disable-warning=FSTDEP022"],
    env: { ...process.env, SCALE_NODE: JSON.stringify(config) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let nextId = 1;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; timer: ReturnType<typeof setTimeout> }>();
  const clients = new Set<ClientSocket>();

  const node: ScaleNode = {
    name: options.name,
    url: `http://127.0.0.1:${port}`,
    child,
    exit: undefined,
    call<T>(cmd: string, ...args: unknown[]): Promise<T> {
      if (node.exit !== undefined) return Promise.reject(new Error(`node ${options.name} has exited (${JSON.stringify(node.exit)})`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`node ${options.name}: no answer to ${cmd} within 15 s`));
        }, 15_000);
        pending.set(id, { resolve, reject, timer });
        child.send({ id, cmd, args });
      });
    },
    list: () => node.call<OidcSessionRecord[]>("list"),
    stats: () => node.call<NodeStats>("stats"),
    logs: () => node.call<Array<{ level: number; text: string }>>("logs"),
    connect(token: string) {
      const client = io(`${node.url}/chat`, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: 5_000, auth: { token } });
      clients.add(client);
      return client;
    },
    async kill(signal: NodeJS.Signals = "SIGTERM") {
      // The process first, the clients after: a client disconnecting first
      // would let the node unregister its sessions, which a crash does not.
      if (node.exit === undefined) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      for (const client of clients) client.disconnect();
      clients.clear();
    },
  };

  child.on("message", (message: { id?: number; ok?: boolean; result?: unknown; error?: string }) => {
    if (typeof message.id !== "number") return;
    const entry = pending.get(message.id);
    if (entry === undefined) return;
    pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.ok) entry.resolve(message.result);
    else entry.reject(new Error(message.error));
  });
  liveNodes.add(node);
  child.on("exit", (code, signal) => {
    node.exit = { code, signal };
    liveNodes.delete(node);
    for (const [id, entry] of pending) {
      clearTimeout(entry.timer);
      entry.reject(new Error(`node ${options.name} exited (${code ?? signal})`));
      pending.delete(id);
    }
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill("SIGKILL");
      reject(new Error(`node ${options.name} not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: { type?: string }) => {
      if (message?.type !== "ready") return;
      cleanup();
      resolve();
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`node ${options.name} exited during start-up (${code})`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
  return node;
}

/** Resolves once the client saw `oidc:revoked` and then its disconnect, with both payloads. */
export function revokedThenGone(client: ClientSocket, timeoutMs = 10_000): Promise<{ revoked: unknown; reason: string; order: string[] }> {
  const order: string[] = [];
  client.on("oidc:revoked", () => order.push("oidc:revoked"));
  client.on("disconnect", () => order.push("disconnect"));
  return Promise.all([next(client, "oidc:revoked", timeoutMs), next<string>(client, "disconnect", timeoutMs)]).then(([revoked, reason]) => ({
    revoked,
    reason,
    order,
  }));
}
