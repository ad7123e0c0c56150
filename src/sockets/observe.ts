/**
 * Live sockets seen from outside: the `socket` channel's messages (see
 * diagnostics.ts). Callers check `socketChannel.hasSubscribers` first.
 */
import type { Socket } from "socket.io";
import { issOf } from "../claims/identity.js";
import { socketChannel, type OidcSocketMessage } from "../diagnostics.js";
import type { OidcUserContext } from "../types.js";
import { contextOf, recoveredContext } from "./socketState.js";

type Omitted<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What happened, without the socket's own fields (filled in here). */
export type SocketEvent = Omitted<OidcSocketMessage, "socketId" | "namespace" | "issuer">;

export { socketChannel };

/**
 * Publish `event` for `socket`: its id, namespace and its token's issuer (for
 * a socket restored by recovery and refused before it was admitted again,
 * the issuer of the context it came back with).
 */
export function publishSocket(socket: Socket, event: SocketEvent): void {
  const context = contextOf(socket) ?? (socket.recovered ? recoveredShape(recoveredContext(socket)) : undefined);
  socketChannel.publish({ socketId: socket.id, namespace: socket.nsp?.name ?? "", issuer: context === undefined ? undefined : issOf(context), ...event });
}

/** A recovered `socket.data.auth` that has the shape of a context (the server kept it; it was verified when the socket first connected). */
function recoveredShape(value: unknown): OidcUserContext | undefined {
  const claims = (value as { claims?: unknown } | null | undefined)?.claims;
  return claims !== null && typeof claims === "object" ? (value as OidcUserContext) : undefined;
}
