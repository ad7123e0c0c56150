/**
 * A verified payload (through the issuer's claim mapping) and the users
 * manager's record become the `OidcUserContext` both transports expose.
 */
import type { JWTPayload } from "jose";
import { OidcAuthError } from "../errors.js";
import type { OidcFeatures, OidcProvisionedUser, OidcUserContext } from "../types.js";
import { NO_FEATURES, scopesOf, strings, type OidcClaimMapper } from "../claims/claimMapping.js";
import { sharedList } from "../util/sharedLists.js";

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}


/**
 * The `features` object, frozen: a verified claim's own (deep-frozen with the
 * payload) as it is, anything else as a frozen copy; `NO_FEATURES` when
 * there is none.
 */
function features(value: unknown): OidcFeatures {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return NO_FEATURES;
  if (Object.isFrozen(value)) return value as OidcFeatures;
  return Object.keys(value).length === 0 ? NO_FEATURES : Object.freeze({ ...(value as OidcFeatures) });
}

/** The default mapping (the auth-service layout: `roles`, `permissions`, `features`). */
const defaultMapper: OidcClaimMapper = (claims) => ({
  roles: strings(claims["roles"]),
  permissions: strings(claims["permissions"]),
  features: features(claims["features"]),
});

/**
 * Map a verified payload. `payload.sub` must already be checked to be a
 * non-empty string and `exp` a number. Whatever the mapper returns is
 * sanitised: arrays keep their strings, `features` must be an object; the
 * lists and `features` are always frozen (the context itself is not), shared
 * with the verified claims when they are the claims' own (see `strings`) and
 * with every other context when empty.
 * `userId` is the subject's derived id (see `identity.ts`) until a users
 * manager's record replaces it.
 */
export function buildUserContext(payload: JWTPayload, mapper: OidcClaimMapper = defaultMapper, userId: string = payload.sub as string): OidcUserContext {
  // Verified payloads arrive deep-frozen (and may be shared through the token cache): no copy needed.
  const claims = (Object.isFrozen(payload) ? payload : Object.freeze({ ...payload })) as Readonly<Record<string, unknown>>;
  let mapped: ReturnType<OidcClaimMapper>;
  try {
    mapped = mapper(claims) ?? {};
  } catch (error) {
    throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: `the claim mapping threw: ${String(error)}`, cause: error });
  }
  const roles = strings(mapped.roles);
  return {
    sub: payload.sub as string,
    userId,
    email: mapped.email !== undefined ? stringOrNull(mapped.email) : stringOrNull(payload["email"]),
    name: mapped.name !== undefined ? stringOrNull(mapped.name) : stringOrNull(payload["name"]),
    userRole: roles[0] ?? "user",
    roles,
    permissions: strings(mapped.permissions),
    features: features(mapped.features),
    scopes: mapped.scopes !== undefined ? strings(mapped.scopes) : scopesOf(claims),
    expiresAt: (payload.exp as number) * 1000,
    claims,
  };
}

/**
 * Apply the users manager's record: its `id` becomes `userId`, and its `role`
 * fills `roles` when the token carried none.
 */
export function withProvisionedUser(context: OidcUserContext, user: OidcProvisionedUser): OidcUserContext {
  const useLocalRole = context.roles.length === 0 && typeof user.role === "string" && user.role !== "";
  const roles = useLocalRole ? sharedList([user.role as string]) : context.roles;
  return { ...context, userId: String(user.id), roles, userRole: roles[0] ?? "user" };
}
