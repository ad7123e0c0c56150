import { BaseService } from "ioserver";
import type { Socket } from "socket.io";
import "ioserver-oidc";

/** Each public method is a Socket.IO event; the socket is authenticated before any of them runs. */
export class ChatService extends BaseService {
  async message(socket: Socket, data: { text?: unknown }, callback?: (reply: unknown) => void) {
    const text = typeof data?.text === "string" ? data.text.slice(0, 500) : "";
    socket.broadcast.emit("chat:message", { from: socket.userId, role: socket.userRole, text });
    callback?.({ sent: true, from: socket.userId });
  }
}
