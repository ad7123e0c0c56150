import { BaseManager } from "ioserver";
import { readEnv } from "../config/fromEnv.js";
import { normalizeConfig } from "../config/normalize.js";
import { jwksUriOf, knownJwksUri } from "../keys/discovery.js";
import { keySetFor } from "../keys/keySetRegistry.js";
import type { KeySetHealth } from "../keys/remoteKeySet.js";
import type { TokenCacheStats } from "../verify/tokenCache.js";
import { tokenCacheOf } from "../verify/issuerState.js";
import { introspectionHealthOf } from "../verify/opaque.js";
import type { IntrospectionHealth } from "../introspection/createIntrospector.js";
import type { OidcConfig, OidcConfigInput } from "../types.js";
import { loggerOf } from "../pipeline/authenticate.js";
import { configuredClass } from "./configure.js";

/** One trusted issuer's key set, as `getHealth()` reports it. */
export interface OidcIssuerHealth extends Omit<KeySetHealth, "jwksUri"> {
  issuer: string;
  /** `undefined` until discovery found it. */
  jwksUri: string | undefined;
}

/** One issuer's introspection endpoint, as `getHealth()` reports it (`undefined` members until its first token). */
export interface OidcIntrospectionHealth extends Partial<IntrospectionHealth> {
  issuer: string;
  /** `closed` until a request fails; `open` while the endpoint fails (its opaque tokens get `ERR_AUTH_UNAVAILABLE`). */
  circuit: "closed" | "open";
}

/** What `OidcConfigManager#getHealth()` returns, e.g. for a readiness probe. */
export interface OidcHealth {
  /**
   * `ok`: every issuer's keys are fresh. `degraded`: some are served stale
   * (provider failing, `jwksStaleIfError`) or not fetched yet. `unavailable`:
   * some issuer has no usable keys (its tokens get `ERR_AUTH_UNAVAILABLE`).
   */
  status: "ok" | "degraded" | "unavailable";
  issuers: OidcIssuerHealth[];
  /** The verified-token cache, or `undefined` when turned off. */
  tokenCache: TokenCacheStats | undefined;
  /** Each issuer with an `introspection` block: its endpoint's state and cache. An open circuit makes `status` `unavailable`. */
  introspection: OidcIntrospectionHealth[];
}

/**
 * Register as `oidcConfig`. Reads `AUTH_SERVICE_URL`, `AUTH_SERVICE_APP_SLUG`
 * (required), `AUTH_SERVICE_JWKS_URI`, `AUTH_SERVICE_ISSUER`,
 * `AUTH_SERVICE_AUDIENCE` (optional), or the options given to
 * `OidcConfigManager.configure({...})`; validates them once. A missing or
 * malformed value makes `start()` fail with an error naming the variable,
 * and every request fail closed with `ERR_AUTH_MISCONFIGURED`.
 *
 * `getConfig()` returns the configuration as it was given;
 * `getResolvedConfig()` the validated, normalised view the package verifies
 * with.
 */
export class OidcConfigManager extends BaseManager {
  /** Options given through `configure()` (frozen); `undefined` reads the environment. */
  protected static readonly options: OidcConfigInput | OidcConfig | undefined = undefined;

  private loaded: { readonly given: Readonly<OidcConfigInput>; readonly resolved: OidcConfig } | undefined;

  /**
   * A manager class with explicit options instead of the environment:
   * `server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure({ ... }) })`.
   *
   * The options are validated now, so a mistake surfaces at start-up. Once
   * valid, `options` is frozen — with the plain objects and arrays inside it
   * (`issuers` and each entry, `audience`, `algorithms`, `requiredClaims`,
   * `tokenCache`): the package keeps verifying with what it validated, so a
   * later assignment throws a `TypeError` (in strict mode) instead of being
   * ignored. To change the configuration, register a manager whose
   * `getConfig()` returns the new object.
   */
  static configure(options: OidcConfigInput): typeof OidcConfigManager {
    normalizeConfig(options);
    return configuredClass(OidcConfigManager, options);
  }

