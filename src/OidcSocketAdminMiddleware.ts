import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import { socketHook } from "./lib/adapters.js";
import { requireRole } from "./lib/guards.js";
import type { OidcAppHandle } from "./types.js";

/** Refuses the handshake (`ERR_FORBIDDEN`) unless the caller's `roles` include `admin`. List it after `OidcSocketMiddleware`. */
export class OidcSocketAdminMiddleware extends BaseMiddleware {
  handle(appHandle: AppHandle) {
    return socketHook(appHandle as OidcAppHandle, async (socket) => requireRole(socket.data?.auth, "admin", "OidcSocketAdminMiddleware"));
  }
}
