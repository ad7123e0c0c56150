/**
 * A real IOServer on 127.0.0.1 with one protected controller and two
 * protected namespaces, plus real socket.io-client connections.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BaseController, BaseService, IOServer } from "ioserver";
import type { AppHandle } from "ioserver";
import { io, type Socket as ClientSocket, type ManagerOptions, type SocketOptions } from "socket.io-client";
import {
  OidcConfigManager,
  OidcHttpAdminMiddleware,
  OidcHttpMiddleware,
  OidcSocketAdminMiddleware,
  OidcSocketMiddleware,
} from "../../src/index.js";
import type { OidcConfigInput, OidcSessionManager } from "../../src/index.js";
import { SessionAwareAdapter } from "socket.io-adapter";

export interface LogLine {
  level: number;
  text: string;
}

export interface AppOptions {
  /** Explicit config through `OidcConfigManager.configure`; `"env"` registers the plain manager; `undefined` registers none. */
  config?: OidcConfigInput | "env";
  /** Extra managers, e.g. `users`, `session`. */
  managers?: Record<string, new (appHandle: AppHandle) => unknown>;
  /** Turn on Socket.IO connection-state recovery on the IOServer's Socket.IO server (`"run-middlewares"`: with `skipMiddlewares: false`). */
  recovery?: boolean | "run-middlewares";
  /** A Socket.IO adapter class for every namespace (set through Socket.IO's public `io.adapter()` before any client connects). */
  adapter?: unknown;
}

export interface TestApp {
  url: string;
  port: number;
  logs: LogLine[];
  appHandle: Record<string, unknown>;
  /** What the handlers saw, in order. */
  seen: Array<Record<string, unknown>>;
  connect(namespace: string, options?: Partial<ManagerOptions & SocketOptions>): ClientSocket;
  close(): Promise<void>;
}

/** Bind `port` (0: any) on 127.0.0.1 and release it: the port bound, or undefined when it is taken. */
function probePort(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : undefined));
    });
  });
}

/**
 * A port free on 127.0.0.1 for a server a test starts a moment later (often
 * in another process). Taken below the kernel's ephemeral range (32768 and
 * up on Linux), where outgoing connections get their local ports: a port the
 * kernel handed out as free can be given to a client socket before the
 * server binds it, and with thousands of test connections that happens.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await probePort(20_000 + Math.floor(Math.random() * 12_000));
    if (port !== undefined) return port;
  }
  const port = await probePort(0);
  if (port === undefined) throw new Error("no free port on 127.0.0.1");
  return port;
}

/**
 * A folder of IOServer route files (`<controller>.json` → its routes), one per
 * test process, removed when the process ends.
 */
export function routesFolder(prefix: string, files: Record<string, unknown[]>): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  for (const [name, routes] of Object.entries(files)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(routes));
  return dir;
}

const routesDir = routesFolder("ioserver-oidc-routes-", {
  api: [
    { method: "GET", url: "/me", handler: "me" },
    { method: "POST", url: "/echo", handler: "echo" },
  ],
  admin: [
    { method: "GET", url: "/stats", handler: "stats" },
    { method: "GET", url: "/sessions", handler: "sessions" },
    { method: "POST", url: "/disconnect", handler: "disconnect" },
  ],
});

export interface ServerBase {
  server: IOServer;
  port: number;
  url: string;
  /** What the package logged (the IOServer logger is replaced, so nothing is printed). */
  logs: LogLine[];
  appHandle: Record<string, unknown>;
  /** A websocket-only client on `namespace` (no reconnection unless asked), disconnected by `close()`. */
  connect(namespace: string, options?: Partial<ManagerOptions & SocketOptions>): ClientSocket;
  /** Disconnect the clients, close Socket.IO, stop the IOServer. */
  close(): Promise<void>;
}

/**
 * An IOServer on 127.0.0.1 (a free port unless given) serving `routes`, with
 * the package's log captured; the caller registers its managers, controllers
 * and services, then calls `server.start()`.
 */
export async function createServerBase(routes: string, port?: number): Promise<ServerBase> {
  const listenPort = port ?? (await freePort());
  const logs: LogLine[] = [];
  const server = new IOServer({ host: "127.0.0.1", port: listenPort, routes, verbose: "ERROR", mode: ["websocket"] });
  const appHandle = (server as unknown as { appHandle: Record<string, unknown> }).appHandle;
  appHandle.log = (level: number, text: string) => {
    logs.push({ level, text });
  };
  const url = `http://127.0.0.1:${listenPort}`;
  const clients = new Set<ClientSocket>();
  return {
    server,
    port: listenPort,
    url,
    logs,
    appHandle,
    connect(namespace, options = {}) {
      const client = io(`${url}/${namespace}`, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: 5_000, ...options });
      clients.add(client);
      return client;
    },
    close: () => stopServer(server, clients),
  };
}

