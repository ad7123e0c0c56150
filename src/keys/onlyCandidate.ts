import { isUsableJwk } from "../jwt/usableKey.js";
import type { KeySetSnapshot, StoredKey } from "./remoteKeySet.js";

/**
 * The one published key jose would consider for this token (jose verifies
 * only when there is exactly one, and only then may the fast path run):
 * undefined when there is none, null when there are several.
 */
export function onlyCandidate(snapshot: KeySetSnapshot, alg: string, kid: unknown): StoredKey | null | undefined {
  if (snapshot === lastSnapshot && alg === lastAlg && kid === lastKid) return lastFound;
  let found: StoredKey | null | undefined;
  const keys = snapshot.keys;
  // Indexed: called for every token verified, and a for-of loop here allocated an iterator each time.
  for (let i = 0; i < keys.length; i++) {
    const stored = keys[i]!;
    if (!isUsableJwk(stored.jwk, alg, kid)) continue;
    if (found !== undefined) {
      found = null;
      break;
    }
    found = stored;
  }
  lastSnapshot = snapshot;
  lastAlg = alg;
  lastKid = kid;
  lastFound = found;
  return found;
}

/**
 * The last question and its answer: an issuer signs its tokens with one key,
 * so most tokens ask again about the same snapshot, `alg` and `kid`. A
 * snapshot and its keys are frozen, so the answer cannot have changed.
 */
let lastSnapshot: KeySetSnapshot | undefined;
let lastAlg: string | undefined;
let lastKid: unknown;
let lastFound: StoredKey | null | undefined;
