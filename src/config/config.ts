/**
 * Configuration: validation, defaults and normalisation in one place, and the
 * per-request resolution (manager first, environment second).
 */
import { OidcAuthError } from "../errors.js";
import type { OidcAppHandle, OidcConfig, OidcConfigInput, OidcIssuerConfig, OidcIssuerInput, OidcVerificationOptions } from "../types.js";
import { CLAIM_PRESETS, presetMapper, type OidcClaimMapper, type OidcClaimPreset } from "../claims/claimMapping.js";
import { ACCESS_TOKEN_TYPS, presetMarker, type TokenTypeRules } from "../claims/tokenType.js";
import { normalizeTyp } from "../jwt/typ.js";
import { TOKEN_CACHE_DEFAULTS, type TokenCacheOptions } from "../verify/tokenCache.js";

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
  provisionTimeout: 10_000,
  jwksStaleIfError: 3_600_000,
  tokenCache: TOKEN_CACHE_DEFAULTS,
  provisionCacheTtl: 0,
  revocationTtl: 86_400,
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
/** The default `names`, shared: a default `{}` would be allocated on every call, cached ones included. */
const NO_NAMES: Names = Object.freeze({});

/*
 * Config objects are recognised, not re-validated. An object that passed
 * validation is frozen (with the plain objects and arrays inside it), so what
 * it says is always what is enforced: tightening it in place throws instead
 * of being silently ignored. It is then known by identity; a plain object
 * equal in content to one seen recently (a getConfig() building a new object
 * per call) resolves to the same normalised config, hence the same token
 * cache, without being validated again.
 */

/** Plain objects and arrays deeper than this are compared by identity and not frozen (a config nests four: itself, `issuers`, an entry, its `audience`; a cycle stops here). */
const MAX_DEPTH = 6;
/** How many distinct configurations are remembered by content, most recently used first. */
export const CONFIG_CONTENT_CACHE_SIZE = 16;

const byIdentity = new WeakMap<object, OidcConfig>();
const byContent: Array<{ readonly input: object; readonly config: OidcConfig }> = [];
const hasOwn = Object.prototype.hasOwnProperty;

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || proto === Array.prototype;
}

/** Freeze `value` and the plain objects and arrays it holds; functions and class instances are left as they are. */
function freezeData(value: object, depth: number): void {
  Object.freeze(value);
  if (depth >= MAX_DEPTH) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) freezeMember(value[i], depth);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) if (hasOwn.call(record, key)) freezeMember(record[key], depth);
}

function freezeMember(member: unknown, depth: number): void {
  if (member !== null && typeof member === "object" && isPlain(member)) freezeData(member, depth + 1);
}

/**
 * Equal content: the same enumerable own keys with equal values, recursing
 * into plain objects and arrays; anything else (a `claimMapping` function, a
 * class instance) must be the same object. Allocation-free: it runs whenever
 * a new object arrives.
 */
function sameContent(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (depth >= MAX_DEPTH || !isPlain(a) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    if (a.length !== other.length) return false;
    for (let i = 0; i < a.length; i++) {
      if ((i in a) !== (i in other) || !sameContent(a[i], other[i], depth + 1)) return false;
    }
    return true;
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  let keys = 0;
  for (const key in left) {
    if (!hasOwn.call(left, key)) continue;
    if (!hasOwn.call(right, key) || !sameContent(left[key], right[key], depth + 1)) return false;
    keys++;
  }
  for (const key in right) if (hasOwn.call(right, key)) keys--;
  return keys === 0;
}

/** The normalised config of an object seen before, by identity, else (plain objects) by content with a remembered one. */
function knownConfig(input: object): OidcConfig | undefined {
  const known = byIdentity.get(input);
  if (known !== undefined || !isPlain(input)) return known;
  for (let i = 0; i < byContent.length; i++) {
    const entry = byContent[i]!;
    if (!sameContent(input, entry.input, 0)) continue;
    for (let j = i; j > 0; j--) byContent[j] = byContent[j - 1]!;
    byContent[0] = entry;
    // Frozen like the first one, so every object the package accepted is frozen; not
    // remembered by identity: a new object per call would only fill the WeakMap.
    freezeData(input, 0);
    return entry.config;
  }
  return undefined;
}

/**
 * Plain objects and arrays whose own properties are all data properties, all
 * the way down. Only such an input is remembered by content: comparing later
 * objects with it reads it again, and a getter could by then return something
 * other than what was validated.
 */
function isPlainData(value: object, depth: number): boolean {
  if (!isPlain(value)) return false;
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (descriptor === undefined || !("value" in descriptor)) return false;
    const member: unknown = descriptor.value;
    if (depth < MAX_DEPTH && member !== null && typeof member === "object" && isPlain(member) && !isPlainData(member, depth + 1)) return false;
  }
  return true;
}

