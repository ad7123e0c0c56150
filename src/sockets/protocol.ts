/**
 * The live-connection protocol between the server and `ioserver-oidc/client`.
 *
 * | event | direction | payload |
 * |---|---|---|
 * | `oidc:expiring` | server → client | `{ expiresAt }` (epoch ms) |
 * | `oidc:refresh` | client → server, with ack | `{ token, dpop? }` → `{ ok: true, expiresAt }` or `{ ok: false, code, dpopNonce? }` (`dpop`: a DPoP proof for the new token, see docs/dpop.md) |
 * | `oidc:expired` | server → client, then disconnect | `{ code: "ERR_AUTH_TOKEN_EXPIRED" }` |
 * | `oidc:revoked` | server → client, then disconnect | `{ code: "ERR_AUTH_REVOKED", reason? }`, or `{ code: "ERR_FORBIDDEN", reason }` after a refresh the namespace's guards refused, or `{ code }` (the refusal's) for a socket refused once restored by connection-state recovery |
 */
import type { Socket } from "socket.io";
import type { OidcAuthErrorCode } from "../errors.js";
import type { OidcSocketRevokedKind } from "../diagnostics.js";
import { publishSocket, socketChannel } from "./observe.js";

import { OIDC_EVENTS } from "../events.js";

export { OIDC_EVENTS };

/** Tell the client why (`oidc:expired`), then close its connection. */
export function disconnectWith(socket: Socket, event: typeof OIDC_EVENTS.expired, payload: { code: OidcAuthErrorCode }): void {
  if (socket.disconnected) return;
  if (socketChannel.hasSubscribers) publishSocket(socket, { event: "expired", code: payload.code });
  socket.emit(event, payload);
  socket.disconnect(true);
}

/** Send `oidc:revoked`, then close the connection; `kind` says why, for the `socket` channel. */
export function revokeWith(socket: Socket, payload: { code: OidcAuthErrorCode; reason?: string }, kind: OidcSocketRevokedKind): void {
  if (socket.disconnected) return;
  if (socketChannel.hasSubscribers) publishSocket(socket, { event: "revoked", code: payload.code, kind });
  socket.emit(OIDC_EVENTS.revoked, payload);
  socket.disconnect(true);
}

/** The `oidc:revoked` payload: the code, and the reason when one was given. */
export function revokedPayload(reason?: string): { code: "ERR_AUTH_REVOKED"; reason?: string } {
  return reason === undefined ? { code: "ERR_AUTH_REVOKED" } : { code: "ERR_AUTH_REVOKED", reason };
}
