/**
 * Configuration: validation, defaults and normalisation in one place, and the
 * per-request resolution (manager first, environment second).
 */
import { OidcAuthError } from "../OidcAuthError.js";
import type { OidcAppHandle, OidcConfig, OidcConfigInput } from "../types.js";

/** Asymmetric JWS algorithms only: `none` and HS* can never be enabled. */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.freeze([
  "RS256", "RS384", "RS512",
  "PS256", "PS384", "PS512",
  "ES256", "ES384", "ES512",
  "EdDSA", "Ed25519",
]);

/** Every default, in one place. Durations in ms except `clockTolerance` (s). */
export const DEFAULTS = Object.freeze({
  jwksPath: "/api/auth/jwks",
  algorithms: ASYMMETRIC_ALGORITHMS,
  clockTolerance: 5,
  maxTokenLength: 16 * 1024,
  jwksTimeout: 5_000,
  jwksCooldown: 30_000,
  jwksCacheMaxAge: 600_000,
  socketExpiry: true,
  expiryLeadTime: 60,
  refreshLimit: 5,
  refreshWindow: 60_000,
});

/** Environment variable behind each option, for error messages. */
export const ENV = Object.freeze({
  authServiceUrl: "AUTH_SERVICE_URL",
  appSlug: "AUTH_SERVICE_APP_SLUG",
  jwksUri: "AUTH_SERVICE_JWKS_URI",
  issuer: "AUTH_SERVICE_ISSUER",
  audience: "AUTH_SERVICE_AUDIENCE",
});

type Names = Partial<Record<keyof OidcConfigInput, string>>;

/** Thrown for invalid configuration; `optionName` is the option or variable at fault. */
export class OidcConfigError extends TypeError {
  override readonly name = "OidcConfigError";
  constructor(readonly optionName: string, problem: string) {
    super(`ioserver-oidc: ${optionName} ${problem}`);
  }
}

const normalized = new WeakSet<object>();

function label(key: keyof OidcConfigInput, names: Names): string {
  return names[key] ?? `"${key}"`;
}

function httpUrl(value: unknown, key: keyof OidcConfigInput, names: Names): string {
  if (typeof value !== "string" || value.trim() === "") throw new OidcConfigError(label(key, names), "is required (an http or https URL)");
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new OidcConfigError(label(key, names), `is not a valid URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new OidcConfigError(label(key, names), `must use http or https, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") throw new OidcConfigError(label(key, names), "must not contain credentials");
  return value.trim();
}

function nonEmpty(value: unknown, key: keyof OidcConfigInput, names: Names): string {
  if (typeof value !== "string" || value.trim() === "") throw new OidcConfigError(label(key, names), "is required (a non-empty string)");
  return value.trim();
}

function duration(value: unknown, fallback: number, key: keyof OidcConfigInput, names: Names, integer = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new OidcConfigError(label(key, names), `must be a non-negative ${integer ? "integer" : "number"}, got ${String(value)}`);
  }
  return value;
}

function flag(value: unknown, fallback: boolean, key: keyof OidcConfigInput, names: Names): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new OidcConfigError(label(key, names), `must be a boolean, got ${String(value)}`);
  return value;
}

function stripTrailingSlashes(value: string): string {
  return value.replace(/\/+$/, "");
}

/**
 * Validate, apply defaults, normalise and freeze. Throws `OidcConfigError`
 * naming the option (or the environment variable, through `names`).
 */