/** Freeze a validated input and remember it by identity and, when it is plain data, by content. */
function remember(input: object, config: OidcConfig): void {
  freezeData(input, 0);
  byIdentity.set(input, config);
  if (!isPlainData(input, 0)) return;
  byContent.unshift({ input, config });
  if (byContent.length > CONFIG_CONTENT_CACHE_SIZE) byContent.pop();
}

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

function audienceList(value: unknown, key: string): readonly string[] {
  if (typeof value === "string" && value.trim() !== "") return Object.freeze([value.trim()]);
  if (Array.isArray(value) && value.length > 0 && value.every((a) => typeof a === "string" && a !== "")) return Object.freeze([...value]);
  throw new OidcConfigError(key, "must be a non-empty string or array of non-empty strings");
}

function algorithmList(value: unknown, fallback: readonly string[], key: string): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0) throw new OidcConfigError(key, "must be a non-empty array");
  for (const alg of value) {
    if (!ASYMMETRIC_ALGORITHMS.includes(alg)) {
      throw new OidcConfigError(key, `may only list asymmetric algorithms (${ASYMMETRIC_ALGORITHMS.join(", ")}), got ${JSON.stringify(alg)}`);
    }
  }
  return Object.freeze([...value]);
}

function claimList(value: unknown, key: string): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((c) => typeof c === "string" && c !== "")) {
    throw new OidcConfigError(key, "must be an array of claim names");
  }
  return value;
}

/** RFC 9068 section 2.2: what a JWT access token must carry besides `iss`, `exp`, `aud`, `sub`. */
const STRICT_CLAIMS = ["client_id", "iat", "jti"];

/** Per-issuer options, with the top-level ones as defaults. */
function normalizeIssuer(
  entry: OidcVerificationOptions & { issuer: string; audience: readonly string[]; jwksUri: string | undefined },
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

function tokenCacheOptions(value: unknown, names: Names): TokenCacheOptions | false {
  if (value === undefined || value === true) return TOKEN_CACHE_DEFAULTS;
  if (value === false) return false;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new OidcConfigError(label("tokenCache", names), "must be false, true or { maxEntries, maxBytes, maxTtl, admitAfter }");
  }
  const given = value as Partial<Record<keyof TokenCacheOptions, unknown>>;
  for (const key of Object.keys(given)) {
    if (!(key in TOKEN_CACHE_DEFAULTS)) throw new OidcConfigError(`"tokenCache.${key}"`, "is not an option (maxEntries, maxBytes, maxTtl, admitAfter)");
  }
  const option = (key: "maxEntries" | "maxBytes" | "maxTtl"): number =>
    duration(given[key], TOKEN_CACHE_DEFAULTS[key], key as keyof OidcConfigInput, { [key]: `"tokenCache.${key}"` } as Names);
  const admitAfter = given.admitAfter ?? TOKEN_CACHE_DEFAULTS.admitAfter;
  if (admitAfter !== 1 && admitAfter !== 2) throw new OidcConfigError(`"tokenCache.admitAfter"`, "must be 1 or 2");
  return Object.freeze({ maxEntries: option("maxEntries"), maxBytes: option("maxBytes"), maxTtl: option("maxTtl"), admitAfter });
}

/**
 * Validate, apply defaults, normalise and freeze. Throws `OidcConfigError`
 * naming the option (or the environment variable, through `names`).
 *
 * A valid `input` is frozen (see above) and the result is shared by every
 * later call with the same object or, for a plain object, with an equal one
 * among the last `CONFIG_CONTENT_CACHE_SIZE` configurations. An invalid input
 * is not frozen: it may be corrected in place.
 */