  /**
   * Validate the configuration, log once what this server trusts, and start
   * fetching every issuer's keys in the background (start-up is not delayed;
   * the first request shares the fetch).
   */
  // eslint-disable-next-line @typescript-eslint/require-await -- IOServer awaits start(); async makes an invalid configuration a rejection there, as before
  async start(): Promise<void> {
    const config = this.getResolvedConfig();
    const log = loggerOf(this.appHandle) ?? (() => undefined);
    for (const issuer of config.issuers) {
      log(
        6,
        `[ioserver-oidc] trusting issuer ${issuer.issuer}, audience ${issuer.audience.join(", ")}, keys from ${issuer.jwksUri ?? "discovery"}, claims ${issuer.claimMapping}${issuer.strict ? ", strict" : ""}`,
      );
      jwksUriOf(issuer, config).then(
        (jwksUri) => keySetFor(jwksUri, config).prefetch(log),
        (error: unknown) => log(4, `[ioserver-oidc] prefetching keys of ${issuer.issuer}: ${error instanceof Error ? error.message : String(error)}`),
      );
    }
  }

  /**
   * Key-set freshness per issuer, the token cache's counters and each
   * introspection endpoint's state, for readiness probes and dashboards.
   * Never fetches.
   */
  getHealth(): OidcHealth {
    const config = this.getResolvedConfig();
    const now = Date.now();
    const issuers = config.issuers.map((issuer): OidcIssuerHealth => {
      const jwksUri = knownJwksUri(issuer);
      const health: KeySetHealth =
        jwksUri === undefined
          ? { jwksUri: "", state: "cold", keys: 0, fetchedAt: undefined, failures: 0, retryAt: undefined, circuit: "closed", lastError: undefined }
          : keySetFor(jwksUri, config).health(now);
      return { ...health, issuer: issuer.issuer, jwksUri };
    });
    const states = new Set(issuers.map((issuer) => issuer.state));
    const introspection = config.issuers.flatMap((issuer): OidcIntrospectionHealth[] =>
      issuer.introspection === undefined ? [] : [{ circuit: "closed", endpoint: issuer.introspection.endpoint, ...introspectionHealthOf(issuer), issuer: issuer.issuer }],
    );
    const down = introspection.some((each) => each.circuit === "open");
    const status = down || states.has("unavailable") ? "unavailable" : states.size === 1 && states.has("fresh") ? "ok" : "degraded";
    return { status, issuers, tokenCache: tokenCacheOf(config)?.stats(), introspection };
  }

  /**
   * The configuration in the shape it was given, frozen: the options passed
   * to `configure()` (that very object), or, from the environment, an object
   * with one field per variable that is set, holding the variable's value as
   * it is. A field left unset stays unset (no derived `jwksUri`), and a string
   * `audience` stays a string. Validated first: throws `OidcConfigError`
   * (naming the option or variable) when the configuration is invalid.
   */
  getConfig(): Readonly<OidcConfigInput> {
    return this.load().given;
  }

  /**
   * The validated, normalised configuration the package verifies with:
   * defaults applied, `jwksUri` derived, `audience` a list, every issuer in
   * `issuers`. Frozen, and the same object on every call. Throws
   * `OidcConfigError` (naming the option or variable) when the configuration
   * is invalid. When `getConfig()` is replaced (a subclass, or a function set
   * on the instance), this resolves what it returns.
   */
  getResolvedConfig(): OidcConfig {
    if (this.getConfig !== OidcConfigManager.prototype.getConfig) return normalizeConfig(this.getConfig());
    return this.load().resolved;
  }

  /** Read and validate once; nothing is kept when invalid, so a corrected environment is read on the next call. */
  private load(): { readonly given: Readonly<OidcConfigInput>; readonly resolved: OidcConfig } {
    if (this.loaded === undefined) {
      const preset = (this.constructor as typeof OidcConfigManager).options;
      if (preset === undefined) {
        const { input, names } = readEnv();
        this.loaded = { resolved: normalizeConfig(input, names), given: input };
      } else {
        // An already normalised config given to configure() is returned as given, too.
        this.loaded = { resolved: normalizeConfig(preset as OidcConfigInput), given: preset as Readonly<OidcConfigInput> };
      }
    }
    return this.loaded;
  }
}
