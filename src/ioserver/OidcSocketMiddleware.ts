import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import type { Socket } from "socket.io";
import { authenticateNow, type AuthenticateResult } from "../pipeline/authenticate.js";
import { socketBinding, type SocketProofTarget } from "../pipeline/dpopBinding.js";
import { socketHook } from "../sockets/socketHook.js";
import { socketProof, socketToken } from "../pipeline/extractToken.js";
import { ensureLifecycle, refuseAnotherUser, restoredContext } from "../sockets/lifecycle.js";
import { registerSocketSession } from "../sockets/session.js";
import { configuredClass } from "./configure.js";
import type { OidcUserContext } from "../types.js";

/** Per-middleware options, see `OidcSocketMiddleware.configure()`. */
export interface OidcSocketMiddlewareOptions {
  /** Disconnect the namespace's sockets when their token expires (overrides the config's `socketExpiry`). */
  expiry?: boolean;
}

/**
 * Guards a Socket.IO namespace at the handshake: `handshake.auth.token`, else
 * an `Authorization: Bearer` header (and a DPoP proof in `handshake.auth.dpop`
 * for a token bound to a key, see docs/dpop.md); verified, provisioned, registered with
 * the session tracker, then `socket.sub`, `socket.userId`, `socket.userRole`,
 * `socket.roles`, `socket.permissions`, `socket.features` and
 * `socket.data.auth` are set and the connection is accepted.
 *
 * Once connected, the socket follows its token: `oidc:expiring` before `exp`,
 * in-band `oidc:refresh`, and `oidc:expired` plus a disconnect when no fresh
 * token came in time.
 */
export class OidcSocketMiddleware extends BaseMiddleware {
  /** Options given through `configure()`. */
  protected static readonly options: OidcSocketMiddlewareOptions = {};

  /**
   * A middleware class with options, e.g. `OidcSocketMiddleware.configure({ expiry: false })`
   * for a namespace whose sockets may outlive their token.
   */
  static configure(options: OidcSocketMiddlewareOptions): typeof OidcSocketMiddleware {
    if (options === null || typeof options !== "object") throw new TypeError("OidcSocketMiddleware.configure: options must be an object");
    if (options.expiry !== undefined && typeof options.expiry !== "boolean") {
      throw new TypeError(`OidcSocketMiddleware.configure: "expiry" must be a boolean, got ${String(options.expiry)}`);
    }
    return configuredClass(OidcSocketMiddleware, options);
  }

  handle(appHandle: AppHandle) {
    const options = (this.constructor as typeof OidcSocketMiddleware).options;
    const admitSocket = (socket: Socket, restored: OidcUserContext | undefined, { context, config }: AuthenticateResult): void | Promise<void> => {
      // Restored by connection-state recovery with the middlewares run (`skipMiddlewares: false`): the session,
      // its rooms and socket.data are someone's; only that user's token takes them back.
      if (socket.recovered) refuseAnotherUser(restored, context);
      ensureLifecycle(socket.nsp, appHandle, options);
      return registerSocketSession(appHandle, socket, context, config); // tracks it: socket.data.auth and the decorations
    };
    return socketHook(appHandle, (socket, app) => {
      // A DPoP proof comes as `auth.dpop`; without one, a token bound to a key is refused (see socketBinding).
      // A restored session stays bound to the key (or to none) it had, as on a refresh.
      const restored = socket.recovered ? restoredContext(socket) : undefined;
      const target: SocketProofTarget = { handshake: socket.handshake, proof: socketProof(socket.handshake) };
      if (restored !== undefined) target.current = restored;
      const result = authenticateNow(socketToken(socket.handshake), app, "handshake", target, socketBinding);
      return result instanceof Promise ? result.then((each) => admitSocket(socket, restored, each)) : admitSocket(socket, restored, result);
    });
  }
}
