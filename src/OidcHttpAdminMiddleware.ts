import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import { httpHook } from "./lib/adapters.js";
import { requireRole } from "./lib/guards.js";
import type { OidcAppHandle } from "./types.js";

/** Refuses (403 `ERR_FORBIDDEN`) unless the caller's `roles` include `admin`. List it after `OidcHttpMiddleware`. */
export class OidcHttpAdminMiddleware extends BaseMiddleware {
  handle(appHandle: AppHandle) {
    return httpHook(appHandle as OidcAppHandle, async (request) => requireRole(request.auth, "admin", "OidcHttpAdminMiddleware"));
  }
}
