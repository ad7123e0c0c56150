/**
 * A Socket.IO handshake over a bare TCP socket, for the load generator: the
 * WebSocket upgrade written as one fixed request, Engine.IO v4 / Socket.IO v5
 * packets in WebSocket text frames built by hand, the server's frames read by
 * a small parser. No HTTP client, no WebSocket library, no per-connection key
 * or mask generation and no check of the server's accept value: what a real
 * client does beyond the packets costs the generator CPU and tells the
 * server nothing, and the server must stay the bottleneck of what is
 * measured. The server sees an ordinary WebSocket client.
 *
 * Client frames must be masked (RFC 6455 section 5.3); they are, with the
 * masking key 0, so a payload goes as it is and a frame can be built once.
 * Bench code only: it assumes a cooperating server on 127.0.0.1 (unfragmented
 * server frames; extensions, which are never offered, never in use).
 */
import { connect, type Socket } from "node:net";

/** A fixed `Sec-WebSocket-Key` (16 bytes, base64): its answer is not checked. */
const KEY = "AAAAAAAAAAAAAAAAAAAAAA==";

const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** A masked client frame (key 0) with this opcode and payload. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.alloc(head + 4 + length); // the four key bytes stay 0
  frame[0] = 0x80 | opcode;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, head + 4);
  return frame;
}

/** A masked text frame carrying `text`. */
export function textFrame(text: string): Buffer {
  return clientFrame(OP_TEXT, Buffer.from(text, "utf8"));
}

const PONG = textFrame("3"); // Engine.IO pong, the answer to its ping "2"
const CLOSE = clientFrame(OP_CLOSE, Buffer.from([0x03, 0xe8])); // status 1000
const HEADERS_END = Buffer.from("\r\n\r\n", "latin1");

/** The upgrade request to a server on 127.0.0.1:`port`, made once per port. */
const upgrades = new Map<number, Buffer>();
function upgradeRequest(port: number): Buffer {
  let request = upgrades.get(port);
  if (request === undefined) {
    request = Buffer.from(
      `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`,
      "latin1",
    );
    upgrades.set(port, request);
  }
  return request;
}

/** An established Socket.IO connection: kept (answering the server's pings) until closed. */
export class RawConnection {
  constructor(private readonly socket: Socket) {}

  /** Whether the TCP connection has ended. */
  get closed(): boolean {
    return this.socket.destroyed;
  }

  /**
   * End it the way a client does: a close frame, then the server's close
   * frame and TCP FIN (the server ends the TCP connection). Not by
   * destroying the socket: an abrupt end makes the server build ECONNRESET
   * errors, work that has nothing to do with either side measured. A server
   * that does not answer is dropped after `boundMs`.
   */
  close(boundMs = 5_000): void {
    if (this.socket.destroyed) return;
    this.socket.write(CLOSE);
    const bound = setTimeout(() => this.socket.destroy(), boundMs).unref();
    this.socket.once("close", () => clearTimeout(bound));
  }

  /** Drop the TCP connection now; resolves once it is closed. */
  terminate(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once("close", () => resolve());
      this.socket.destroy();
    });
  }
}

export type Outcome = { ok: true; connection: RawConnection } | { ok: false; reason: string };

/**
 * One handshake with namespace `ns` on 127.0.0.1:`port`: the upgrade, the
 * `0{...}` open packet, then `packet` (the frame of the client's
 * `40/ns,{...}` packet, made by `textFrame`), then `40/ns,{"sid":...}`
 * (connected) or `44/ns,{...}` (refused, its message as the reason). Never
 * rejects.
 */
export function handshake(port: number, ns: string, packet: Buffer, timeoutMs: number): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const prefix = ns === "/" ? "" : `${ns},`;
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    let stage: "upgrade" | "open" | "namespace" | "done" = "upgrade";
    let pending: Buffer | undefined;
    const timer = setTimeout(() => finish({ ok: false, reason: "timeout" }), timeoutMs);
    const finish = (outcome: Outcome) => {
      if (stage === "done") return;
      stage = "done";
      clearTimeout(timer);
      if (!outcome.ok) socket.destroy();
      resolve(outcome);
    };
    const onText = (text: string) => {
      if (text === "2") {
        socket.write(PONG);
        return;
      }
      if (stage === "open") {
        if (text[0] !== "0") return finish({ ok: false, reason: `unexpected first packet ${text.slice(0, 40)}` });
        stage = "namespace";
        socket.write(packet);
        return;
      }
      if (stage !== "namespace") return;
      if (text.startsWith(`40${prefix}`)) return finish({ ok: true, connection: new RawConnection(socket) });
      if (text.startsWith(`44${prefix}`)) {
        let reason = text.slice(2 + prefix.length);
        try {
          reason = String((JSON.parse(reason) as { message?: unknown }).message);
        } catch {
          // keep the raw text
        }
        return finish({ ok: false, reason: `44 ${reason}` });
      }
      finish({ ok: false, reason: `unexpected packet ${text.slice(0, 40)}` });
    };
    /** Consume what `data` holds: the upgrade answer, then whole frames; keep a partial one. */
    const onData = (chunk: Buffer) => {
      let data = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      pending = undefined;
      if (stage === "upgrade") {
        const end = data.indexOf(HEADERS_END);
        if (end < 0) {
          pending = data;
          return;
        }
        const status = data.toString("latin1", 0, Math.min(end, 12));
        if (status !== "HTTP/1.1 101") return finish({ ok: false, reason: `upgrade refused: ${data.toString("latin1", 0, Math.min(end, 40))}` });
        stage = "open";
        data = data.subarray(end + HEADERS_END.length);
      }
      let at = 0;
      while (data.length - at >= 2) {
        const opcode = data[at]! & 0x0f;
        let length = data[at + 1]! & 0x7f;
        let start = at + 2;
        if (length === 126) {
          if (data.length - at < 4) break;
          length = data.readUInt16BE(at + 2);
          start = at + 4;
        } else if (length === 127) {
          if (data.length - at < 10) break;
          length = Number(data.readBigUInt64BE(at + 2));
          start = at + 10;
        }
        if (data.length < start + length) break;
        const payload = data.subarray(start, start + length);
        at = start + length;
        if (opcode === OP_TEXT) onText(payload.toString("utf8"));
        else if (opcode === OP_PING) socket.write(clientFrame(OP_PONG, payload));
        else if (opcode === OP_CLOSE) {
          finish({ ok: false, reason: "closed before the namespace answered" });
          socket.end();
          return;
        }
      }
      if (at < data.length) pending = data.subarray(at);
    };
    socket.on("connect", () => socket.write(upgradeRequest(port)));
    socket.on("data", onData);
    socket.on("error", (error) => finish({ ok: false, reason: error.message }));
    socket.on("close", () => finish({ ok: false, reason: "closed before the namespace answered" }));
  });
}
