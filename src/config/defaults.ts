/**
 * The default of every option, and the algorithms that may ever be enabled.
 */
import { TOKEN_CACHE_DEFAULTS } from "./tokenCacheOptions.js";

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
