import { BaseService } from "ioserver";
import type { Socket } from "socket.io";
import "ioserver-oidc"; // socket.userId and friends are typed
import { disableUser, disconnectSession, enableUser, type AdminResult } from "./adminActions.js";
import { listSessions, type SessionView } from "./sessions.js";

/** The `/admin` namespace: OidcSocketMiddleware then OidcSocketAdminMiddleware. */
export class AdminService extends BaseService {
  private pending: NodeJS.Timeout | undefined;

  /** `sessions` → ack with the live sessions. */
  async sessions(_socket: Socket, _data: unknown, ack?: (sessions: SessionView[]) => void) {
    ack?.(await listSessions(this.appHandle));
  }

  /** `disableUser` `{ userId }` → ack `{ status, body }`; the user's sockets are closed with `oidc:revoked`. */
  async disableUser(socket: Socket, data: { userId?: unknown } | undefined, ack?: (result: AdminResult) => void) {
    ack?.(await disableUser(this.appHandle, data?.userId, socket.userId));
  }

  /** `enableUser` `{ userId }` → ack `{ status, body }`. */
  async enableUser(_socket: Socket, data: { userId?: unknown } | undefined, ack?: (result: AdminResult) => void) {
    ack?.(await enableUser(this.appHandle, data?.userId));
  }

  /** `disconnectSession` `{ socketId }` → ack `{ status, body }`. ("disconnect" itself is reserved by Socket.IO.) */
  async disconnectSession(_socket: Socket, data: { socketId?: unknown } | undefined, ack?: (result: AdminResult) => void) {
    ack?.(await disconnectSession(this.appHandle, data?.socketId));
  }

  /**
   * Pushes `admin:sessions` to every admin socket; server.ts calls it when a
   * socket connects or disconnects. Calls within 50 ms are coalesced, which
   * also lets the session manager's own disconnect bookkeeping finish first.
   * (A leading underscore keeps IOServer from exposing it as an event.)
   */
  _publishSessions(): void {
    if (this.pending !== undefined) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      listSessions(this.appHandle).then(
        (sessions) => this.appHandle.send({ namespace: "admin", event: "admin:sessions", data: sessions }),
        (error: unknown) => this.appHandle.log(3, `[demo] cannot list sessions: ${String(error)}`),
      );
    }, 50);
  }

  _stop(): void {
    clearTimeout(this.pending);
    this.pending = undefined;
  }
}
