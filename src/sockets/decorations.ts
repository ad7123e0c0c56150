/**
 * `socket.sub`, `socket.userId`, `socket.userRole`, `socket.roles`,
 * `socket.permissions`, `socket.features`, `socket.scopes` and `socket.auth`
 * on authenticated sockets: accessors on the sockets' prototype that read the
 * socket's context (`socket.data.auth`, see `socketState.ts`), nothing per
 * socket (see `pipeline/decorations.ts`).
 */
import { prototypeDecorations } from "../pipeline/decorations.js";
import { contextOf } from "./socketState.js";

/** Make the socket's context (already set with `setContext`) readable on the socket. */
export const decorateSocket = prototypeDecorations(contextOf);
