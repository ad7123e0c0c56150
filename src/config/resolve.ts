/**
 * The configuration of one request: the app's manager first, the
 * environment second.
 */
import { OidcAuthError } from "../errors.js";
import type { OidcAppHandle, OidcConfig } from "../types.js";
import { OidcConfigError } from "./errors.js";
import { configFromEnv, ENV_NAMES } from "./fromEnv.js";
import { normalizeConfig } from "./normalize.js";

/**
 * Process-wide cache, one entry: the environment is read per request (tests
 * and apps may change it), but only re-validated when one of its values
 * changed.
 */
let envCache: { key: string; config: OidcConfig } | undefined;

function fromEnvCached(): OidcConfig {
  const key = ENV_NAMES.map((name) => process.env[name] ?? "\u0000").join("\u0001");
  if (envCache?.key !== key) envCache = { key, config: configFromEnv() };
  return envCache.config;
}

/** What a manager returned, validated: a normalised config is returned as is, anything else is recognised or normalised once. */
function fromManager(value: unknown, source: string): OidcConfig {
  if (value === null || typeof value !== "object") throw new OidcConfigError(source, "must return a config object");
  return normalizeConfig(value);
}

/**
 * Resolve the configuration for one request: `appHandle.oidcConfig`'s
 * resolved view (`getResolvedConfig()`, as `OidcConfigManager` has) when that
 * function exists, else its `getConfig()`, else the environment. Any problem
 * becomes `ERR_AUTH_MISCONFIGURED` whose reason names the option or variable.
 */
export function resolveConfig(appHandle: OidcAppHandle): OidcConfig {
  try {
    const manager = appHandle.oidcConfig as { getConfig?: unknown; getResolvedConfig?: unknown } | undefined | null;
    if (manager !== null && typeof manager === "object") {
      if (typeof manager.getResolvedConfig === "function") {
        return fromManager((manager as { getResolvedConfig(): unknown }).getResolvedConfig(), "oidcConfig.getResolvedConfig()");
      }
      if (typeof manager.getConfig === "function") return fromManager((manager as { getConfig(): unknown }).getConfig(), "oidcConfig.getConfig()");
    }
    return fromEnvCached();
  } catch (error) {
    if (error instanceof OidcAuthError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason, cause: error });
  }
}

/**
 * The app's configuration, or undefined when it cannot be read: for work
 * that goes on without it (a revocation's bounds, a challenge's realm) and
 * says so where it matters.
 */
export function tryResolveConfig(appHandle: OidcAppHandle): OidcConfig | undefined {
  try {
    return resolveConfig(appHandle);
  } catch {
    return undefined;
  }
}
