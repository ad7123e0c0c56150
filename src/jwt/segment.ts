/**
 * Base64url segments of a compact JWS, decoded the way jose decodes them, or
 * not at all: every function here answers undefined where jose's decoder
 * might read the segment differently, so the caller defers to jose.
 */
import { isUtf8 } from "node:buffer";

/**
 * How many bytes a base64url segment of `chars` characters decodes to, or -1
 * for a length ≡ 1 (mod 4): jose decodes with `atob` (or
 * `Uint8Array.fromBase64`, loose), which throws on it where Buffer silently
 * drops the last character, so such a segment defers.
 *
 * Decoding a segment must produce exactly this many bytes, which proves its
 * alphabet: the caller has made sure it is ASCII without "+" or "/" (the two
 * standard-base64 characters Buffer also decodes), and Buffer skips every
 * other character outside the alphabet (and stops at "="), which yields
 * fewer bytes. Otherwise Buffer and jose produce the same bytes, ignoring the
 * unused low bits of the last character (so a signature whose last character
 * differs only in those bits decodes, and verifies, the same in both: jose
 * accepts it, and so does this path).
 */
function decodedSize(chars: number): number {
  return (chars & 3) === 1 ? -1 : (chars * 3) >>> 2;
}

/** Bytes of one base64url segment, or undefined when jose's decoder might read it differently or it holds a character outside the alphabet (see decodedSize). */
export function segmentBytes(segment: string): Buffer | undefined {
  const size = decodedSize(segment.length);
  if (size < 0) return undefined;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.length === size ? bytes : undefined;
}

/**
 * Where `crypto.verify` reads a token's bytes from: the signing input at the
 * start, the signature after it. crypto.verify is synchronous and reads them
 * at once, so one buffer serves every token, and the views it is given are
 * plain Uint8Arrays (cheaper to make than Buffers). Inputs larger than their
 * region get buffers of their own.
 */
const SIGNING_INPUT_ROOM = 16 * 1024;
const SIGNATURE_ROOM = 2 * 1024;
const verifyScratch = Buffer.allocUnsafe(SIGNING_INPUT_ROOM + SIGNATURE_ROOM);
const scratchBuffer = verifyScratch.buffer;
const scratchOffset = verifyScratch.byteOffset;
/** The signing-input region, for TextEncoder.encodeInto. */
const inputRegion = new Uint8Array(scratchBuffer, scratchOffset, SIGNING_INPUT_ROOM);
const asciiEncoder = new TextEncoder();

/**
 * The segment whose bytes the signature region holds, or undefined. Every
 * write to the region goes through signatureSize, which sets it.
 */
let signatureHeld: string | undefined;

/**
 * The size in bytes of a signature segment, or -1 where segmentBytes answers
 * undefined. Decodes it into the signature region, where signatureView finds
 * it.
 */
export function signatureSize(segment: string): number {
  signatureHeld = undefined;
  const size = decodedSize(segment.length);
  if (size < 0) return -1;
  if (size > SIGNATURE_ROOM) return segmentBytes(segment) === undefined ? -1 : size;
  if (verifyScratch.write(segment, SIGNING_INPUT_ROOM, "base64url") !== size) return -1;
  signatureHeld = segment;
  return size;
}

const NO_BYTES = new Uint8Array(0);

/**
 * The views handed out are windows of the scratch buffer, made once per
 * length and reused (the bytes behind them are rewritten for each token):
 * the signature's for its last length (one per key size), the signing
 * input's by length. Process-wide cache, bounded: at most INPUT_VIEWS views
 * of the signing input, cleared when full.
 */
let signatureViewSize = -1;
let signatureViewBytes = NO_BYTES;
const inputViews = new Map<number, Uint8Array>();
const INPUT_VIEWS = 64;

/**
 * The bytes of a signature segment signatureSize accepted, valid until the
 * next call of anything in this module: pass them to crypto.verify at once.
 * (A segment decoded before a wait is decoded again here: another token may
 * have taken the region meanwhile.)
 */
