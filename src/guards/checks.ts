/**
 * Fine-grained authorization checks: roles, permissions, OAuth scopes and
 * custom claim predicates, tested against an authenticated user's context.
 * Nothing here knows a transport or a framework: a front-end turns each
 * check into its own guard (src/ioserver/guards.ts makes IOServer
 * middleware classes) through `guardFactories()`, so every front-end
 * validates the same arguments, with the same messages, and refuses with
 * the same `ERR_FORBIDDEN` reasons.
 */
import { OidcAuthError } from "../errors.js";
import type { OidcUserContext } from "../types.js";
import { show } from "../util/text.js";

/** Predicate of `requireClaims()`. Must be synchronous and return `true` to allow. */
export type OidcClaimsPredicate = (context: OidcUserContext) => boolean;

/** One check, named for logs and refusal reasons. */
export interface GuardCheck {
  /** Readable name, e.g. `RequireRoles(admin)` or `RequireScopes.any(read, write)`. */
  readonly name: string;
  /** Returns when the context passes; throws an `ERR_FORBIDDEN` `OidcAuthError` when it does not. */
  readonly test: (context: OidcUserContext) => void;
}

/** `requireRoles(...)` (all required) with `requireRoles.any(...)` (at least one), for any kind of guard `G`. */
export interface GuardFactory<G> {
  (...values: string[]): G;
  any(...values: string[]): G;
}

/** The four guard factories of a front-end whose guards are `G`. */
export interface GuardFactories<G> {
  requireRoles: GuardFactory<G>;
  requirePermissions: GuardFactory<G>;
  requireScopes: GuardFactory<G>;
  requireClaims(predicate: OidcClaimsPredicate, description?: string): G;
}

function isContext(context: unknown): context is OidcUserContext {
  return context !== null && typeof context === "object";
}

function who(context: OidcUserContext): string {
  return `user ${show(context.userId ?? context.sub)}`;
}

/**
 * Runs `check` on what should be an authenticated user's context. When there
 * is none, the authenticating step did not run first: `missing` says which
 * one to list before the guard, in the front-end's words.
 */
export function runCheck(check: GuardCheck, context: unknown, missing: string): void {
  if (!isContext(context)) {
    throw new OidcAuthError("ERR_FORBIDDEN", { reason: `${check.name} found no authenticated user: ${missing}` });
  }
  check.test(context);
}

/** Eager argument validation: at least one value, each a non-empty string. */
function requireNames(factory: string, what: string, values: readonly unknown[], noSpaces: boolean): readonly string[] {
  if (values.length === 0) throw new TypeError(`${factory}() needs at least one ${what}`);
  for (const value of values) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`${factory}(): each ${what} must be a non-empty string, got ${typeof value === "string" ? '""' : show(value)}`);
    }
    if (noSpaces && /\s/.test(value)) {
      throw new TypeError(`${factory}(): a ${what} cannot contain whitespace (pass each one separately), got ${show(value)}`);
    }
  }
  return Object.freeze([...(values as string[])]);
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

interface ListSpec {
  /** `requireRoles` */
  factory: string;
  /** `RequireRoles` */
  className: string;
  /** `role` */
  what: string;
  /** The context property compared against. */
  field: "roles" | "permissions" | "scopes";
}

function listCheck(spec: ListSpec, mode: "all" | "any", values: readonly unknown[]): GuardCheck {
  const factory = mode === "all" ? spec.factory : `${spec.factory}.any`;
  // OAuth scopes are a space-separated list on the wire, so a space inside one is a mistake.
  const required = requireNames(factory, spec.what, values, spec.field === "scopes");
  const name = `${mode === "all" ? spec.className : `${spec.className}.any`}(${required.join(", ")})`;
  // A refused scope check tells the client which scopes to ask for (RFC 6750 `scope` in the challenge).
  const scope = spec.field === "scopes" ? required.join(" ") : undefined;
  const test = (context: OidcUserContext): void => {
    const had = stringsOf((context as unknown as Record<string, unknown>)[spec.field]);
    const missing = required.filter((value) => !had.includes(value));
    const passed = mode === "all" ? missing.length === 0 : missing.length < required.length;
    if (passed) return;
    const wanted = mode === "all" ? `all of ${show(required)}` : `one of ${show(required)}`;
    const detail = mode === "all" ? ` (missing ${show(missing)})` : "";
    throw new OidcAuthError("ERR_FORBIDDEN", {
      reason: `${name} refused ${who(context)}: requires ${spec.field} ${wanted}, user has ${show(had)}${detail}`,
      scope,
    });
  };
  return { name, test };
}

function listFactory<G>(spec: ListSpec, build: (check: GuardCheck) => G): GuardFactory<G> {
  const all = (...values: string[]) => build(listCheck(spec, "all", values));
  Object.defineProperty(all, "name", { value: spec.factory });
  const any = (...values: string[]) => build(listCheck(spec, "any", values));
  Object.defineProperty(any, "name", { value: "any" });
  return Object.assign(all, { any });
}

function claimsCheck(predicate: OidcClaimsPredicate, description: string | undefined): GuardCheck {
  if (typeof predicate !== "function") throw new TypeError(`requireClaims(): predicate must be a function, got ${show(predicate)}`);
  if (description !== undefined && (typeof description !== "string" || description === "")) {
    throw new TypeError(`requireClaims(): description must be a non-empty string when given, got ${show(description)}`);
  }
  const name = `RequireClaims(${description ?? (predicate.name || "predicate")})`;
  const test = (context: OidcUserContext): void => {
    let result: unknown;
    try {
      result = predicate(context);
    } catch (error) {
      throw new OidcAuthError("ERR_FORBIDDEN", {
        reason: `${name} refused ${who(context)}: the predicate threw: ${error instanceof Error ? error.message : show(error)}`,
        cause: error,
      });
    }
    if (result === true) return;
    // A Promise is an object, so it would pass a truthiness test: refuse it by name instead.
    const thenable = result !== null && typeof result === "object" && typeof (result as { then?: unknown }).then === "function";
    throw new OidcAuthError("ERR_FORBIDDEN", {
      reason: thenable
        ? `${name} refused ${who(context)}: the predicate returned a Promise (predicates must be synchronous)`
        : `${name} refused ${who(context)}: the predicate returned ${show(result)}`,
    });
  };
  return { name, test };
}

/**
 * The guard factories of a front-end: `build` turns each validated check into
 * that front-end's guard. Arguments are validated when the factory is called,
 * so a typo fails at start-up, not at the first request.
 */
export function guardFactories<G>(build: (check: GuardCheck) => G): GuardFactories<G> {
  return {
    requireRoles: listFactory({ factory: "requireRoles", className: "RequireRoles", what: "role", field: "roles" }, build),
    requirePermissions: listFactory(
      { factory: "requirePermissions", className: "RequirePermissions", what: "permission", field: "permissions" },
      build,
    ),
    requireScopes: listFactory({ factory: "requireScopes", className: "RequireScopes", what: "scope", field: "scopes" }, build),
    requireClaims: (predicate, description) => build(claimsCheck(predicate, description)),
  };
}
