/**
 * Live sockets seen from outside: the `socket` channel's messages (see
 * diagnostics.ts). Callers check `socketChannel.hasSubscribers` first.
 */
import type { Socket } from "socket.io";
import { issOf } from "../claims/identity.js";
import { socketChannel, type OidcSocketMessage } from "../diagnostics.js";
import { contextOf } from "./socketState.js";

type Omitted<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What happened, without the socket's own fields (filled in here). */
export type SocketEvent = Omitted<OidcSocketMessage, "socketId" | "namespace" | "issuer">;

export { socketChannel };

/** Publish `event` for `socket`: its id, namespace and its token's issuer. */
export function publishSocket(socket: Socket, event: SocketEvent): void {
  const context = contextOf(socket);
  socketChannel.publish({ socketId: socket.id, namespace: socket.nsp?.name ?? "", issuer: context === undefined ? undefined : issOf(context), ...event });
}
