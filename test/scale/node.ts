/**
 * One IOServer node of a test cluster, in its own process (started by
 * harness.ts with an IPC channel): the test's issuer(s), a protected `chat`
 * namespace, `OidcSessionManager` on `redisSessionStore`, the Redis adapter
 * through `attachRedisAdapter`, and the back-channel logout route
 * (`POST /oidc/backchannel-logout`, route file routes/oidc.json) with its
 * replay store in Redis — the setup the README recommends.
 *
 * The test drives it over IPC: `{ id, cmd, args }` → `{ id, ok, result | error }`.
 * It does not catch unhandled rejections: a crash is a test failure.
 */
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { BaseService, IOServer } from "ioserver";
import { Redis } from "ioredis";
import type { Server, Socket } from "socket.io";
import {
  attachRedisAdapter,
  OidcBackchannelLogoutController,
  OidcConfigManager,
  OidcSessionManager,
  OidcSocketMiddleware,
  redisReplayStore,
  redisRevocationStore,
  redisSessionStore,
  type OidcConfigInput,
} from "../../src/index.js";

export interface NodeConfig {
  name: string;
  port: number;
  redisUrl: string;
  issuer: OidcConfigInput;
  /** Session TTL in seconds. */
  ttl: number;
  /** Key prefix of the session store and the replay store, channel prefix of the adapter (isolates runs sharing a Redis). */
  prefix: string;
  /** The back-channel logout route's `audience` (client id of the logout tokens), when not the issuers' own. */
  logoutAudience?: string | string[];
  /** Register a users manager: local id `u-<sub>`, disabled when the test says so (`disable` command). */
  users?: boolean;
}

export interface NodeStats {
  name: string;
  /** Authenticated sockets connected to this node. */
  sockets: number;
  degraded: boolean;
  subStatus: string;
  pubStatus: string;
}

const config = JSON.parse(process.env["SCALE_NODE"] ?? "null") as NodeConfig | null;
if (config === null || typeof process.send !== "function") {
  console.error("test/scale/node.ts runs as a child process of the scale tests");
  process.exit(2);
}

const logs: Array<{ level: number; text: string }> = [];

// Publisher (also the session store's client): fail fast while Redis is down.
const pub = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
// Subscriber: ioredis re-subscribes by itself after a reconnect.
const sub = new Redis(config.redisUrl, { retryStrategy: () => 100 });
for (const client of [pub, sub]) client.on("error", () => undefined); // connection errors are expected in the outage test
await Promise.all([once(pub, "ready"), once(sub, "ready")]);

class ChatService extends BaseService {
  async whoami(socket: Socket, _data: unknown, callback?: (value: unknown) => void) {
    callback?.({ node: config!.name, sub: (socket as unknown as { sub: string }).sub });
  }
  async rooms(socket: Socket, _data: unknown, callback?: (value: unknown) => void) {
    callback?.([...socket.rooms]);
  }
}

const routes = fileURLToPath(new URL("./routes", import.meta.url));
const server = new IOServer({ host: "127.0.0.1", port: config.port, routes, verbose: "ERROR", mode: ["websocket"] });
const appHandle = (server as unknown as { appHandle: Record<string, unknown> }).appHandle;
appHandle["log"] = (level: number, text: string) => {
  logs.push({ level, text });
};
const store = redisSessionStore({ client: pub, ttl: config.ttl, nodeId: config.name, prefix: config.prefix });
server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(config.issuer) });
// Revocations hold on every node: the adapter's subscriber connection also carries the revocation channel.
const revocationStore = redisRevocationStore({ client: pub, subscriber: sub, prefix: config.prefix });
server.addManager({ name: "session", manager: OidcSessionManager.configure({ store, revocationStore, storeTimeout: 1_000, clusterTimeout: 3_000 }) });
server.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
const disabledSubs = new Set<string>();
if (config.users === true) {
  server.addManager({
    name: "users",
    manager: class Users {
      findOrCreate(sub: string) {
        return { id: `u-${sub}`, isDisabled: disabledSubs.has(sub) };
      }
    },
  });
}
// POST /oidc/backchannel-logout; a jti is accepted once across the cluster.
const replayStore = redisReplayStore(pub, { prefix: `${config.prefix}logout-jti:`, timeout: 2_000 });
const logout = config.logoutAudience === undefined ? { replayStore } : { replayStore, audience: config.logoutAudience };
server.addController({ name: "oidc", controller: OidcBackchannelLogoutController.configure(logout) });
const adapterReady = attachRedisAdapter(server, { pubClient: pub, subClient: sub, adapterOptions: { key: `${config.prefix}socket.io`, requestsTimeout: 3_000 } });
await server.start();
const io: Server = await adapterReady;

const session = appHandle["session"] as OidcSessionManager;

const commands: Record<string, (...args: never[]) => unknown> = {
  list: () => session.list(),
  listByUser: (user: string) => session.listByUser(user),
  disconnectUser: (user: string, reason?: string) => session.disconnectUser(user, reason),
  disconnectSessionId: (sid: string, reason?: string, iss?: string) => session.disconnectSessionId(sid, reason, iss),
  disconnectSubject: (sub: string, options?: { iss?: string; reason?: string; withoutSid?: boolean }) => session.disconnectSubject(sub, options),
  disconnectSocket: (socketId: string, reason?: string) => session.disconnectSocket(socketId, reason),
  listBySubject: (sub: string, options?: { iss?: string }) => session.listBySubject(sub, options),
  logs: () => logs,
  disable: (sub: string) => void disabledSubs.add(sub),
  /**
   * A cluster-wide `fetchSockets()` published by this node: every node answers
   * after handling what this node published before (one publisher connection,
   * one subscriber connection per node: Redis keeps the order), so once it
   * resolves, an earlier revocation broadcast from this node has been handled
   * everywhere.
   */
  barrier: async () => (await io.of("/chat").fetchSockets()).length,
  adapter: () => io.of("/chat").adapter.constructor.name,
  /** How many nodes are subscribed to the adapter's request channel (Redis PUBSUB NUMSUB). */
  serverCount: () => (io.of("/chat").adapter as unknown as { serverCount(): Promise<number> }).serverCount(),
  stats: (): NodeStats => ({
    name: config.name,
    sockets: io.of("/chat").sockets.size,
    degraded: session.degraded,
    subStatus: sub.status,
    pubStatus: pub.status,
  }),
};

process.on("message", (message: { id: number; cmd: string; args?: unknown[] }) => {
  const command = commands[message.cmd];
  Promise.resolve()
    .then(() => {
      if (command === undefined) throw new Error(`unknown command ${message.cmd}`);
      return (command as (...args: unknown[]) => unknown)(...(message.args ?? []));
    })
    .then(
      (result) => process.send!({ id: message.id, ok: true, result }),
      (error: unknown) => process.send!({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
});

// The parent going away (test ended or crashed) ends this node too.
process.on("disconnect", () => process.exit(0));

process.send({ type: "ready", name: config.name, port: config.port });
