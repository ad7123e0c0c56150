/**
 * The demo app: an IOServer whose HTTP API and Socket.IO namespaces accept
 * the access tokens of an OpenID Connect provider, plus the single page that
 * signs users in and uses them. Everything auth-related comes from the public
 * API of ioserver-oidc.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { IOServer } from "ioserver";
import {
  OidcConfigManager,
  OidcHttpAdminMiddleware,
  OidcHttpMiddleware,
  OidcSessionManager,
  OidcSocketAdminMiddleware,
  OidcSocketMiddleware,
} from "ioserver-oidc";
import { attachPrometheusMetrics } from "ioserver-oidc/metrics";
import promClient from "prom-client";
import type { Server as SocketIOServer } from "socket.io";
import { AdminController } from "./AdminController.js";
import { AdminService } from "./AdminService.js";
import { ApiController } from "./ApiController.js";
import { ChatService } from "./ChatService.js";
import { MetricsController } from "./MetricsController.js";
import { MetricsManager } from "./MetricsManager.js";
import { openUsersDatabase, UsersManager } from "./UsersManager.js";
import { WebController } from "./WebController.js";

export interface DemoAppOptions {
  port: number;
  host?: string;
  /** The provider's issuer URL: tokens must carry exactly this `iss`. */
  issuer: string;
  /** The SPA's OAuth client id (the page needs it to sign in; the server does not). */
  clientId: string;
  /** This API's resource indicator: the `aud` its access tokens must carry. */
  resource: string;
  /** Where `demo.sqlite` lives; created on first run. */
  dataDir: string;
  /** The origin the page is opened at (what DPoP proofs name in `htu`). Default `http://<host>:<port>`. */
  publicOrigin?: string;
}

export interface DemoApp {
  url: string;
  close(): Promise<void>;
}

const web = new URL("../web/", import.meta.url);

/** Bundles the page's script (with socket.io-client, via ioserver-oidc/client) into one ES module, in memory. */
async function bundleBrowserApp(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("app.ts", web))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error("esbuild produced no output for demo/web/app.ts");
  return output.text;
}

export async function startDemoApp(options: DemoAppOptions): Promise<DemoApp> {
  const { port, host = "127.0.0.1", issuer, clientId, resource, dataDir } = options;
  const publicOrigin = options.publicOrigin ?? `http://${host}:${port}`;
  const [html, css, js] = await Promise.all([
    readFile(new URL("index.html", web), "utf8"),
    readFile(new URL("app.css", web), "utf8"),
    bundleBrowserApp(),
  ]);

  const db = openUsersDatabase(dataDir);
  // The package's events as Prometheus metrics, in a registry of the demo's own.
  const registry = new promClient.Registry();
  const detachMetrics = attachPrometheusMetrics({ client: promClient, registry });
  // Socket.IO's CORS default (http://<host> without a port) is fine here: the
  // page is served by this server, so its sockets are same-origin.
  const server = new IOServer({ host, port, routes: fileURLToPath(new URL("./routes", import.meta.url)), verbose: "WARNING" });

  server.addManager({
    name: "oidcConfig",
    manager: OidcConfigManager.configure({
      issuer,
      // The API is an OAuth resource of its own: the SPA asks the provider for
      // tokens whose `aud` is this resource indicator, so a token minted for
      // some other API (or an ID token) is refused here. Keys come from discovery.
      audience: resource,
      // RFC 9068 JWT access tokens only (`typ: at+jwt`, client_id, iat, jti).
      strict: true,
      // Ask sockets for a fresh token 15 s before expiry (`oidc:expiring`). The
      // page refreshes its token when less than 20 s are left, so when asked it
      // always has a new one to give, even with a second or two of clock skew.
      expiryLeadTime: 15,
      // Only DPoP-bound tokens (RFC 9449): every request carries
      // `Authorization: DPoP <token>` and a fresh proof signed with the key
      // the token is bound to (`cnf.jkt`); every socket handshake and in-band
      // refresh carries one in its `auth`. A token copied out of the page is
      // refused without that key, as `Bearer` or as `DPoP`. The proofs name
      // this origin: a request whose Host header names another is refused.
      dpop: { policy: "required", publicOrigin },
    }),
  });
  server.addManager({ name: "session", manager: OidcSessionManager });
  server.addManager({ name: "users", manager: UsersManager.using(db) });
  server.addManager({ name: "metrics", manager: MetricsManager.using(registry) });

  server.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
  server.addController({ name: "admin", controller: AdminController, middlewares: [OidcHttpMiddleware, OidcHttpAdminMiddleware] });
  server.addController({ name: "metrics", controller: MetricsController, prefix: "" });
  server.addController({ name: "web", controller: WebController.serving({ html, css, js, config: { issuer, clientId, resource } }), prefix: "" });

  server.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
  server.addService({ name: "admin", service: AdminService, middlewares: [OidcSocketMiddleware, OidcSocketAdminMiddleware] });

  try {
    await server.start();
  } catch (error) {
    detachMetrics();
    db.close();
    throw error;
  }

  // IOServer 2.0.6 has no connection hook for services: Socket.IO's own
  // events greet chat users and keep the admin panel's session list live.
  const io = (server.getApp() as unknown as { io: SocketIOServer }).io;
  const admin = server.getService("admin") as AdminService;
  io.of("/chat").on("connection", (socket) => {
    socket.emit("chat:system", { text: `Welcome, ${socket.auth.name ?? socket.userId}. Messages go to everyone signed in.`, at: Date.now() });
  });
  for (const namespace of ["/chat", "/admin"]) {
    io.of(namespace).on("connection", (socket) => {
      admin._publishSessions();
      socket.on("disconnect", () => admin._publishSessions());
    });
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= (async () => {
        await io.close(); // disconnects every socket first, or the HTTP server would wait for them
        await server.stop().catch(() => undefined); // the HTTP server is already closed by io.close()
        admin._stop();
        detachMetrics();
        db.close();
      })();
      return closing;
    },
  };
}
