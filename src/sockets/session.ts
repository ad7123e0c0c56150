/**
 * An authenticated socket joins the app's registry (and its `oidc:iss-sub:…`
 * room, plus `oidc:user:…` / `oidc:iss-sid:…` + `oidc:with-sid` when they
 * apply, through which revocations are broadcast, see `rooms.ts`)
 * and, when the app has one,
 * its session tracker: `appHandle.session.registerSocket(userId, socketId, sub)`
 * now, `unregisterSocket(socketId)` once when the socket is released.
 */
import type { Socket } from "socket.io";
import { OidcAuthError } from "../errors.js";
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { rememberServer } from "./cluster.js";
import { registeredSocket, trackSocket } from "./registry.js";
import type { TrackedSocket } from "./socketState.js";
import { withTimeout } from "../util/withTimeout.js";
import { describeError } from "../util/text.js";

/**
 * A tracker that throws refuses the connection (`ERR_USER_PROVISION_FAILED`):
 * a socket the app cannot track is a socket it cannot revoke.
 */
export function registerSocketSession(appHandle: OidcAppHandle, socket: Socket, context: OidcUserContext, config: OidcConfig): void | Promise<void> {
  rememberServer(appHandle, socket.nsp?.server);
  const trackedSocket = trackSocket(appHandle, socket, context); // also joins the socket's oidc:* rooms (see rooms.ts)

  const session = appHandle.session as { registerSocket?: unknown; unregisterSocket?: unknown } | null | undefined;
  // Without a tracker nothing waits: the handshake goes on within this call.
  if (session === null || typeof session !== "object" || typeof session.registerSocket !== "function") return;
  return registerWithTracker(appHandle, session, session.registerSocket as (...args: unknown[]) => unknown, trackedSocket, context, config);
}

async function registerWithTracker(
  appHandle: OidcAppHandle,
  session: object,
  register: (...args: unknown[]) => unknown,
  socket: TrackedSocket,
  context: OidcUserContext,
  config: OidcConfig,
): Promise<void> {
  try {
    await withTimeout(() => register.call(session, context.userId, socket.id, context.sub), config.provisionTimeout, "session.registerSocket");
  } catch (error) {
    throw new OidcAuthError("ERR_USER_PROVISION_FAILED", { reason: `session.registerSocket threw: ${describeError(error)}`, cause: error });
  }
  // Told once when the socket is released (see releaseSocket), or now if that happened meanwhile.
  registeredSocket(appHandle, socket);
}
