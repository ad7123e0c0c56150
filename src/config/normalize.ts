/**
 * A whole configuration validated, defaulted, normalised and frozen: the one
 * entry point (`normalizeConfig`) over the single-option validators
 * (validate.ts), the per-issuer rules (issuer.ts), the defaults (defaults.ts)
 * and the recognition of configs seen before (knownConfigs.ts).
 */
import type { OidcConfig, OidcConfigInput, OidcIssuerConfig, OidcIssuerInput } from "../types.js";
import { DEFAULTS } from "./defaults.js";
import { OidcConfigError } from "./errors.js";
import { normalizeIssuer } from "./issuer.js";
import { knownByContent, knownByIdentity, remember } from "./knownConfigs.js";
import { tokenCacheOptions } from "./tokenCacheOptions.js";
import { loggerOption, logSamplingOption } from "./logOptions.js";
import { dpopAppConfig } from "./dpopConfig.js";
import { audienceList, duration, flag, httpUrl, label, nonEmpty, stripTrailingSlashes, type Names } from "./validate.js";

/** Process-wide set, bounded by the configs: weak, the normalised configs this module made (returned as they are when given again). */
const normalized = new WeakSet<object>();
/** The default `names`, shared: a default `{}` would be allocated on every call, cached ones included. */
const NO_NAMES: Names = Object.freeze({});

/**
 * Validate, apply defaults, normalise and freeze. Throws `OidcConfigError`
 * naming the option (or the environment variable, through `names`).
 *
 * A valid `input` is frozen (see knownConfigs.ts) and the result is shared by every
 * later call with the same object or, for a plain object, with an equal one
 * among the last `CONFIG_CONTENT_CACHE_SIZE` configurations. An invalid input
 * is not frozen: it may be corrected in place.
 */
export function normalizeConfig(input: OidcConfigInput, names: Names = NO_NAMES): OidcConfig {
  if (input === lastInput) return lastConfig!;
  if (input === null || typeof input !== "object") throw new OidcConfigError("config", "must be an object");
  if (normalized.has(input)) return recent(input, input as unknown as OidcConfig);
  const same = knownByIdentity(input);
  if (same !== undefined) return recent(input, same);
  // Not remembered: an object recognised by its content is compared again on every call.
  const equal = knownByContent(input);
  if (equal !== undefined) return equal;
  const config = normalizeNew(input, names);
  remember(input, config);
  return recent(input, config);
}

/**
 * The input resolved last by identity and its config (both frozen): an app
 * passes one config object on every request and handshake, and this spares
 * the weak lookups. It keeps that one object alive until another is resolved.
 */
let lastInput: object | undefined;
let lastConfig: OidcConfig | undefined;

function recent(input: object, config: OidcConfig): OidcConfig {
  lastInput = input;
  lastConfig = config;
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
    for (const single of ["authServiceUrl", "issuer", "audience", "jwksUri", "introspection", "introspect"] as const) {
      if (!blank(input[single])) throw new OidcConfigError(`"${single}"`, 'cannot be combined with "issuers": give it inside each issuer');
    }
    appSlug = blank(input.appSlug) ? undefined : nonEmpty(input.appSlug, "appSlug", names);
    const seen = new Set<string>();
    const several = input.issuers.length > 1;
    issuers = (input.issuers as unknown[]).map((item, index) => {
      const key = (option: keyof OidcIssuerInput) => `"issuers[${index}].${option}"`;
      if (item === null || typeof item !== "object") throw new OidcConfigError(`"issuers[${index}]"`, "must be an object");
      const entry = item as OidcIssuerInput;
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
    issuers = [normalizeIssuer({ ...input, issuer, audience, jwksUri }, {}, (option) => label(option, names))];
  }

  onlyOneIntrospecting(issuers);

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
    logger: loggerOption(input.logger, names),
    logSampling: logSamplingOption(input.logSampling, names),
    dpop: dpopAppConfig(input.dpop),
  };
  Object.freeze(config);
  normalized.add(config);
  return config;
}

/** An opaque token names no issuer: it can go to one issuer only. */
function onlyOneIntrospecting(issuers: readonly OidcIssuerConfig[]): void {
  const introspecting = issuers.flatMap((issuer, index) => (issuer.introspection === undefined ? [] : [index]));
  if (introspecting.length > 1) {
    throw new OidcConfigError(`"issuers[${introspecting[1]}].introspection"`, `is not allowed: issuers[${introspecting[0]}] introspects already, and an opaque token names no issuer (at most one issuer may have an introspection block)`);
  }
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
