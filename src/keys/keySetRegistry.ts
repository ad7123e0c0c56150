/**
 * The key sets of the process, one per JWKS URI and fetch policy, shared by
 * every middleware and configuration that names them: one fetch, one
 * back-off and one health record per provider, however many apps use it.
 */
import type { OidcConfig } from "../types.js";
import { knownJwksUri } from "./discovery.js";
import { LruMap } from "./lruMap.js";
import { RemoteKeySet } from "./remoteKeySet.js";

/** Most key sets remembered (distinct JWKS URI and fetch policy pairs). */
export const KEY_SET_REGISTRY_SIZE = 256;

/**
 * Process-wide cache: key sets by JWKS URI and fetch policy, at most
 * KEY_SET_REGISTRY_SIZE, least recently used dropped. A dropped set keeps
 * working for whoever still holds it (a verifier keeps its issuer's set); the
 * next keySetFor for that URI and policy creates a fresh one, which fetches
 * on first use.
 */
const keySets = new LruMap<string, RemoteKeySet>(KEY_SET_REGISTRY_SIZE);

/** The shared key set for this JWKS URI and the config's fetch policy. */
export function keySetFor(jwksUri: string, config: OidcConfig): RemoteKeySet {
  const id = `${jwksUri}\n${config.jwksTimeout}\n${config.jwksCooldown}\n${config.jwksCacheMaxAge}\n${config.jwksStaleIfError}`;
  let set = keySets.get(id);
  if (set === undefined) {
    set = new RemoteKeySet(jwksUri, {
      timeout: config.jwksTimeout,
      cooldown: config.jwksCooldown,
      maxAge: config.jwksCacheMaxAge,
      staleIfError: config.jwksStaleIfError,
    });
    set.issuer = config.issuers.find((issuer) => knownJwksUri(issuer) === jwksUri)?.issuer;
    keySets.set(id, set);
  }
  return set;
}
