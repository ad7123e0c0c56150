/**
 * An issuer's `introspection` block and `introspect` mode, validated with
 * defaults applied. Error messages name the option, never its value where
 * that value may be a credential (`clientSecret`, `privateKey`).
 */
import type { OidcIntrospectionConfig, OidcIntrospectionInput } from "../types.js";
import { ASYMMETRIC_ALGORITHMS } from "./defaults.js";
import { OidcConfigError } from "./errors.js";

/** Defaults of the `introspection` block, durations in ms. */
export const INTROSPECTION_OPTION_DEFAULTS = Object.freeze({
  timeout: 5_000,
  cacheTtl: 60_000,
  negativeCacheTtl: 10_000,
  maxEntries: 10_000,
  maxTokenLength: 2048,
  maxConcurrent: 64,
});

const OPTIONS = new Set(["endpoint", "clientId", "clientAuthMethod", "clientSecret", "privateKey", "signingAlg", "timeout", "cacheTtl", "negativeCacheTtl", "maxEntries", "maxTokenLength", "maxConcurrent"]);
const METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"] as const;

/** `name` is the label of the block (e.g. `"issuers[0].introspection"`); a member's label is built from it. */
function memberOf(name: string): (option: string) => string {
  return (option) => (name.endsWith('"') ? `${name.slice(0, -1)}.${option}"` : `${name}.${option}`);
}

function count(value: unknown, fallback: number, label: string, positive = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || (positive && value === 0)) {
    throw new OidcConfigError(label, `must be a ${positive ? "positive" : "non-negative"} integer`);
  }
  return value;
}

/** An http(s) URL without credentials. */
function endpointOf(value: unknown, label: string): string {
  if (typeof value !== "string" || !URL.canParse(value.trim())) throw new OidcConfigError(label, "must be an http or https URL");
  const url = new URL(value.trim());
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new OidcConfigError(label, `must use http or https, got ${url.protocol}`);
  if (url.username !== "" || url.password !== "") throw new OidcConfigError(label, "must not contain credentials (use clientId and clientSecret)");
  return value.trim();
}

/**
 * The issuer's introspection settings, or `undefined` when it has none.
 * `discovered`: whether the issuer's keys are found by discovery (then the
 * endpoint may come from the same document). `blockName` and `modeName` label
 * the two options in errors.
 */
export function introspectionOptions(
  block: unknown,
  mode: unknown,
  discovered: boolean,
  blockName: string,
  modeName: string,
): { introspection: OidcIntrospectionConfig; introspect: "opaque" | "always" } | undefined {
  if (block === undefined) {
    if (mode !== undefined) throw new OidcConfigError(modeName, `needs an introspection block (${blockName}) saying how to reach the endpoint`);
    return undefined;
  }
  if (mode !== undefined && mode !== "opaque" && mode !== "always") throw new OidcConfigError(modeName, 'must be "opaque" or "always"');
  if (block === null || typeof block !== "object" || Array.isArray(block)) throw new OidcConfigError(blockName, "must be an object { endpoint, clientId, clientSecret | privateKey, ... }");
  const member = memberOf(blockName);
  const given = block as Record<string, unknown>;
  for (const option of Object.keys(given)) {
    if (!OPTIONS.has(option)) throw new OidcConfigError(blockName, `has no option ${JSON.stringify(option)} (${[...OPTIONS].join(", ")})`);
  }
  const input = given as Partial<OidcIntrospectionInput>;
  const endpoint = input.endpoint === undefined || input.endpoint === "" ? undefined : endpointOf(input.endpoint, member("endpoint"));
  if (endpoint === undefined && !discovered) {
    throw new OidcConfigError(member("endpoint"), "is required when the issuer's keys are not found by discovery (a jwksUri is set)");
  }
  if (typeof input.clientId !== "string" || input.clientId === "") throw new OidcConfigError(member("clientId"), "is required (a non-empty string)");
  const { clientSecret, privateKey, signingAlg } = input;
  const method = input.clientAuthMethod ?? (privateKey !== undefined ? "private_key_jwt" : "client_secret_basic");
  if (!(METHODS as readonly unknown[]).includes(method)) throw new OidcConfigError(member("clientAuthMethod"), `must be one of ${METHODS.join(", ")}`);
  if (method === "private_key_jwt") {
    if (privateKey === null || typeof privateKey !== "object") throw new OidcConfigError(member("privateKey"), "is required for private_key_jwt (a private JWK, KeyObject or CryptoKey)");
    if (clientSecret !== undefined) throw new OidcConfigError(member("clientSecret"), "is not used with private_key_jwt");
    const jwk = privateKey as { kty?: unknown; d?: unknown; alg?: unknown };
    const isJwk = typeof jwk.kty === "string";
    if (isJwk && typeof jwk.d !== "string") throw new OidcConfigError(member("privateKey"), 'must be a private key (its JWK has no "d")');
    if (signingAlg !== undefined && !ASYMMETRIC_ALGORITHMS.includes(signingAlg)) throw new OidcConfigError(member("signingAlg"), `must be one of ${ASYMMETRIC_ALGORITHMS.join(", ")}`);
    if (signingAlg === undefined && !isJwk) throw new OidcConfigError(member("signingAlg"), "is required when privateKey is a KeyObject or CryptoKey");
  } else {
    if (typeof clientSecret !== "string" || clientSecret === "") throw new OidcConfigError(member("clientSecret"), `is required for ${method} (a non-empty string)`);
    if (privateKey !== undefined) throw new OidcConfigError(member("privateKey"), `is not used with ${method}`);
    if (signingAlg !== undefined) throw new OidcConfigError(member("signingAlg"), `is not used with ${method}`);
  }
  const introspection: OidcIntrospectionConfig = Object.freeze({
    endpoint,
    clientId: input.clientId,
    clientAuthMethod: method,
    clientSecret: method === "private_key_jwt" ? undefined : clientSecret,
    privateKey: method === "private_key_jwt" ? privateKey : undefined,
    signingAlg,
    timeout: count(input.timeout, INTROSPECTION_OPTION_DEFAULTS.timeout, member("timeout"), true),
    cacheTtl: count(input.cacheTtl, INTROSPECTION_OPTION_DEFAULTS.cacheTtl, member("cacheTtl")),
    negativeCacheTtl: count(input.negativeCacheTtl, INTROSPECTION_OPTION_DEFAULTS.negativeCacheTtl, member("negativeCacheTtl")),
    maxEntries: count(input.maxEntries, INTROSPECTION_OPTION_DEFAULTS.maxEntries, member("maxEntries")),
    maxTokenLength: count(input.maxTokenLength, INTROSPECTION_OPTION_DEFAULTS.maxTokenLength, member("maxTokenLength"), true),
    maxConcurrent: count(input.maxConcurrent, INTROSPECTION_OPTION_DEFAULTS.maxConcurrent, member("maxConcurrent"), true),
  });
  return { introspection, introspect: mode ?? "opaque" };
}
