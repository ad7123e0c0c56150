/**
 * Decoding a compact JWS once, the way jose would accept it, for the
 * synchronous verification path (see fastVerify.ts).
 *
 * Written for the hot path: no regex, one JSON.parse per segment (none for a
 * header seen before), no closures.
 */
import { decodeHeader } from "./header.js";
import { asciiToken, segmentObject, signatureSize } from "./segment.js";

/** A compact JWS split and decoded once. */
export interface DecodedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The compact JWS itself. */
  token: string;
  /** Where its signing input (`<b64 header>.<b64 payload>`) ends: the index of its second dot. `signingInputView` (segment.ts) gives its bytes. */
  signingInputEnd: number;
  /** The signature segment (base64url); `signatureView` (segment.ts) gives its bytes. */
  signature: string;
  /** How many bytes the signature segment decodes to. */
  signatureLength: number;
}

/**
 * Three non-empty base64url segments: the shape the package requires before
 * anything else. decodeJws proves the same shape without running it (see
 * there); the regex is the reference for every token decodeJws declines.
 */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Decode a compact JWS the way jose would accept it, or undefined when jose
 * might disagree (caller then uses jose). Never throws.
 *
 * Returns undefined unless the token has the package's shape (COMPACT_JWS:
 * three non-empty base64url segments), so a caller can try this first and
 * run its own checks only when it returns undefined. The shape is proven
 * without the regex: exactly two dots, none at either end or side by side;
 * no "+" or "/"; ASCII only (asciiToken: one UTF-8 byte per character; a
 * character over U+007F takes two or more, and a two-byte string's
 * characters would otherwise reach Buffer's decoder and the latin1 signing
 * input truncated to their low byte; the check leaves the token's bytes
 * where crypto.verify reads the signing input); and each segment decoding
 * to the length its character count implies (segment.ts). `header` may be
 * a frozen object shared by every token with the same header segment.
 */
export function decodeJws(token: string): DecodedJws | undefined {
  try {
    if (typeof token !== "string") return undefined;
    const first = token.indexOf(".");
    if (first <= 0) return undefined;
    const second = token.indexOf(".", first + 1);
    if (second <= first + 1 || second >= token.length - 1 || token.indexOf(".", second + 1) !== -1) return undefined;
    if (token.indexOf("+") !== -1 || token.indexOf("/") !== -1 || !asciiToken(token)) return undefined;
    const header = decodeHeader(token.slice(0, first));
    if (header === undefined) return undefined;
    const payload = segmentObject(token.slice(first + 1, second));
    if (payload === undefined) return undefined;
    const signature = token.slice(second + 1);
    const signatureLength = signatureSize(signature);
    if (signatureLength < 0) return undefined;
    return { header, payload, token, signingInputEnd: second, signature, signatureLength };
  } catch {
    return undefined;
  }
}
