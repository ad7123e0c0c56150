/**
 * The Socket.IO rooms an authenticated socket joins, so that a revocation is
 * one broadcast through the namespace's adapter — on one node with the
 * in-memory adapter, on every node with `@socket.io/redis-adapter`.
 *
 * Values are percent-encoded (`encodeURIComponent`): an encoded value has no
 * `:` (nor `#`, which the Redis adapter uses in channel names), so
 * `oidc:<kind>:<value>[:<value>]` cannot be confused across kinds or values
 * (kinds contain no `:` either, so `iss-sub` and `iss-sub-nosid` stay apart).
 */
import type { OidcUserContext } from "../types.js";

const enc = encodeURIComponent;

/** Room names, for apps that want to address a user's sockets themselves (`io.of(ns).to(oidcRoom.user(id))`). */
export const oidcRoom = Object.freeze({
  /** Sockets whose local user id (users manager) is `userId`. */
  user: (userId: string): string => `oidc:user:${enc(userId)}`,
  /** Sockets whose token's `sub` is `sub` (any issuer). */
  sub: (sub: string): string => `oidc:sub:${enc(sub)}`,
  /** Sockets whose token carries the OIDC session id `sid` (any issuer). */
  sid: (sid: string): string => `oidc:sid:${enc(sid)}`,
  /** Sockets whose token carries `sid` and was issued by `iss`. */
  issuerSid: (iss: string, sid: string): string => `oidc:iss-sid:${enc(iss)}:${enc(sid)}`,
  /** Sockets whose token's `sub` is `sub` and was issued by `iss`. */
  issuerSub: (iss: string, sub: string): string => `oidc:iss-sub:${enc(iss)}:${enc(sub)}`,
  /**
   * Sockets whose token's `sub` is `sub`, was issued by `iss` and carries no
   * `sid` (a socket leaves it when a refresh brings a `sid`, and joins it
   * when a refresh drops one).
   */
  issuerSubWithoutSid: (iss: string, sub: string): string => `oidc:iss-sub-nosid:${enc(iss)}:${enc(sub)}`,
});

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
  const rooms = [oidcRoom.user(context.userId), oidcRoom.sub(context.sub)];
  const sid = sidOf(context);
  const iss = issOf(context);
  if (iss !== undefined) rooms.push(oidcRoom.issuerSub(iss, context.sub));
  if (sid !== undefined) {
    rooms.push(oidcRoom.sid(sid));
    if (iss !== undefined) rooms.push(oidcRoom.issuerSid(iss, sid));
  } else if (iss !== undefined) {
    rooms.push(oidcRoom.issuerSubWithoutSid(iss, context.sub));
  }
  return rooms;
}
