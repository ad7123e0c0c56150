/**
 * The soak run's server, alone in its own process (started by bench/soak.ts
 * with --expose-gc): an IOServer app protected by ioserver-oidc through its
 * public API only — OidcConfigManager, OidcSessionManager as `session`,
 * OidcSocketMiddleware on the `chat` namespace, OidcHttpMiddleware on
 * GET /api/me. It listens on 127.0.0.1 only and answers the parent's
 * questions (heap, event-loop delay, live sessions) over IPC.
 *
 * Not meant to be run by hand: `npm run soak`.
 */
import { fileURLToPath } from "node:url";
import { writeHeapSnapshot } from "node:v8";
import type { Server as HttpServer } from "node:http";
import { BaseController, BaseManager, BaseService, IOServer } from "ioserver";
import type { AppHandle } from "ioserver";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Socket } from "socket.io";
import { OidcConfigManager, OidcHttpMiddleware, OidcSessionManager, OidcSocketMiddleware, type OidcConfigInput } from "ioserver-oidc";
import { processStats } from "./lib/processStats.js";

interface Start {
  type: "start";
  port: number;
  config: OidcConfigInput;
}
interface Command {
  id: number;
  cmd: "heap" | "gcHeap" | "eld" | "eldReset" | "sessions" | "logs" | "snapshot" | "stop";
  /** For "snapshot": the file to write. */
  path?: string;
}

const send = (message: unknown) => process.send?.(message);
const gc = (globalThis as { gc?: () => void }).gc;
if (typeof gc !== "function") {
  send({ type: "fatal", error: "the server child must run with --expose-gc" });
  process.exit(2);
}
// The parent going away ends this process too: nothing outlives the run.
process.on("disconnect", () => process.exit(0));

const stats = processStats(gc);

const logCounts: Record<number, number> = {};
const notable: string[] = [];

class ApiController extends BaseController {
  async me(request: FastifyRequest, reply: FastifyReply) {
    return reply.send({ userId: request.userId, roles: request.roles });
  }
}

class ChatService extends BaseService {
  async ping(socket: Socket, _data: unknown, callback?: (reply: unknown) => void) {
    callback?.({ pong: true, userId: socket.userId });
  }
}

/** Counts the package's log lines by level (the console stays quiet at this volume). */
class LogCounter extends BaseManager {
  constructor(appHandle: AppHandle) {
    super(appHandle);
    handle = appHandle;
    const original = appHandle.log.bind(appHandle);
    (appHandle as { log: (level: number, text: string) => void }).log = (level: number, text: string) => {
      logCounts[level] = (logCounts[level] ?? 0) + 1;
      if (level <= 4 && notable.length < 20) notable.push(`${level} ${text}`);
      if (level <= 3) original(level, text);
    };
  }
}

let server: IOServer | undefined;
let handle: AppHandle | undefined;
async function start(message: Start): Promise<void> {
  const app = new IOServer({
    host: "127.0.0.1",
    port: message.port,
    routes: fileURLToPath(new URL("./routes", import.meta.url)),
    verbose: "ERROR",
    mode: ["websocket"],
  });
  app.addManager({ name: "soakLogCounter", manager: LogCounter });
  app.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(message.config) });
  app.addManager({ name: "session", manager: OidcSessionManager });
  app.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
  app.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
  await app.start();
  server = app;
  // An accept that fails (EMFILE, ENFILE) is an 'error' event of the listening server, fatal without a
  // listener; the connection is refused and the server goes on (docs/performance.md, "File descriptors").
  let acceptErrors = 0;
  (app.getApp() as unknown as { server: HttpServer }).server.on("error", (error: NodeJS.ErrnoException) => {
    if (acceptErrors++ === 0) handle?.log(4, `[soak-server] HTTP server error ${error.code ?? error.name}: ${error.message} (counted, logged once)`);
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  send({ type: "ready", pid: process.pid, ...(await stats.gcHeap()) });
}

async function answer(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case "heap":
      return stats.heap();
    case "gcHeap":
      return stats.gcHeap();
    case "eld":
      return stats.eld();
    case "eldReset":
      stats.reset();
      return { ok: true };
    case "sessions": {
      const io = (server?.getApp() as unknown as { io?: { of(name: string): { sockets: Map<string, unknown> } } } | undefined)?.io;
      const session = (handle as unknown as { session?: OidcSessionManager } | undefined)?.session;
      return { sessions: session === undefined ? -1 : (await session.list()).length, chatSockets: io?.of("/chat").sockets.size ?? -1 };
    }
    case "snapshot":
      // A heap snapshot, for leak hunting (SOAK_HEAP_SNAPSHOTS=<dir> in the parent).
      gc!();
      return { path: writeHeapSnapshot(command.path) };
    case "logs":
      return { counts: logCounts, notable };
    case "stop":
      stats.stop();
      (server?.getApp() as unknown as { io?: { close(): void } } | undefined)?.io?.close();
      await server?.stop().catch(() => undefined);
      setTimeout(() => process.exit(0), 100).unref();
      return { ok: true };
  }
}

process.on("message", (message: Start | Command) => {
  if ("type" in message && message.type === "start") {
    start(message).catch((error: unknown) => {
      send({ type: "fatal", error: String(error) });
      process.exit(2);
    });
    return;
  }
  const command = message as Command;
  answer(command).then(
    (result) => send({ id: command.id, result }),
    (error: unknown) => send({ id: command.id, error: String(error) }),
  );
});
send({ type: "spawned" });
