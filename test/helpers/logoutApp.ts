/**
 * A real IOServer for the back-channel logout tests: the logout controller
 * (route file `oidc.json`, the documented `onRequest` + `handler` mapping), a
 * user controller calling `backchannelLogoutHandler` on a path of its own,
 * and one namespace guarded by `OidcSocketMiddleware` whose clients record
 * `oidc:revoked` and their disconnection.
 */
import { BaseController, BaseService } from "ioserver";
import type { AppHandle } from "ioserver";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  backchannelLogoutHandler,
  OidcBackchannelLogoutController,
  OidcConfigManager,
  OidcSocketMiddleware,
  type OidcBackchannelLogoutOptions,
  type OidcConfigInput,
} from "../../src/index.js";
import { createServerBase, outcome, routesFolder, type LogLine } from "./app.js";

const routesDir = routesFolder("ioserver-oidc-logout-routes-", {
  oidc: [
    { method: "POST", url: "/backchannel-logout", onRequest: "logout", handler: "logout" },
    // Only there to show a non-POST request is refused.
    { method: "PUT", url: "/backchannel-logout", onRequest: "logout", handler: "logout" },
  ],
  custom: [{ method: "POST", url: "/sso/logout", onRequest: "ssoLogout", handler: "ssoLogout" }],
  // For an app that parses forms itself: the handler only.
  parsed: [{ method: "POST", url: "/backchannel-logout", handler: "logout" }],
});

export interface LogoutAppOptions {
  /** `OidcConfigManager.configure(config)`; `undefined` registers no config manager. */
  config?: OidcConfigInput;
  /** Options of the `oidc` controller (`OidcBackchannelLogoutController.configure`). */
  logout?: OidcBackchannelLogoutOptions;
  /** Options of the user controller's `backchannelLogoutHandler` at `/custom/sso/logout`. */
  custom?: OidcBackchannelLogoutOptions;
  /** Extra managers (e.g. `session`), registered before the controllers. */
  managers?: Record<string, new (appHandle: AppHandle) => unknown>;
  /** Register a form parser on the Fastify instance and mount the controller as a plain handler at `/parsed/backchannel-logout`. */
  formParser?: boolean;
  /** Listen on this port (default: a free one). */
  port?: number;
}

/** A connected client and what it was told. */
export interface Watched {
  socket: ClientSocket;
  revoked: unknown[];
  /** Resolves with the disconnect reason. */
  disconnected: Promise<string>;
  isDisconnected(): boolean;
}

export interface LogoutApp {
  url: string;
  logs: LogLine[];
  appHandle: Record<string, unknown>;
  /** POST to a path of the app (default the controller's route) with a body and headers. */
  post(body: string, headers?: Record<string, string>, path?: string): Promise<{ status: number; headers: Headers; text: string }>;
  /** POST `logout_token=<token>` form-encoded. */
  logout(token: string, path?: string): Promise<{ status: number; headers: Headers; text: string }>;
  /** Connect to `chat` with an access token; rejects if the handshake is refused. */
  connect(token: string): Promise<Watched>;
  close(): Promise<void>;
}

const TIMEOUT = 8_000;

export async function startLogoutApp(options: LogoutAppOptions = {}): Promise<LogoutApp> {
  const base = await createServerBase(routesDir, options.port);
  const { server, url, logs, appHandle } = base;

  class ChatService extends BaseService {
    async ping(_socket: unknown, _data: unknown, callback?: (value: unknown) => void) {
      callback?.("pong");
    }
  }
  class CustomController extends BaseController {
    // A user's own controller: the handler on a path and with options of its choosing.
    readonly ssoLogout = backchannelLogoutHandler(this.appHandle, options.custom ?? {});
  }

  for (const [name, manager] of Object.entries(options.managers ?? {})) server.addManager({ name, manager });
  if (options.config !== undefined) server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(options.config) });

  const Logout = options.logout === undefined ? OidcBackchannelLogoutController : OidcBackchannelLogoutController.configure(options.logout);
  server.addController({ name: "oidc", controller: Logout });
  server.addController({ name: "custom", controller: CustomController });
  if (options.formParser === true) {
    const fastify = server.getApp() as unknown as {
      addContentTypeParser(type: string, opts: { parseAs: "string"; bodyLimit: number }, parser: (req: unknown, body: string, done: (err: Error | null, value?: unknown) => void) => void): void;
    };
    fastify.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 32 * 1024 }, (_req, body, done) => {
      const params = new URLSearchParams(body);
      const parsed = Object.create(null) as Record<string, string | string[]>;
      for (const key of new Set(params.keys())) {
        const all = params.getAll(key);
        parsed[key] = all.length === 1 ? all[0]! : all;
      }
      done(null, parsed);
    });
    server.addController({ name: "parsed", controller: Logout });
  }
  server.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
  await server.start();


  const post: LogoutApp["post"] = async (body, headers = {}, path = "/oidc/backchannel-logout") => {
    const response = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body,
      signal: AbortSignal.timeout(TIMEOUT),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };

  return {
    url,
    logs,
    appHandle,
    post,
    logout: (token, path) => post(new URLSearchParams({ logout_token: token }).toString(), {}, path),
    async connect(token) {
      const socket = base.connect("chat", { auth: { token } });
      const revoked: unknown[] = [];
      socket.on("oidc:revoked", (payload: unknown) => revoked.push(payload));
      let gone = false;
      const disconnected = new Promise<string>((resolve) =>
        socket.on("disconnect", (reason: string) => {
          gone = true;
          resolve(reason);
        }),
      );
      const result = await outcome(socket, TIMEOUT);
      if (!result.connected) throw new Error(`handshake refused: ${result.message}`);
      return { socket, revoked, disconnected, isDisconnected: () => gone };
    },
    close: base.close,
  };
}

/** Wait (bounded) for a watched client to be disconnected. */
export function disconnectedWithin(watched: Watched, timeoutMs = TIMEOUT): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not disconnected within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([watched.disconnected, deadline]).finally(() => clearTimeout(timer));
}

/** A round trip on the socket: proves it is still connected (and flushes anything sent before). */
export async function stillConnected(watched: Watched): Promise<boolean> {
  if (watched.isDisconnected()) return false;
  try {
    return (await watched.socket.timeout(TIMEOUT).emitWithAck("ping", {})) === "pong";
  } catch {
    return false;
  }
}