export async function startApp(options: AppOptions = {}): Promise<TestApp> {
  const base = await createServerBase(routesDir);
  const { server } = base;
  const seen: Array<Record<string, unknown>> = [];
  const snapshot = (target: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    sub: target.sub,
    userId: target.userId,
    userRole: target.userRole,
    roles: target.roles,
    permissions: target.permissions,
    features: target.features,
    auth: target.auth,
    ...extra,
  });

  class ApiController extends BaseController {
    async me(request: Record<string, unknown>, reply: { send(body: unknown): unknown }) {
      const view = snapshot(request);
      seen.push({ transport: "http", ...view });
      return reply.send(view);
    }
    async echo(request: Record<string, unknown>, reply: { send(body: unknown): unknown }) {
      return reply.send({ body: request.body, userId: request.userId });
    }
  }
  class AdminController extends BaseController {
    async stats(request: Record<string, unknown>, reply: { send(body: unknown): unknown }) {
      return reply.send({ ok: true, userId: request.userId });
    }
    async sessions(_request: unknown, reply: { send(body: unknown): unknown }) {
      const session = this.appHandle.session as OidcSessionManager;
      return reply.send({ all: await session.list() });
    }
    async disconnect(request: { body: { user: string; reason?: string } }, reply: { send(body: unknown): unknown }) {
      const session = this.appHandle.session as OidcSessionManager;
      return reply.send({ count: await session.disconnectUser(request.body.user, request.body.reason) });
    }
  }
  class ChatService extends BaseService {
    async whoami(socket: Record<string, unknown> & { data: Record<string, unknown> }, _data: unknown, callback?: (value: unknown) => void) {
      const view = snapshot(socket, { dataAuth: socket.data.auth });
      seen.push({ transport: "socket", ...view });
      callback?.(view);
    }
    async join(socket: { join(room: string): void; rooms: Set<string>; emit(e: string, d: unknown): void }, data: { room: string }, callback?: (value: unknown) => void) {
      socket.join(data.room);
      socket.emit("chat:joined", { room: data.room }); // an event (not an ack) gives a recovery offset
      callback?.([...socket.rooms]);
    }
    async rooms(socket: { rooms: Set<string>; recovered?: boolean }, _data: unknown, callback?: (value: unknown) => void) {
      callback?.({ rooms: [...socket.rooms], recovered: socket.recovered === true });
    }
    async leave(socket: { leave(room: string): unknown; rooms: Set<string> }, data: { room: string }, callback?: (value: unknown) => void) {
      await socket.leave(data.room);
      callback?.([...socket.rooms]);
    }
    /** How many listeners the socket has for these events (the package's per-socket cost). */
    async listeners(socket: { listenerCount(event: string): number }, data: { events: string[] }, callback?: (value: unknown) => void) {
      callback?.(Object.fromEntries(data.events.map((event) => [event, socket.listenerCount(event)])));
    }
    /** The app replaces `socket.data` with its own object (a common Socket.IO idiom). */
    async replaceData(socket: { data: unknown }, data: { room: string }, callback?: (value: unknown) => void) {
      socket.data = { room: data.room };
      callback?.(socket.data);
    }
    /** The app sets a decoration itself. */
    async rename(socket: Record<string, unknown>, data: { userId: string }, callback?: (value: unknown) => void) {
      socket.userId = data.userId;
      callback?.(socket.userId);
    }
  }
  class AdminService extends BaseService {
    async whoami(socket: Record<string, unknown>, _data: unknown, callback?: (value: unknown) => void) {
      callback?.(snapshot(socket));
    }
    async ping(_socket: unknown, _data: unknown, callback?: (value: unknown) => void) {
      callback?.("pong");
    }
  }

  for (const [name, manager] of Object.entries(options.managers ?? {})) server.addManager({ name, manager });
  if (options.config === "env") server.addManager({ name: "oidcConfig", manager: OidcConfigManager });
  else if (options.config !== undefined) server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(options.config) });

  server.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
  server.addController({ name: "admin", controller: AdminController, middlewares: [OidcHttpMiddleware, OidcHttpAdminMiddleware] });
  server.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
  server.addService({ name: "admin", service: AdminService, middlewares: [OidcSocketMiddleware, OidcSocketAdminMiddleware] });
  // A namespace whose sockets may outlive their token.
  server.addService({ name: "lenient", service: ChatService, middlewares: [OidcSocketMiddleware.configure({ expiry: false })] });
  await server.start();
  if (options.recovery !== undefined && options.recovery !== false) {
    // IOServer 2.0.6 creates its Socket.IO server itself, without this option:
    // switch it on through Socket.IO's public API before any client connects.
    const socketio = (server.getApp() as unknown as { io: { opts: Record<string, unknown>; adapter(a: unknown): unknown } }).io;
    socketio.opts.connectionStateRecovery = { maxDisconnectionDuration: 60_000, skipMiddlewares: options.recovery !== "run-middlewares" };
    socketio.adapter(SessionAwareAdapter);
  }
  if (options.adapter !== undefined) {
    (server.getApp() as unknown as { io: { adapter(a: unknown): unknown } }).io.adapter(options.adapter);
  }

  const { url, port, logs, appHandle, connect, close } = base;
  return { url, port, logs, appHandle, seen, connect, close };
}