export function normalizeConfig(input: OidcConfigInput, names: Names = NO_NAMES): OidcConfig {
  if (input === null || typeof input !== "object") throw new OidcConfigError("config", "must be an object");
  if (normalized.has(input)) return input as unknown as OidcConfig;
  const known = knownConfig(input);
  if (known !== undefined) return known;
  const config = normalizeNew(input, names);
  remember(input, config);
  return config;
}

/**
 * The validation proper, for an object not recognised. Apart from
 * `normalizeConfig` because its closures make every call allocate a context:
 * the recognised path, taken on every request, allocates nothing.
 */
function normalizeNew(input: OidcConfigInput, names: Names): OidcConfig {
  const blank = (value: unknown) => value === undefined || value === "";

  let authServiceUrl: string | undefined;
  let appSlug: string | undefined;
  let issuers: OidcIssuerConfig[];
  if (input.issuers !== undefined) {
    if (!Array.isArray(input.issuers) || input.issuers.length === 0) throw new OidcConfigError('"issuers"', "must be a non-empty array");
    for (const single of ["authServiceUrl", "issuer", "audience", "jwksUri"] as const) {
      if (!blank(input[single])) throw new OidcConfigError(`"${single}"`, 'cannot be combined with "issuers": give it inside each issuer');
    }
    appSlug = blank(input.appSlug) ? undefined : nonEmpty(input.appSlug, "appSlug", names);
    const seen = new Set<string>();
    const several = input.issuers.length > 1;
    issuers = input.issuers.map((entry, index) => {
      const key = (option: keyof OidcIssuerInput) => `"issuers[${index}].${option}"`;
      if (entry === null || typeof entry !== "object") throw new OidcConfigError(`"issuers[${index}]"`, "must be an object");
      if (typeof entry.issuer !== "string" || entry.issuer.trim() === "") throw new OidcConfigError(key("issuer"), "is required (a non-empty string)");
      if (seen.has(entry.issuer)) throw new OidcConfigError(key("issuer"), `repeats ${JSON.stringify(entry.issuer)}`);
      // The derived user id of several issuers is `<iss>#<sub>`: split at the first `#`, so an issuer must have none.
      if (several && entry.issuer.includes("#")) {
        throw new OidcConfigError(key("issuer"), `must not contain "#" (an issuer identifier has no fragment), got ${JSON.stringify(entry.issuer)}`);
      }
      seen.add(entry.issuer);
      const audience = audienceList(entry.audience, key("audience"));
      const jwksUri = blank(entry.jwksUri) ? undefined : httpUrl(entry.jwksUri, "jwksUri", { jwksUri: key("jwksUri") });
      return normalizeIssuer({ ...entry, audience, jwksUri }, input, key);
    });
  } else {
    authServiceUrl = blank(input.authServiceUrl) ? undefined : stripTrailingSlashes(httpUrl(input.authServiceUrl, "authServiceUrl", names));
    if (authServiceUrl === undefined && blank(input.issuer)) {
      throw new OidcConfigError(label("authServiceUrl", names), `is required (an http or https URL), or ${label("issuer", names)}`);
    }
    const issuer = blank(input.issuer) ? (authServiceUrl as string) : nonEmpty(input.issuer, "issuer", names);
    appSlug = blank(input.appSlug) ? undefined : nonEmpty(input.appSlug, "appSlug", names);
    if (appSlug === undefined && blank(input.audience)) {
      throw new OidcConfigError(label("appSlug", names), `is required (a non-empty string), or ${label("audience", names)}`);
    }
    const audience = blank(input.audience) ? Object.freeze([appSlug as string]) : audienceList(input.audience, label("audience", names));
    let jwksUri: string | undefined;
    if (!blank(input.jwksUri)) jwksUri = httpUrl(input.jwksUri, "jwksUri", names);
    else if (authServiceUrl !== undefined) jwksUri = authServiceUrl + DEFAULTS.jwksPath;
    else httpUrl(issuer, "issuer", names); // discovery needs an http(s) issuer
    issuers = [normalizeIssuer({ ...input, issuer, audience, jwksUri }, {}, (option) => label(option as keyof OidcConfigInput, names))];
  }

  const maxTokenLength = duration(input.maxTokenLength, DEFAULTS.maxTokenLength, "maxTokenLength", names);
  if (maxTokenLength === 0) throw new OidcConfigError(label("maxTokenLength", names), "must be positive");
  if (input.realm !== undefined && (typeof input.realm !== "string" || /["\\\r\n]/.test(input.realm))) {
    throw new OidcConfigError(label("realm", names), "must be a string without quotes, backslashes or line breaks");
  }

  const first = issuers[0]!;
  const config: OidcConfig = {
    authServiceUrl,
    appSlug,
    jwksUri: first.jwksUri,
    issuer: first.issuer,
    audience: first.audience,
    algorithms: first.algorithms,
    clockTolerance: first.clockTolerance,
    issuers: Object.freeze(issuers),
    maxTokenLength,
    jwksTimeout: duration(input.jwksTimeout, DEFAULTS.jwksTimeout, "jwksTimeout", names),
    jwksCooldown: duration(input.jwksCooldown, DEFAULTS.jwksCooldown, "jwksCooldown", names),
    jwksCacheMaxAge: duration(input.jwksCacheMaxAge, DEFAULTS.jwksCacheMaxAge, "jwksCacheMaxAge", names),
    realm: input.realm,
    socketExpiry: flag(input.socketExpiry, DEFAULTS.socketExpiry, "socketExpiry", names),
    expiryLeadTime: duration(input.expiryLeadTime, DEFAULTS.expiryLeadTime, "expiryLeadTime", names, false),
    refreshLimit: duration(input.refreshLimit, DEFAULTS.refreshLimit, "refreshLimit", names),
    refreshWindow: duration(input.refreshWindow, DEFAULTS.refreshWindow, "refreshWindow", names),
    provisionTimeout: duration(input.provisionTimeout, DEFAULTS.provisionTimeout, "provisionTimeout", names),
    jwksStaleIfError: duration(input.jwksStaleIfError, DEFAULTS.jwksStaleIfError, "jwksStaleIfError", names),
    tokenCache: tokenCacheOptions(input.tokenCache, names),
    provisionCacheTtl: duration(input.provisionCacheTtl, DEFAULTS.provisionCacheTtl, "provisionCacheTtl", names),
    revocationTtl: revocationTtlOf(input.revocationTtl, issuers, names),
  };
  Object.freeze(config);
  normalized.add(config);
  return config;
}

/**
 * How long a revocation must hold: while a token issued before it could still
 * be accepted. Exact when every issuer bounds token age (`maxTokenAge`).
 */
function revocationTtlOf(value: unknown, issuers: readonly OidcIssuerConfig[], names: Names): number {
  if (value !== undefined) {
    const ttl = duration(value, DEFAULTS.revocationTtl, "revocationTtl", names, false);
    if (ttl === 0) throw new OidcConfigError(label("revocationTtl", names), "must be positive");
    return ttl;
  }
  let longest = 0;
  for (const issuer of issuers) {
    if (issuer.maxTokenAge === undefined) return DEFAULTS.revocationTtl;
    longest = Math.max(longest, issuer.maxTokenAge + issuer.clockTolerance);
  }
  return longest;
}

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
  return { input: input as OidcConfigInput, names };
}

/** Read the environment into a validated config; errors name the variable. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): OidcConfig {
  const { input, names } = readEnv(env);
  return normalizeConfig(input, names);
}

// The environment is read per request (tests and apps may change it), but only
// re-validated when one of the five values changed.
let envCache: { key: string; config: OidcConfig } | undefined;

function fromEnvCached(): OidcConfig {
  const key = ENV_NAMES.map((name) => process.env[name] ?? "\u0000").join("\u0001");
  if (envCache?.key !== key) envCache = { key, config: configFromEnv() };
  return envCache.config;
}

/** What a manager returned, validated: a normalised config is returned as is, anything else is recognised or normalised once. */
function fromManager(value: unknown, source: string): OidcConfig {
  if (value === null || typeof value !== "object") throw new OidcConfigError(source, "must return a config object");
  return normalizeConfig(value as OidcConfigInput);
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
