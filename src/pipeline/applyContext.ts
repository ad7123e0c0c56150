import type { OidcDecorations, OidcUserContext } from "../types.js";

/** Copy the context onto a request or socket. */
export function applyContext(target: object, context: OidcUserContext): void {
  const decorated = target as OidcDecorations;
  decorated.sub = context.sub;
  decorated.userId = context.userId;
  decorated.userRole = context.userRole;
  decorated.roles = context.roles;
  decorated.permissions = context.permissions;
  decorated.features = context.features;
  decorated.scopes = context.scopes;
  decorated.auth = context;
}
