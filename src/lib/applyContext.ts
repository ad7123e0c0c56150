import type { OidcUserContext } from "../types.js";

/** The seed's six properties plus `auth`, set on a request or socket. */
export interface OidcDecorated {
  sub: string;
  userId: string;
  userRole: string;
  roles: string[];
  permissions: string[];
  features: Record<string, unknown>;
  auth: OidcUserContext;
}

/** Copy the context onto a request or socket. */
export function applyContext(target: object, context: OidcUserContext): void {
  const decorated = target as OidcDecorated;
  decorated.sub = context.sub;
  decorated.userId = context.userId;
  decorated.userRole = context.userRole;
  decorated.roles = context.roles;
  decorated.permissions = context.permissions;
  decorated.features = context.features;
  decorated.auth = context;
}
