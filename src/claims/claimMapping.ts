/**
 * Claim mapping: where each provider puts roles, permissions, scopes and
 * features. A preset name or a custom function picks the fields; the result
 * is sanitised the same way whatever produced it.
 */
import type { OidcClaimMapper, OidcClaimPreset, OidcFeatures, OidcMappedClaims } from "../types.js";
import { allStrings, sharedList } from "../util/sharedLists.js";

export type { OidcClaimMapper, OidcClaimPreset, OidcMappedClaims };

export const CLAIM_PRESETS: readonly OidcClaimPreset[] = Object.freeze(["auth-service", "keycloak", "auth0", "entra", "okta", "google"]);

/** What a preset may need besides the claims. */
export interface PresetOptions {
  /** Keycloak: the client whose `resource_access` roles count. */
  clientId: string;
  /** Auth0 (or any preset): the claim holding roles, e.g. `https://example.com/roles`; dotted paths are followed. */
  rolesClaim?: string;
}

/**
 * The one empty list shared by every context whose claim is missing or holds
 * no strings. Frozen, as every list of a context is: contexts are handed to
 * apps, and a list shared between them (or with the verified claims) must
 * not be changed through one of them.
 */
export const NO_STRINGS: string[] = Object.freeze([]) as unknown as string[];

/**
 * The strings of an array, in order, as a frozen array; `NO_STRINGS` for
 * anything else. A frozen array of strings only (a verified claim: verified
 * payloads are deep-frozen) is returned itself, shared with the claims and
 * not copied: an idle socket keeps its context for as long as it is open.
 * Otherwise a frozen copy, allocated at its exact size, or the shared copy
 * of an equal list (see sharedLists.ts: the same roles and scopes come in
 * token after token). Plain loops: V8's `filter` and `slice` take a slow
 * path on frozen arrays.
 */
export function strings(value: unknown): string[] {
  if (!Array.isArray(value)) return NO_STRINGS;
  if (Object.isFrozen(value) && allStrings(value)) return value.length === 0 ? NO_STRINGS : (value as string[]);
  let count = 0;
  for (let i = 0; i < value.length; i++) if (typeof value[i] === "string") count++;
  if (count === 0) return NO_STRINGS;
  const out = new Array<string>(count);
  for (let i = 0, j = 0; j < count; i++) {
    const item: unknown = value[i];
    if (typeof item === "string") out[j++] = item;
  }
  return sharedList(out);
}

/** The one empty `features`, shared by every context whose token has none (frozen, like NO_STRINGS). */
export const NO_FEATURES: OidcFeatures = Object.freeze({});

function object(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

const nonEmpty = (scope: string): boolean => scope !== "";

/** `scope` (space-delimited) or `scp` (string or array). */
export function scopesOf(claims: Readonly<Record<string, unknown>>): string[] {
  const raw = typeof claims["scope"] === "string" ? claims["scope"] : claims["scp"];
  if (typeof raw === "string") return strings(raw.split(" ").filter(nonEmpty));
  return strings(raw);
}

/** Follow a claim name, or a dotted path when no claim has the whole name. */
function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (path in claims) return claims[path];
  let value: unknown = claims;
  for (const part of path.split(".")) value = object(value)?.[part];
  return value;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** Build the mapper for a preset. */
export function presetMapper(preset: OidcClaimPreset, options: PresetOptions): OidcClaimMapper {
  const customRoles = options.rolesClaim === undefined ? undefined : (claims: Readonly<Record<string, unknown>>) => strings(claimAt(claims, options.rolesClaim!));
  switch (preset) {
    case "auth-service":
      return (claims) => ({
        roles: customRoles?.(claims) ?? strings(claims["roles"]),
        permissions: strings(claims["permissions"]),
        features: object(claims["features"]) ?? NO_FEATURES,
      });
    case "keycloak":
      return (claims) => ({
        roles:
          customRoles?.(claims) ??
          unique([
            ...strings(object(claims["realm_access"])?.["roles"]),
            ...strings(object(object(claims["resource_access"])?.[options.clientId])?.["roles"]),
          ]),
        permissions: [],
      });
    case "auth0":
      return (claims) => ({ roles: customRoles?.(claims) ?? [], permissions: strings(claims["permissions"]) });
    case "entra":
      return (claims) => ({ roles: customRoles?.(claims) ?? strings(claims["roles"]), permissions: [] });
    case "okta":
      return (claims) => ({ roles: customRoles?.(claims) ?? strings(claims["groups"]), permissions: [] });
    case "google":
      return (claims) => ({ roles: customRoles?.(claims) ?? [], permissions: [] });
  }
}