export function normalizeConfig(input: OidcConfigInput, names: Names = {}): OidcConfig {
  if (input === null || typeof input !== "object") throw new OidcConfigError("config", "must be an object");
  if (normalized.has(input)) return input as unknown as OidcConfig;

  const authServiceUrl = stripTrailingSlashes(httpUrl(input.authServiceUrl, "authServiceUrl", names));
  const appSlug = nonEmpty(input.appSlug, "appSlug", names);
  const jwksUri = input.jwksUri === undefined || input.jwksUri === ""
    ? authServiceUrl + DEFAULTS.jwksPath
    : httpUrl(input.jwksUri, "jwksUri", names);
  const issuer = input.issuer === undefined || input.issuer === "" ? authServiceUrl : nonEmpty(input.issuer, "issuer", names);

  let audience: readonly string[];
  if (input.audience === undefined || input.audience === "") audience = [appSlug];
  else if (typeof input.audience === "string") audience = [input.audience.trim()];
  else if (Array.isArray(input.audience) && input.audience.length > 0 && input.audience.every((a) => typeof a === "string" && a !== "")) {
    audience = [...input.audience];
  } else throw new OidcConfigError(label("audience", names), "must be a non-empty string or array of non-empty strings");

  let algorithms: readonly string[] = DEFAULTS.algorithms;
  if (input.algorithms !== undefined) {
    if (!Array.isArray(input.algorithms) || input.algorithms.length === 0) {
      throw new OidcConfigError(label("algorithms", names), "must be a non-empty array");
    }
    for (const alg of input.algorithms) {
      if (!ASYMMETRIC_ALGORITHMS.includes(alg)) {
        throw new OidcConfigError(label("algorithms", names), `may only list asymmetric algorithms (${ASYMMETRIC_ALGORITHMS.join(", ")}), got ${JSON.stringify(alg)}`);
      }
    }
    algorithms = [...input.algorithms];
  }

  const maxTokenLength = duration(input.maxTokenLength, DEFAULTS.maxTokenLength, "maxTokenLength", names);
  if (maxTokenLength === 0) throw new OidcConfigError(label("maxTokenLength", names), "must be positive");
  if (input.realm !== undefined && (typeof input.realm !== "string" || /["\\\r\n]/.test(input.realm))) {
    throw new OidcConfigError(label("realm", names), "must be a string without quotes, backslashes or line breaks");
  }

  const config: OidcConfig = {
    authServiceUrl,
    appSlug,
    jwksUri,
    issuer,
    audience: Object.freeze(audience),
    algorithms: Object.freeze(algorithms),
    clockTolerance: duration(input.clockTolerance, DEFAULTS.clockTolerance, "clockTolerance", names, false),
    maxTokenLength,
    jwksTimeout: duration(input.jwksTimeout, DEFAULTS.jwksTimeout, "jwksTimeout", names),
    jwksCooldown: duration(input.jwksCooldown, DEFAULTS.jwksCooldown, "jwksCooldown", names),
    jwksCacheMaxAge: duration(input.jwksCacheMaxAge, DEFAULTS.jwksCacheMaxAge, "jwksCacheMaxAge", names),
    realm: input.realm,
    socketExpiry: flag(input.socketExpiry, DEFAULTS.socketExpiry, "socketExpiry", names),
    expiryLeadTime: duration(input.expiryLeadTime, DEFAULTS.expiryLeadTime, "expiryLeadTime", names, false),
    refreshLimit: duration(input.refreshLimit, DEFAULTS.refreshLimit, "refreshLimit", names),
    refreshWindow: duration(input.refreshWindow, DEFAULTS.refreshWindow, "refreshWindow", names),
  };
  Object.freeze(config);
  normalized.add(config);
  return config;
}

/** Read the five `AUTH_SERVICE_*` variables into a validated config. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): OidcConfig {
  return normalizeConfig(
    {
      authServiceUrl: env[ENV.authServiceUrl] as string,
      appSlug: env[ENV.appSlug] as string,
      jwksUri: env[ENV.jwksUri],
      issuer: env[ENV.issuer],
      audience: env[ENV.audience],
    },
    ENV,
  );
}

// The environment is read per request (tests and apps may change it), but only
// re-validated when one of the five values changed.
let envCache: { key: string; config: OidcConfig } | undefined;
// A user-written manager may return a plain object: normalise it once.
const managerCache = new WeakMap<object, OidcConfig>();

function fromEnvCached(): OidcConfig {
  const key = Object.values(ENV).map((name) => process.env[name] ?? "\u0000").join("\u0001");
  if (envCache?.key !== key) envCache = { key, config: configFromEnv() };
  return envCache.config;
}

/**
 * Resolve the configuration for one request: `appHandle.oidcConfig.getConfig()`
 * when that function exists, else the environment. Any problem becomes
 * `ERR_AUTH_MISCONFIGURED` whose reason names the option or variable.
 */
export function resolveConfig(appHandle: OidcAppHandle): OidcConfig {
  try {
    const manager = appHandle.oidcConfig as { getConfig?: unknown } | undefined;
    if (manager !== null && typeof manager === "object" && typeof manager.getConfig === "function") {
      const raw = (manager.getConfig as () => unknown)() as OidcConfigInput;
      if (raw === null || typeof raw !== "object") throw new OidcConfigError("oidcConfig.getConfig()", "must return a config object");
      let config = managerCache.get(raw);
      if (config === undefined) {
        config = normalizeConfig(raw);
        managerCache.set(raw, config);
      }
      return config;
    }
    return fromEnvCached();
  } catch (error) {
    if (error instanceof OidcAuthError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason, cause: error });
  }
}
