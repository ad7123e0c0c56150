/**
 * Token extraction: pure functions, no I/O. An absent, empty or malformed
 * credential is `undefined` (no token), never an error.
 */

/** The schemes read here, lower case: matched case-insensitively (RFC 7235 section 2.1). */
const BEARER = "bearer";
/** RFC 9449 section 7.1. */
const DPOP = "dpop";
const SPACE = 0x20;

/**
 * The token of an `Authorization: Bearer <token>` value (the scheme in any
 * case, then one or more spaces; surrounding white space trimmed); any other
 * scheme, or none, gives `undefined`. Read character by character: it runs
 * for every request.
 */
export function bearerToken(header: unknown): string | undefined {
  return schemeToken(header, BEARER);
}

/** Printable ASCII other than the space: never white space to `trim()`. */
function printable(code: number): boolean {
  return code > 0x20 && code < 0x7f;
}

/**
 * The token of an `Authorization: DPoP <token>` value, read like
 * `bearerToken`. Only asked when `bearerToken` found none, so a Bearer
 * request never pays for it.
 */
export function dpopToken(header: unknown): string | undefined {
  return schemeToken(header, DPOP);
}

/** The credentials after `scheme` (ASCII letters, lower case) and its spaces, or `undefined`. */
function schemeToken(header: unknown, scheme: string): string | undefined {
  if (typeof header !== "string" || header.length <= scheme.length + 1) return undefined;
  for (let i = 0; i < scheme.length; i++) {
    // ASCII letters only: OR-ing 0x20 lower-cases them, and maps no other character onto one.
    if ((header.charCodeAt(i) | 0x20) !== scheme.charCodeAt(i)) return undefined;
  }
  let start = scheme.length;
  if (header.charCodeAt(start) !== SPACE) return undefined;
  while (header.charCodeAt(start) === SPACE) start++;
  // The usual token, printable ASCII at both ends, has nothing for trim() to remove: taken as it is.
  if (printable(header.charCodeAt(start)) && printable(header.charCodeAt(header.length - 1))) return header.slice(start);
  const token = header.slice(start).trim();
  return token === "" ? undefined : token;
}

/** The parts of a Socket.IO handshake read here. */
export interface HandshakeLike {
  auth?: unknown;
  headers?: Record<string, unknown>;
}

/** Socket.IO: `handshake.auth.token` first (a non-empty string), then the `Authorization` header. */
export function socketToken(handshake: HandshakeLike | undefined): string | undefined {
  const auth = handshake?.auth as { token?: unknown } | null | undefined;
  const token = auth !== null && typeof auth === "object" ? auth.token : undefined;
  if (typeof token === "string" && token !== "") return token;
  return bearerToken(handshake?.headers?.["authorization"]);
}

/** Socket.IO: the DPoP proof in `handshake.auth.dpop`, or `undefined` when the member is absent (anything else is for the proof check to judge). */
export function socketProof(handshake: HandshakeLike | undefined): unknown {
  const auth = handshake?.auth as { dpop?: unknown } | null | undefined;
  return auth !== null && typeof auth === "object" ? auth.dpop : undefined;
}
