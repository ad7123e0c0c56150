/**
 * The protected header of a compact JWS: which members the fast path
 * understands, and a small cache of parsed headers.
 */
import { segmentObject } from "./segment.js";

/** Header members the fast path understands; anything else (crit, b64, jwk, jku, x5c, cty...) defers to jose. */
export function headerIsPlain(header: Record<string, unknown>): boolean {
  for (const name in header) {
    if (name !== "alg" && name !== "kid" && name !== "typ") return false;
  }
  return true;
}

/** A plain header whose values are all primitives: safe to share, frozen, between tokens. */
function cacheable(header: Record<string, unknown>): boolean {
  if (!headerIsPlain(header)) return false;
  for (const name in header) {
    const value = header[name];
    if (value !== null && typeof value === "object") return false;
  }
  return true;
}

/**
 * Parsed headers by their base64url segment. An issuer signs every token with
 * the same few headers, so this saves a decode and a JSON.parse per token.
 * Only small headers whose members are all `alg`, `kid`, `typ` with primitive
 * values are kept (anything else is decoded afresh, and fastVerify defers on
 * it anyway); they are frozen, since every token with that segment shares the
 * object. A segment is kept only once it has decoded (segment.ts's length
 * check included), so finding one proves the same of an equal segment.
 *
 * Process-wide cache, bounded: at most HEADER_CACHE_SIZE segments of at most
 * HEADER_CACHE_SEGMENT characters (about 16 KiB), cleared when full, so
 * hostile headers cannot grow it.
 */
const headerCache = new Map<string, Record<string, unknown>>();
export const HEADER_CACHE_SIZE = 64;
const HEADER_CACHE_SEGMENT = 256;

/**
 * The cached header found last, and its segment: one issuer usually signs
 * with one header, and comparing two strings costs less than hashing one for
 * the Map. The caller cuts the segment out of the token for that: `===`
 * compares memory, where `token.startsWith(lastSegment)` would read the
 * hundred-odd characters one at a time.
 */
let lastSegment: string | undefined;
let lastHeader: Record<string, unknown> | undefined;

/** The header of this segment (possibly a frozen object shared with other tokens), or undefined as segmentObject. Throws when it is not JSON. */
export function decodeHeader(segment: string): Record<string, unknown> | undefined {
  if (segment === lastSegment) return lastHeader;
  let header = headerCache.get(segment);
  if (header === undefined) {
    header = segmentObject(segment);
    if (header === undefined || segment.length > HEADER_CACHE_SEGMENT || !cacheable(header)) return header;
    if (headerCache.size >= HEADER_CACHE_SIZE) headerCache.clear();
    headerCache.set(segment, Object.freeze(header));
  }
  lastSegment = segment;
  lastHeader = header;
  return header;
}
