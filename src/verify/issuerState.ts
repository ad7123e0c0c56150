/**
 * What verification derives once from a normalised config and keeps for as
 * long as that config lives: per issuer, its key set and its fast-path
 * policy; per config, its verified-token cache. Keyed by the config objects
 * themselves (normalizeConfig hands out one object per configuration), so
 * the hot path makes no string keys and nothing outlives its config.
 */
import type { FastPolicy } from "../jwt/claims.js";
import { keySetFor } from "../keys/keySetRegistry.js";
import type { RemoteKeySet } from "../keys/remoteKeySet.js";
import type { OidcConfig, OidcIssuerConfig } from "../types.js";
import { TokenCache } from "./tokenCache.js";

export interface IssuerState {
  /**
   * The rules a token of this issuer must satisfy besides its signature.
   * Its members are jose's `JWTVerifyOptions`: the reference path passes
   * the same object to `jwtVerify`, so both paths check the same rules.
   */
  readonly policy: FastPolicy;
  /** The issuer's key set when its JWKS URI is configured; undefined when it is discovered. */
  readonly keySet: RemoteKeySet | undefined;
}

/** Process-wide cache, bounded by the configs: weak, an entry goes with its issuer config. */
const issuerStates = new WeakMap<OidcIssuerConfig, IssuerState>();

/**
 * The issuer asked about last, and its state: most tokens come from one
 * issuer, and this spares the WeakMap lookup. (It keeps that one issuer
 * config alive until another is asked about.)
 */
let lastIssuer: OidcIssuerConfig | undefined;
let lastState: IssuerState | undefined;

function policyOf(issuer: OidcIssuerConfig): FastPolicy {
  return Object.freeze({
    issuer: issuer.issuer,
    audience: issuer.audience,
    algorithms: issuer.algorithms,
    clockTolerance: issuer.clockTolerance,
    requiredClaims: Object.freeze(["exp", "sub", ...issuer.requiredClaims]),
    ...(issuer.maxTokenAge === undefined ? {} : { maxTokenAge: issuer.maxTokenAge }),
    ...(issuer.strict ? { typ: "at+jwt" } : {}),
  });
}

/**
 * The state of `issuer`, one of `config.issuers`. The key set is looked up
 * once: it stays in use by this issuer while the config lives, even when the
 * registry has since dropped it.
 */
export function issuerStateOf(issuer: OidcIssuerConfig, config: OidcConfig): IssuerState {
  if (issuer === lastIssuer) return lastState!;
  let state = issuerStates.get(issuer);
  if (state === undefined) {
    state = Object.freeze({
      policy: policyOf(issuer),
      keySet: issuer.jwksUri === undefined ? undefined : keySetFor(issuer.jwksUri, config),
    });
    issuerStates.set(issuer, state);
  }
  lastIssuer = issuer;
  lastState = state;
  return state;
}

/** Discovered key sets, by issuer config: pinned like configured ones, so the registry's bound never drops a trusted issuer's set. */
const discoveredSets = new WeakMap<OidcIssuerConfig, RemoteKeySet>();

/** The key set of a discovered issuer at `jwksUri`, kept for the issuer config while it lives. */
export function discoveredKeySet(issuer: OidcIssuerConfig, jwksUri: string, config: OidcConfig): RemoteKeySet {
  const known = discoveredSets.get(issuer);
  if (known !== undefined && known.uri === jwksUri) return known;
  const set = keySetFor(jwksUri, config);
  discoveredSets.set(issuer, set);
  return set;
}

/** Process-wide cache, bounded by the configs: weak, a token cache goes with its config. */
const tokenCaches = new WeakMap<OidcConfig, TokenCache>();

/**
 * The config asked about last and its cache: an app verifies every token
 * with one config, and this spares the WeakMap lookup on every request and
 * handshake (keeping that one config alive until another is asked about).
 */
let lastCacheConfig: OidcConfig | undefined;
let lastCache: TokenCache | undefined;

/** The verified-token cache of this config (one per config object), or undefined when turned off. */
export function tokenCacheOf(config: OidcConfig): TokenCache | undefined {
  if (config === lastCacheConfig) return lastCache;
  let cache: TokenCache | undefined;
  if (config.tokenCache !== false) {
    cache = tokenCaches.get(config);
    if (cache === undefined) tokenCaches.set(config, (cache = new TokenCache(config.tokenCache)));
  }
  lastCacheConfig = config;
  lastCache = cache;
  return cache;
}
