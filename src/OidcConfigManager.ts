import { BaseManager } from "ioserver";
import type { AppHandle } from "ioserver";
import { configFromEnv, normalizeConfig } from "./lib/config.js";
import type { OidcConfig, OidcConfigInput } from "./types.js";

/**
 * Register as `oidcConfig`. Reads `AUTH_SERVICE_URL`, `AUTH_SERVICE_APP_SLUG`
 * (required), `AUTH_SERVICE_JWKS_URI`, `AUTH_SERVICE_ISSUER`,
 * `AUTH_SERVICE_AUDIENCE` (optional), or the options given to
 * `OidcConfigManager.configure({...})`; validates them once and freezes the
 * result. A missing or malformed value makes `start()` fail with an error
 * naming the variable, and every request fail closed with
 * `ERR_AUTH_MISCONFIGURED`.
 */
export class OidcConfigManager extends BaseManager {
  /** Options given through `configure()`; `undefined` reads the environment. */
  protected static readonly options: OidcConfigInput | OidcConfig | undefined = undefined;

  private config: OidcConfig | undefined;

  /**
   * A manager class with explicit options instead of the environment:
   * `server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure({ ... }) })`.
   * The options are validated now, so a mistake surfaces at start-up.
   */
  static configure(options: OidcConfigInput): typeof OidcConfigManager {
    const validated = normalizeConfig(options);
    return class ConfiguredOidcConfigManager extends OidcConfigManager {
      protected static override readonly options = validated;
    };
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
  }

  /** Validate the configuration and log, once, what this server trusts. */
  async start(): Promise<void> {
    const config = this.getConfig();
    for (const issuer of config.issuers) {
      this.appHandle.log(
        6,
        `[ioserver-oidc] trusting issuer ${issuer.issuer}, audience ${issuer.audience.join(", ")}, keys from ${issuer.jwksUri ?? "discovery"}, claims ${issuer.claimMapping}${issuer.strict ? ", strict" : ""}`,
      );
    }
  }

  /** The frozen, validated configuration. Throws `OidcConfigError` (naming the variable) when it is invalid. */
  getConfig(): OidcConfig {
    if (this.config === undefined) {
      const preset = (this.constructor as typeof OidcConfigManager).options;
      this.config = preset === undefined ? configFromEnv() : normalizeConfig(preset as OidcConfigInput);
    }
    return this.config;
  }
}
