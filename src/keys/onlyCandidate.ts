import { isUsableJwk } from "../jwt/usableKey.js";
import type { KeySetSnapshot, StoredKey } from "./remoteKeySet.js";

/**
 * The one published key jose would consider for this token (jose verifies
 * only when there is exactly one, and only then may the fast path run):
 * undefined when there is none, null when there are several.
 */
export function onlyCandidate(snapshot: KeySetSnapshot, alg: string, kid: unknown): StoredKey | null | undefined {
  let found: StoredKey | undefined;
  const keys = snapshot.keys;
  // Indexed: called for every token verified, and a for-of loop here allocated an iterator each time.
  for (let i = 0; i < keys.length; i++) {
    const stored = keys[i]!;
    if (!isUsableJwk(stored.jwk, alg, kid)) continue;
    if (found !== undefined) return null;
    found = stored;
  }
  return found;
}
