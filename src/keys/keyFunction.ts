/**
 * The key sets as jose `jwtVerify` key functions: the reference path, with
 * the store's fetch policy in front of jose's local key selection.
 */
import type { FlattenedJWSInput, JWTHeaderParameters } from "jose";
import type { OidcConfig } from "../types.js";
import { keySetFor } from "./keySetRegistry.js";
import { KeySetUnavailableError } from "./keySetUnavailableError.js";
import type { KeySetLog, KeySetSnapshot, RemoteKeySet } from "./remoteKeySet.js";

/** Errors from jose's key selection that mean "this token names no (single) published key". */
const TOKEN_SIDE_CODES = new Set(["ERR_JWKS_NO_MATCHING_KEY", "ERR_JWKS_MULTIPLE_MATCHING_KEYS"]);

/**
 * A jose key function over a snapshot: an unknown `kid` triggers one
 * cooldown-limited re-fetch; an empty set is "unavailable", not a bad token.
 */
export function keyFunction(set: RemoteKeySet, first: KeySetSnapshot, log?: KeySetLog) {
  return async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<never> => {
    let snapshot = first;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await snapshot.local(header, token)) as never;
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (code === "ERR_JWKS_NO_MATCHING_KEY" && attempt === 0) {
          const next = await set.refreshForUnknownKid(snapshot, log);
          if (next !== snapshot) {
            snapshot = next;
            continue;
          }
        }
        if (code === "ERR_JWKS_NO_MATCHING_KEY" && snapshot.keys.length === 0) {
          throw new KeySetUnavailableError(set.uri, new Error("the key set is empty"));
        }
        if (typeof code === "string" && TOKEN_SIDE_CODES.has(code)) throw error;
        throw new KeySetUnavailableError(set.uri, error);
      }
    }
  };
}

/**
 * A jose `jwtVerify` key function for this JWKS URI, for callers that verify
 * with jose alone (the back-channel logout route): fetch policy, back-off,
 * stale-if-error and unknown-`kid` re-fetch included. Rejects with `KeySetUnavailableError`
 * when the keys cannot be obtained.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- documented to reject (not throw) when the keys cannot be obtained; async keeps a synchronous throw a rejection
export async function getKeyResolver(jwksUri: string, config: OidcConfig, log?: KeySetLog) {
  const set = keySetFor(jwksUri, config);
  return async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<never> => keyFunction(set, await set.keys(log), log)(header, token);
}
