import { OidcAuthError } from "../OidcAuthError.js";
import type { OidcUserContext } from "../types.js";
import { show } from "./verifyAccessToken.js";

/**
 * Fail closed: without an authenticated context, or without the role in the
 * context's explicit `roles`, refuse with `ERR_FORBIDDEN`. `userRole`'s
 * default of "user" is never consulted.
 */
export function requireRole(context: OidcUserContext | undefined, role: string, guard: string): void {
  if (context === undefined || context === null || !Array.isArray(context.roles)) {
    throw new OidcAuthError("ERR_FORBIDDEN", {
      reason: `${guard} found no authenticated user: list the authentication middleware before it`,
    });
  }
  if (!context.roles.includes(role)) {
    throw new OidcAuthError("ERR_FORBIDDEN", {
      reason: `user ${show(context.userId)} has roles ${show(context.roles)}, ${guard} requires ${show(role)}`,
    });
  }
}
