/**
 * The Socket.IO rooms an authenticated socket joins, so that a revocation is
 * one broadcast through the namespace's adapter — on one node with the
 * in-memory adapter, on every node with `@socket.io/redis-adapter`.
 *
 * Few rooms per socket (each is a name, a Set in the adapter and an entry in
 * `socket.rooms`): a plain socket joins only `oidc:iss-sub:<iss>:<sub>`;
 * `oidc:user:<userId>` is added only when a users manager mapped the `sub` to
 * another id, and a token with a `sid` adds `oidc:iss-sid:<iss>:<sid>` plus
 * the one room shared by every such socket, `oidc:with-sid` (so "without sid"
 * is `.except(oidcRoom.withSid)`). Queries by `sub` or `sid` alone are unions
 * over the configured issuers (see `OidcSessionManager`).
 *
 * Values are percent-encoded (`encodeURIComponent`): an encoded value has no
 * `:` (nor `#`, which the Redis adapter uses in channel names), so
 * `oidc:<kind>:<value>[:<value>]` cannot be confused across kinds or values
 * (kinds contain no `:` either).
 */
import type { OidcUserContext } from "../types.js";

/**
 * Percent-encode; when nothing needed encoding, the value itself (the token's
 * own string, already in memory) rather than the equal copy
 * `encodeURIComponent` returns.
 */
function enc(value: string): string {
  const encoded = encodeURIComponent(value);
  return encoded === value ? value : encoded;
}

/**
 * `oidc:<kind>:<encoded iss>:` by issuer: every socket of an issuer shares
 * one prefix string (a room name is then one small string joined to it).
 * Bounded: cleared when full, so unusual issuer values cannot grow it.
 */
const subPrefixes = new Map<string, string>();
const sidPrefixes = new Map<string, string>();
const PREFIXES = 64;

function prefixOf(cache: Map<string, string>, kind: string, iss: string): string {
  let prefix = cache.get(iss);
  if (prefix === undefined) {
    if (cache.size >= PREFIXES) cache.clear();
    cache.set(iss, (prefix = `${kind}${enc(iss)}:`));
  }
  return prefix;
}

/** Room names, for apps that want to address sockets themselves (`io.of(ns).to(oidcRoom.issuerSub(iss, sub))`). */
export const oidcRoom = Object.freeze({
  /**
   * Sockets whose local user id (users manager) is `userId` — only when it
   * differs from the token's `sub`; a socket whose user id is its `sub` is
   * addressed by `issuerSub(iss, sub)`.
   */
  user: (userId: string): string => `oidc:user:${enc(userId)}`,
  /** Sockets whose token's `sub` is `sub` and was issued by `iss`. */
  issuerSub: (iss: string, sub: string): string => prefixOf(subPrefixes, "oidc:iss-sub:", iss) + enc(sub),
  /** Sockets whose token carries `sid` and was issued by `iss`. */
  issuerSid: (iss: string, sid: string): string => prefixOf(sidPrefixes, "oidc:iss-sid:", iss) + enc(sid),
  /** Every socket whose token carries a `sid` (one shared room: a socket leaves it when a refresh drops the `sid`). */
  withSid: "oidc:with-sid",
});

/**
 * Fallback for a context without `iss` (never the case for a verified token):
 * the socket's `sub`, any issuer. Not public: it is normally empty.
 */
export function subRoom(sub: string): string {
  return `oidc:sub:${enc(sub)}`;
}

/** The token's `sid` claim when it is a non-empty string. */
export function sidOf(context: OidcUserContext): string | undefined {
  const sid = context.claims?.["sid"];
  return typeof sid === "string" && sid !== "" ? sid : undefined;
}

/** The token's `iss` claim when it is a non-empty string. */
export function issOf(context: OidcUserContext): string | undefined {
  const iss = context.claims?.["iss"];
  return typeof iss === "string" && iss !== "" ? iss : undefined;
}

/** Every room a socket with this context belongs to. */
export function roomsOf(context: OidcUserContext): string[] {
  const iss = issOf(context);
  const rooms = [iss === undefined ? subRoom(context.sub) : oidcRoom.issuerSub(iss, context.sub)];
  if (context.userId !== context.sub) rooms.push(oidcRoom.user(context.userId));
  const sid = sidOf(context);
  if (sid !== undefined) {
    if (iss !== undefined) rooms.push(oidcRoom.issuerSid(iss, sid));
    rooms.push(oidcRoom.withSid);
  }
  return rooms;
}
