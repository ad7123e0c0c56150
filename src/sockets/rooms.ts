/**
 * The Socket.IO rooms an authenticated socket joins, so that a revocation is
 * one broadcast through the namespace's adapter — on one node with the
 * in-memory adapter, on every node with `@socket.io/redis-adapter`.
 *
 * Few rooms per socket (each is a name, a Set in the adapter and an entry in
 * `socket.rooms`): a plain socket joins only `oidc:iss-sub:<iss>:<sub>`;
 * `oidc:user:<userId>` is added when the app's users manager gave the id, or
 * when the derived id is not the `sub` (several issuers, see `identity.ts`),
 * and a token with a `sid` adds `oidc:iss-sid:<iss>:<sid>` plus
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
import { issOf } from "../claims/identity.js";

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

/**
 * Room names, for apps that want to address sockets themselves (`io.of(ns).to(oidcRoom.issuerSub(iss, sub))`).
 *
 * The `oidc:` room prefix is reserved for this package: revocation reaches a
 * socket only through these rooms. An authenticated socket taken out of one
 * of its own `oidc:` rooms (`socket.leave`, `socketsLeave`) is put back, and
 * one put in an `oidc:` room that is not its own (`socket.join`,
 * `socketsJoin`) is taken out again; either is logged at level 4. Address
 * these rooms; do not join or leave them.
 */
export const oidcRoom = Object.freeze({
  /**
   * Sockets whose `userId` is `userId`: every socket of an app with a users
   * manager, and with several trusted issuers the derived `<iss>#<sub>` ids.
   * With one issuer and no users manager, `userId` is the `sub`: address
   * those sockets by `issuerSub(iss, sub)`.
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

/**
 * Whether a socket with this context is in the user room of its `userId`:
 * when the app has a users manager (`localIds`), or when the id is not the
 * `sub` (derived from several issuers).
 */
export function inUserRoom(context: OidcUserContext, localIds: boolean): boolean {
  return localIds || context.userId !== context.sub;
}

/**
 * Every room a socket with this context belongs to. `localIds`: the app has
 * a users manager, so `userId` is a local id (addressed by its user room even
 * when it equals the `sub`, which may be another user's subject).
 */
export function roomsOf(context: OidcUserContext, localIds: boolean): string[] {
  const iss = issOf(context);
  const rooms = [iss === undefined ? subRoom(context.sub) : oidcRoom.issuerSub(iss, context.sub)];
  if (inUserRoom(context, localIds)) rooms.push(oidcRoom.user(context.userId));
  const sid = sidOf(context);
  if (sid !== undefined) {
    if (iss !== undefined) rooms.push(oidcRoom.issuerSid(iss, sid));
    rooms.push(oidcRoom.withSid);
  }
  return rooms;
}