export function signatureView(segment: string): Uint8Array {
  const size = decodedSize(segment.length);
  if (size > SIGNATURE_ROOM) return segmentBytes(segment) ?? NO_BYTES;
  if (signatureHeld !== segment && signatureSize(segment) < 0) return NO_BYTES;
  if (size !== signatureViewSize) {
    signatureViewBytes = new Uint8Array(scratchBuffer, scratchOffset + SIGNING_INPUT_ROOM, size);
    signatureViewSize = size;
  }
  return signatureViewBytes;
}

/**
 * The token whose characters the signing-input region holds (all of them,
 * one byte each), or undefined. Every write to the region goes through
 * asciiToken, which sets it.
 */
let inputHeld: string | undefined;

/**
 * Whether every character of `token` is ASCII. A token that fits the
 * signing-input region is copied into it on the way (TextEncoder's copy, the
 * fastest Node has, which also tells whether any character took more than
 * one byte), where signingInputView finds it.
 */
export function asciiToken(token: string): boolean {
  inputHeld = undefined;
  if (token.length > SIGNING_INPUT_ROOM) return Buffer.byteLength(token, "utf8") === token.length;
  const { read, written } = asciiEncoder.encodeInto(token, inputRegion);
  if (read !== token.length || written !== read) return false;
  inputHeld = token;
  return true;
}

/**
 * The first `length` characters of `token` (its signing input; ASCII, checked
 * by the caller with asciiToken) as bytes, valid until the next call of
 * anything in this module: pass them to crypto.verify at once. latin1 is the
 * byte-for-byte conversion jose makes of ASCII, and what a token that is not
 * ASCII after all gets (in a buffer of its own). (A token decoded before a
 * wait is copied again here: another token may have taken the region
 * meanwhile.)
 */
export function signingInputView(token: string, length: number): Uint8Array {
  if (inputHeld !== token) asciiToken(token);
  // Not ASCII after all, or over the region.
  if (inputHeld !== token) return Buffer.from(token.slice(0, length), "latin1");
  let view = inputViews.get(length);
  if (view === undefined) {
    if (inputViews.size >= INPUT_VIEWS) inputViews.clear();
    inputViews.set(length, (view = new Uint8Array(scratchBuffer, scratchOffset, length)));
  }
  return view;
}

/** Where header and payload segments are decoded: each is turned into a string at once, before anything else can use it. */
const textScratch = Buffer.allocUnsafe(12 * 1024);

/**
 * The text of a base64url segment read the way jose reads it (the bytes as
 * strict UTF-8), or undefined when that fails or jose might read it
 * differently. Buffer's UTF-8 decoding replaces every invalid sequence with
 * U+FFFD (documented for `buf.toString`), so a text without U+FFFD came from
 * valid UTF-8; one with it may still be valid (an encoded U+FFFD), and the
 * bytes themselves are checked. (jose's decoder also strips a leading BOM,
 * which Buffer keeps: JSON.parse then fails and we defer, which is safe.)
 */
function segmentText(segment: string): string | undefined {
  const size = decodedSize(segment.length);
  if (size < 0) return undefined;
  if (size > textScratch.length) {
    const bytes = segmentBytes(segment);
    return bytes !== undefined && isUtf8(bytes) ? bytes.toString() : undefined;
  }
  if (textScratch.write(segment, 0, "base64url") !== size) return undefined;
  const text = textScratch.toString("utf8", 0, size);
  return !text.includes("\uFFFD") || isUtf8(textScratch.subarray(0, size)) ? text : undefined;
}

/** JSON object from a base64url segment, read the way jose does (fatal UTF-8, plain object), or undefined. Throws when the text is not JSON. */
export function segmentObject(segment: string): Record<string, unknown> | undefined {
  const text = segmentText(segment);
  if (text === undefined) return undefined;
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}
