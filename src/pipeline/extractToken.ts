/**
 * Token extraction: pure functions, no I/O. An absent, empty or malformed
 * credential is `undefined` (no token), never an error.
 */

/** `Bearer` scheme, matched case-insensitively (RFC 7235 section 2.1), then one or more spaces. */
const BEARER = /^bearer +/i;

/** The token of an `Authorization: Bearer <token>` value; any other scheme, or none, gives `undefined`. */
export function bearerToken(header: unknown): string | undefined {
  if (typeof header !== "string") return undefined;
  const match = BEARER.exec(header);
  if (match === null) return undefined;
  const token = header.slice(match[0].length).trim();
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
