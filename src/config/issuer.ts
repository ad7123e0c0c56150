/**
 * One trusted issuer's options normalised: the per-issuer rules, with the
 * top-level options as defaults.
 */
import { CLAIM_PRESETS, presetMapper, type OidcClaimMapper, type OidcClaimPreset } from "../claims/claimMapping.js";
import { ACCESS_TOKEN_TYPS, presetMarker, type TokenTypeRules } from "../claims/tokenType.js";
import { normalizeTyp } from "../jwt/typ.js";
import type { OidcIntrospectionOptions, OidcIssuerConfig, OidcIssuerInput, OidcVerificationOptions } from "../types.js";
import { ASYMMETRIC_ALGORITHMS, DEFAULTS } from "./defaults.js";
import { OidcConfigError } from "./errors.js";
import { introspectionOptions } from "./introspectionOptions.js";
import { claimList, duration } from "./validate.js";
import { issuerDpopPolicy } from "./dpopConfig.js";

/** The `algorithms` option: a non-empty list drawn from ASYMMETRIC_ALGORITHMS only. */
function algorithmList(value: unknown, fallback: readonly string[], key: string): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0) throw new OidcConfigError(key, "must be a non-empty array");
  for (const alg of value as unknown[]) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly unknown[]).includes(alg)) {
      throw new OidcConfigError(key, `may only list asymmetric algorithms (${ASYMMETRIC_ALGORITHMS.join(", ")}), got ${JSON.stringify(alg)}`);
    }
  }
  return Object.freeze([...(value as string[])]);
}

/** RFC 9068 section 2.2: what a JWT access token must carry besides `iss`, `exp`, `aud`, `sub`. */
const STRICT_CLAIMS = ["client_id", "iat", "jti"];

/** Per-issuer options, with the top-level ones as defaults. */
export function normalizeIssuer(
  entry: OidcVerificationOptions & OidcIntrospectionOptions & { issuer: string; audience: readonly string[]; jwksUri: string | undefined },
  defaults: OidcVerificationOptions,
  key: (option: keyof OidcIssuerInput) => string,
): OidcIssuerConfig {
  const pick = <K extends keyof OidcVerificationOptions>(option: K): OidcVerificationOptions[K] => entry[option] ?? defaults[option];
  const strict = pick("strict") ?? false;
  if (typeof strict !== "boolean") throw new OidcConfigError(key("strict"), "must be a boolean");
  const maxTokenAge = pick("maxTokenAge");
  if (maxTokenAge !== undefined && (typeof maxTokenAge !== "number" || !Number.isFinite(maxTokenAge) || maxTokenAge <= 0)) {
    throw new OidcConfigError(key("maxTokenAge"), `must be a positive number of seconds, got ${String(maxTokenAge)}`);
  }
  const requiredClaims = [...new Set([...claimList(pick("requiredClaims"), key("requiredClaims")), ...(strict ? STRICT_CLAIMS : [])])];
  const rolesClaim = pick("rolesClaim");
  if (rolesClaim !== undefined && (typeof rolesClaim !== "string" || rolesClaim === "")) throw new OidcConfigError(key("rolesClaim"), "must be a non-empty string");
  const clientId = pick("clientId") ?? entry.audience[0]!;
  if (typeof clientId !== "string" || clientId === "") throw new OidcConfigError(key("clientId"), "must be a non-empty string");
  const mapping = pick("claimMapping") ?? "auth-service";
  let mapClaims: OidcClaimMapper;
  if (typeof mapping === "function") mapClaims = mapping;
  else if (CLAIM_PRESETS.includes(mapping)) mapClaims = presetMapper(mapping, { clientId, rolesClaim });
  else throw new OidcConfigError(key("claimMapping"), `must be a function or one of ${CLAIM_PRESETS.join(", ")}, got ${JSON.stringify(mapping)}`);
  const claimMapping = typeof mapping === "function" ? "custom" : mapping;
  return Object.freeze({
    issuer: entry.issuer,
    audience: entry.audience,
    jwksUri: entry.jwksUri,
    algorithms: algorithmList(pick("algorithms"), DEFAULTS.algorithms, key("algorithms")),
    clockTolerance: duration(pick("clockTolerance"), DEFAULTS.clockTolerance, "clockTolerance", { clockTolerance: key("clockTolerance") }, false),
    maxTokenAge,
    requiredClaims: Object.freeze(requiredClaims),
    strict,
    claimMapping,
    mapClaims,
    tokenType: tokenTypeRules(pick("relaxTokenType"), claimMapping, key),
    ...introspectionOptions(entry.introspection, entry.introspect, entry.jwksUri === undefined, key("introspection"), key("introspect")),
    dpop: issuerDpopPolicy((entry as { dpop?: unknown }).dpop, (defaults as { dpop?: unknown }).dpop, key("dpop")),
  });
}

/** The access-token rules of an issuer: the defaults, loosened only where `relaxTokenType` says so. */
function tokenTypeRules(value: unknown, preset: OidcClaimPreset | "custom", key: (option: keyof OidcIssuerInput) => string): TokenTypeRules {
  const name = key("relaxTokenType");
  const member = (option: string) => (name.endsWith('"') ? `${name.slice(0, -1)}.${option}"` : `${name}.${option}`);
  if (value !== undefined && (value === null || typeof value !== "object" || Array.isArray(value))) {
    throw new OidcConfigError(name, "must be an object { typ, nonce, presetMarker }");
  }
  const given = (value ?? {}) as Record<string, unknown>;
  for (const option of Object.keys(given)) {
    if (option !== "typ" && option !== "nonce" && option !== "presetMarker") throw new OidcConfigError(name, `has no option ${JSON.stringify(option)} (typ, nonce, presetMarker)`);
  }
  const { typ, nonce, presetMarker: marker } = given;
  if (typ !== undefined && (!Array.isArray(typ) || !typ.every((each) => typeof each === "string" && each !== ""))) {
    throw new OidcConfigError(member("typ"), "must be an array of non-empty strings");
  }
  if (nonce !== undefined && typeof nonce !== "boolean") throw new OidcConfigError(member("nonce"), "must be a boolean");
  if (marker !== undefined && typeof marker !== "boolean") throw new OidcConfigError(member("presetMarker"), "must be a boolean");
  const typs = [...new Set([...ACCESS_TOKEN_TYPS, ...((typ as string[] | undefined) ?? []).map(normalizeTyp)])];
  return Object.freeze({ typs: Object.freeze(typs), nonce: nonce === true, marker: marker === false ? undefined : presetMarker(preset) });
}
