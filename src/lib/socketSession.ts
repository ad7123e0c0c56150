/**
 * The session tracker hook-up (socket only): `appHandle.session.registerSocket`
 * after authentication, `unregisterSocket` once when the socket goes away.
 */
import type { Socket } from "socket.io";
import { OidcAuthError } from "../OidcAuthError.js";
import type { OidcAppHandle, OidcUserContext } from "../types.js";

const release = Symbol("ioserver-oidc.releaseSession");

type Tracked = Socket & { [release]?: () => void };

/**
 * Register the socket when `appHandle.session.registerSocket` exists. A
 * tracker that throws refuses the connection (`ERR_USER_PROVISION_FAILED`):
 * a socket the app cannot track is a socket it cannot revoke.
 */
export async function registerSocketSession(appHandle: OidcAppHandle, socket: Socket, context: OidcUserContext): Promise<void> {
  const session = appHandle.session as { registerSocket?: unknown; unregisterSocket?: unknown } | null | undefined;
  if (session === null || typeof session !== "object" || typeof session.registerSocket !== "function") return;
  try {
    await (session.registerSocket as (...args: unknown[]) => unknown).call(session, context.userId, socket.id, context.sub);
  } catch (error) {
    throw new OidcAuthError("ERR_USER_PROVISION_FAILED", {
      reason: `session.registerSocket threw: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
  if (typeof session.unregisterSocket !== "function") return;
  const unregister = session.unregisterSocket as (socketId: string) => unknown;
  const tracked = socket as Tracked;
  const id = socket.id;
  tracked[release] = () => {
    tracked[release] = undefined;
    socket.off("disconnect", onDisconnect);
    Promise.resolve()
      .then(() => unregister.call(session, id))
      .catch((error: unknown) => {
        try {
          appHandle.log?.(3, `[ioserver-oidc] session.unregisterSocket(${id}) failed: ${error instanceof Error ? error.message : String(error)}`);
        } catch {
          // ignore a broken logger
        }
      });
  };
  const onDisconnect = () => releaseSocketSession(socket);
  socket.once("disconnect", onDisconnect);
}

/** Unregister now (idempotent): on disconnect, or when a later guard refuses the handshake. */
export function releaseSocketSession(socket: Socket): void {
  (socket as Tracked)[release]?.();
}
