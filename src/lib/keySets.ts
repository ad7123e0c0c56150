/**
 * Remote key sets, one per JWKS URI (and fetch policy), shared by every
 * middleware instance in the process. jose's remote key set already shares
 * one in-flight fetch among concurrent callers, caches the set for
 * `cacheMaxAge` and re-fetches on an unknown `kid` at most once per
 * `cooldownDuration`; this module keeps one per URI and tells "the provider's
 * keys cannot be obtained" apart from "this token names no published key".
 */
import type { CryptoKey, FlattenedJWSInput, JWTHeaderParameters } from "jose";
import { loadJose } from "./jose.js";
import type { OidcConfig } from "../types.js";

type KeyResolver = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** The key set could not be obtained (timeout, network, HTTP status, bad JSON). */
export class KeySetUnavailableError extends Error {
  override readonly name = "KeySetUnavailableError";
  constructor(readonly source: string, cause: unknown, note?: string) {
    super(`${source.startsWith("discovery") ? source : `JWKS ${source}`} could not be obtained: ${describe(cause)}${note ? ` (${note})` : ""}`, { cause });
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}

/** Errors that mean the set was fetched but holds no key for this token. */
const TOKEN_SIDE_CODES = new Set(["ERR_JWKS_NO_MATCHING_KEY", "ERR_JWKS_MULTIPLE_MATCHING_KEYS"]);

const keySets = new Map<string, Promise<KeyResolver>>();

async function create(jwksUri: string, config: OidcConfig): Promise<KeyResolver> {
  const { createRemoteJWKSet } = await loadJose();
  const getKey = createRemoteJWKSet(new URL(jwksUri), {
    timeoutDuration: config.jwksTimeout,
    cooldownDuration: config.jwksCooldown,
    cacheMaxAge: config.jwksCacheMaxAge,
  });
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      // An empty set is the provider failing to publish keys, not a bad token: 503, so clients keep their token.
      if (code === "ERR_JWKS_NO_MATCHING_KEY" && (getKey.jwks()?.keys?.length ?? 0) === 0) {
        throw new KeySetUnavailableError(jwksUri, new Error("the key set is empty"));
      }
      if (typeof code === "string" && TOKEN_SIDE_CODES.has(code)) throw error;
      throw new KeySetUnavailableError(jwksUri, error);
    }
  };
}

/** The shared key resolver for this JWKS URI and the config's fetch policy. */
export function getKeyResolver(jwksUri: string, config: OidcConfig): Promise<KeyResolver> {
  const id = `${jwksUri}\n${config.jwksTimeout}\n${config.jwksCooldown}\n${config.jwksCacheMaxAge}`;
  let resolver = keySets.get(id);
  if (resolver === undefined) {
    resolver = create(jwksUri, config);
    keySets.set(id, resolver);
  }
  return resolver;
}
