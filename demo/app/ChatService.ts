import { BaseService } from "ioserver";
import type { Socket } from "socket.io";
import "ioserver-oidc"; // types socket.auth, socket.userId, … in guarded namespaces

type Ack = (reply: { ok: true } | { ok: false; error: string }) => void;

export interface ChatMessage {
  from: string;
  userId: string;
  text: string;
  /** Epoch ms. */
  at: number;
}

/**
 * The `/chat` namespace, guarded by OidcSocketMiddleware: every public method
 * is an event, and by the time one runs the socket carries the caller's
 * context — kept current by in-band refreshes, so `socket.auth.name` is always
 * the latest token's.
 */
export class ChatService extends BaseService {
  /** `message` { text } → `chat:message` to everyone in /chat, the sender included. */
  async message(socket: Socket, data: { text?: unknown } | undefined, ack?: Ack) {
    const text = typeof data?.text === "string" ? data.text.trim() : "";
    if (text.length < 1 || text.length > 500) return ack?.({ ok: false, error: "text must be 1 to 500 characters" });
    const message: ChatMessage = { from: socket.auth.name ?? socket.userId, userId: socket.userId, text, at: Date.now() };
    this.appHandle.send({ namespace: "chat", event: "chat:message", data: message });
    ack?.({ ok: true });
  }
}
