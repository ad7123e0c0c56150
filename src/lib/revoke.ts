import type { OidcAppHandle } from "../types.js";
import { disconnectWith, OIDC_EVENTS } from "./protocol.js";
import { registryOf } from "./socketRegistry.js";

/** Disconnect this app's sockets of a user (by `userId` or `sub`) with `oidc:revoked`. Returns how many. */
export function revokeUserSockets(appHandle: OidcAppHandle, userIdOrSub: string, reason?: string): number {
  const sockets = registryOf(appHandle).ofUser(userIdOrSub);
  for (const socket of sockets) disconnectWith(socket, OIDC_EVENTS.revoked, reason === undefined ? { code: "ERR_AUTH_REVOKED" } : { code: "ERR_AUTH_REVOKED", reason });
  return sockets.length;
}

/** Disconnect one socket of this app with `oidc:revoked`. Returns whether it was found. */
export function revokeSocket(appHandle: OidcAppHandle, socketId: string, reason?: string): boolean {
  const socket = registryOf(appHandle).get(socketId);
  if (socket === undefined) return false;
  disconnectWith(socket, OIDC_EVENTS.revoked, reason === undefined ? { code: "ERR_AUTH_REVOKED" } : { code: "ERR_AUTH_REVOKED", reason });
  return true;
}
