import { requireRoles } from "./guards.js";

/**
 * Refuses (403 `ERR_FORBIDDEN`) unless the caller's `roles` include `admin`.
 * List it after `OidcHttpMiddleware`. The same guard as `requireRoles("admin")`.
 */
export class OidcHttpAdminMiddleware extends requireRoles("admin") {}
