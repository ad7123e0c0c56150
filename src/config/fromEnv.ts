/**
 * The configuration the environment variables give, for apps configured
 * without code.
 */
import type { OidcConfig, OidcConfigInput } from "../types.js";
import { normalizeConfig } from "./normalize.js";
import type { Names } from "./validate.js";

/** The variable that supplies each option: `AUTH_SERVICE_*` first, the generic `OIDC_*` names second. */
const ENV_SOURCES: ReadonlyArray<[keyof OidcConfigInput, string[]]> = [
  ["authServiceUrl", ["AUTH_SERVICE_URL"]],
  ["appSlug", ["AUTH_SERVICE_APP_SLUG"]],
  ["jwksUri", ["AUTH_SERVICE_JWKS_URI", "OIDC_JWKS_URI"]],
  ["issuer", ["AUTH_SERVICE_ISSUER", "OIDC_ISSUER"]],
  ["audience", ["AUTH_SERVICE_AUDIENCE", "OIDC_AUDIENCE"]],
];

/** Every variable read, for change detection. */
export const ENV_NAMES: readonly string[] = Object.freeze(ENV_SOURCES.flatMap(([, vars]) => vars));

/** What the environment configures, before validation, and the variable to name for each option. */
export interface EnvConfig {
  /** Only the options whose variable is set (non-empty), with the variable's value as it is. */
  readonly input: OidcConfigInput;
  /** The variable that supplied each option, or the ones that could have. */
  readonly names: Partial<Record<keyof OidcConfigInput, string>>;
}

/** Read the environment, without validating it. */
export function readEnv(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  const input: Record<string, string> = {};
  const names: Names = {};
  for (const [option, vars] of ENV_SOURCES) {
    const set = vars.find((name) => env[name] !== undefined && env[name] !== "");
    if (set !== undefined) input[option] = env[set]!;
    names[option] = set ?? vars.join(" or ");
  }
  return { input, names };
}

/** Read the environment into a validated config; errors name the variable. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): OidcConfig {
  const { input, names } = readEnv(env);
  return normalizeConfig(input, names);
}
