/**
 * Who a token is: the pair (issuer, subject). A `sub` is unique only within
 * its issuer (OpenID Connect Core section 2), so every map, cache, room or
 * comparison that stands for a user keys on both.
 *
 * The local user id (`userId`) is the users manager's id when the app has
 * one. Without one it is derived from the pair: the `sub` itself while a
 * single issuer is trusted, `<iss>#<sub>` when several are (an issuer
 * identifier has no fragment, so the first `#` splits it unambiguously and
 * two issuers' equal `sub` values never share a `userId`).
 */
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";

/**
 * A string key for the pair: the issuer's length first, so no choice of
 * issuer and subject strings can make two different pairs collide.
 */
export function subjectKey(iss: string, sub: string): string {
  return `${iss.length}:${iss}:${sub}`;
}

/** The `userId` of a subject when the app has no users manager. */
export function derivedUserId(iss: string, sub: string, config: OidcConfig): string {
  return config.issuers.length === 1 ? sub : `${iss}#${sub}`;
}

/** Whether the app provisions users (`appHandle.users.findOrCreate`): then every `userId` is a local id. */
export function hasUsersManager(appHandle: OidcAppHandle): boolean {
  const users = appHandle.users as { findOrCreate?: unknown } | null | undefined;
  return users !== null && typeof users === "object" && typeof users.findOrCreate === "function";
}

/** The token's `iss` claim when it is a non-empty string (always, for a verified token). */
export function issOf(context: OidcUserContext): string | undefined {
  const iss = context.claims?.["iss"];
  return typeof iss === "string" && iss !== "" ? iss : undefined;
}

/** Whether two contexts are the same subject: same issuer and same `sub`. */
export function sameSubject(a: OidcUserContext, b: OidcUserContext): boolean {
  return a.sub === b.sub && issOf(a) === issOf(b);
}

/**
 * The subjects whose sockets carry `userId` without being addressed by a
 * user room: with no users manager and one trusted issuer, `userId` is the
 * `sub` of that issuer. Empty otherwise (a local id, or a derived
 * `<iss>#<sub>`, is addressed by its user room).
 */
export function subjectsOfDerivedUserId(appHandle: OidcAppHandle, userId: string, config: OidcConfig | undefined): Array<[iss: string, sub: string]> {
  if (hasUsersManager(appHandle) || config === undefined || config.issuers.length !== 1) return [];
  return [[config.issuers[0]!.issuer, userId]];
}
