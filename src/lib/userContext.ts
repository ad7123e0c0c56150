/**
 * Claim mapping: a verified payload (and the users manager's record) into the
 * `OidcUserContext` both transports expose.
 */
import type { JWTPayload } from "jose";
import type { OidcFeatures, OidcProvisionedUser, OidcUserContext } from "../types.js";

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/** Array claims keep their string members only; anything else is `[]`. */
function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

function features(value: unknown): OidcFeatures {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? { ...(value as OidcFeatures) } : {};
}

/** Map a verified payload. `payload.sub` must already be checked to be a non-empty string. */
export function buildUserContext(payload: JWTPayload): OidcUserContext {
  const roles = strings(payload["roles"]);
  return {
    sub: payload.sub as string,
    userId: payload.sub as string,
    email: stringOrNull(payload["email"]),
    name: stringOrNull(payload["name"]),
    userRole: roles[0] ?? "user",
    roles,
    permissions: strings(payload["permissions"]),
    features: features(payload["features"]),
    expiresAt: (payload.exp as number) * 1000,
  };
}

/**
 * Apply the users manager's record: its `id` becomes `userId`, and its `role`
 * fills `roles` when the token carried none.
 */
export function withProvisionedUser(context: OidcUserContext, user: OidcProvisionedUser): OidcUserContext {
  const useLocalRole = context.roles.length === 0 && typeof user.role === "string" && user.role !== "";
  const roles = useLocalRole ? [user.role as string] : context.roles;
  return { ...context, userId: String(user.id), roles, userRole: roles[0] ?? "user" };
}
