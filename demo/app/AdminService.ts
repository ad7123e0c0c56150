import { BaseService } from "ioserver";
import type { Socket } from "socket.io";
import { listSessions, type SessionView } from "./sessions.js";

/** The `/admin` namespace: OidcSocketMiddleware then OidcSocketAdminMiddleware. */
export class AdminService extends BaseService {
  private pending: NodeJS.Timeout | undefined;

  /** `sessions` → ack with the live sessions. */
  async sessions(_socket: Socket, _data: unknown, ack?: (sessions: SessionView[]) => void) {
    ack?.(await listSessions(this.appHandle));
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
