import { requireRoles } from "./guards.js";

/**
 * Refuses the handshake (`ERR_FORBIDDEN`) unless the caller's `roles` include
 * `admin`. List it after `OidcSocketMiddleware`. The same guard as `requireRoles("admin")`.
 */
export class OidcSocketAdminMiddleware extends requireRoles("admin") {}
