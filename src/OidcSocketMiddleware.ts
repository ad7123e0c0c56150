import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import { authenticate } from "./authenticate.js";
import { socketHook } from "./lib/adapters.js";
import { applyContext } from "./lib/applyContext.js";
import { socketToken } from "./lib/extractToken.js";
import { registerSocketSession } from "./lib/socketSession.js";
import type { OidcAppHandle } from "./types.js";

/**
 * Guards a Socket.IO namespace at the handshake: `handshake.auth.token`, else
 * an `Authorization: Bearer` header; verified, provisioned, registered with
 * the session tracker, then `socket.sub`, `socket.userId`, `socket.userRole`,
 * `socket.roles`, `socket.permissions`, `socket.features` and
 * `socket.data.auth` are set and the connection is accepted.
 */
export class OidcSocketMiddleware extends BaseMiddleware {
  handle(appHandle: AppHandle) {
    return socketHook(appHandle as OidcAppHandle, async (socket, app) => {
      const { context } = await authenticate(socketToken(socket.handshake), app);
      await registerSocketSession(app, socket, context);
      applyContext(socket, context);
      socket.data.auth = context;
    });
  }
}