/** Disconnect the clients, close the IOServer's Socket.IO server, then stop the IOServer. */
export async function stopServer(server: IOServer | undefined, clients: Set<ClientSocket> = new Set()): Promise<void> {
  for (const client of clients) client.disconnect();
  clients.clear();
  const socketio = (server?.getApp() as unknown as { io?: { close(): Promise<void> | void } } | undefined)?.io;
  await socketio?.close();
  await server?.stop().catch(() => undefined);
}

export type ConnectOutcome =
  | { connected: true; socket: ClientSocket }
  | { connected: false; message: string; data: unknown };

/** Wait (bounded) for `connect` or `connect_error`. */
export function outcome(socket: ClientSocket, timeoutMs = 8_000): Promise<ConnectOutcome> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no connect/connect_error within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      resolve({ connected: true, socket });
    };
    const onError = (err: Error & { data?: unknown }) => {
      cleanup();
      resolve({ connected: false, message: err.message, data: err.data });
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Emit with an ack, bounded. */
export function call<T = unknown>(socket: ClientSocket, event: string, data: unknown = {}, timeoutMs = 5_000): Promise<T> {
  return socket.timeout(timeoutMs).emitWithAck(event, data) as Promise<T>;
}

/** Resolve with the first payload of `event`, bounded. */
export function next<T = unknown>(socket: ClientSocket, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    };
    socket.once(event, on);
  });
}

/** The socket once connected (bounded); a `connect_error` rejects with "refused: <its message>". */
export async function connected(socket: ClientSocket, timeoutMs = 10_000): Promise<ClientSocket> {
  if (socket.connected) return socket;
  const result = await outcome(socket, timeoutMs);
  if (!result.connected) throw new Error(`refused: ${result.message}`);
  return result.socket;
}

/** A client on the app's `namespace` presenting `token` in `auth`, once connected (see `connected`). */
export function connectedTo(app: TestApp, namespace: string, token: string, options: Partial<ManagerOptions & SocketOptions> = {}): Promise<ClientSocket> {
  return connected(app.connect(namespace, { auth: { token }, ...options }));
}

export interface HandshakeProbe {
  /** "ok", or the `connect_error` message (the error code). */
  code: string;
  /** The `connect_error`'s data. */
  data?: unknown;
  /** With `keep`, the connected socket (else it is disconnected at once). */
  socket?: ClientSocket;
  ms: number;
}

/** One handshake on `namespace` (default `chat`) with `token` in `auth`, bounded. */
export async function handshake(app: TestApp, token: string, options: { namespace?: string; keep?: boolean; timeoutMs?: number } = {}): Promise<HandshakeProbe> {
  const started = Date.now();
  const result = await outcome(app.connect(options.namespace ?? "chat", { auth: { token } }), options.timeoutMs ?? 10_000);
  const ms = Date.now() - started;
  if (!result.connected) return { code: result.message, data: result.data, ms };
  if (options.keep !== true) result.socket.disconnect();
  return { code: "ok", ms, ...(options.keep === true ? { socket: result.socket } : {}) };
}

export interface HttpProbe<T = Record<string, unknown>> {
  /** "ok" for a 2xx answer, else the body's `code`. */
  code: string;
  status: number;
  headers: Headers;
  body: T;
  ms: number;
}

/** GET `path` (default `/api/me`) with `token` as the Bearer credential (none when undefined), bounded; the body read as JSON. */
export async function httpGet<T = Record<string, unknown>>(
  app: { url: string },
  token: string | undefined,
  options: { path?: string; timeoutMs?: number } = {},
): Promise<HttpProbe<T>> {
  const started = Date.now();
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const response = await fetch(`${app.url}${options.path ?? "/api/me"}`, { headers, signal: AbortSignal.timeout(options.timeoutMs ?? 8_000) });
  const body = (await response.json()) as T;
  const code = response.ok ? "ok" : String((body as { code?: unknown }).code);
  return { code, status: response.status, headers: response.headers, body, ms: Date.now() - started };
}

/** One token on both transports: GET /api/me (status, challenge, the body's code) and a handshake on `chat` ("ok" or the connect_error message). */
export async function bothTransports(app: TestApp, token: string): Promise<{ http: number; challenge: string | null; code: unknown; socket: string }> {
  const http = await httpGet(app, token);
  const socket = await handshake(app, token);
  return { http: http.status, challenge: http.headers.get("www-authenticate"), code: http.body["code"], socket: socket.code };
}
