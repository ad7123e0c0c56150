/**
 * The bench's hand-written Socket.IO client against a real Socket.IO server
 * on 127.0.0.1: connected, refused (with the server's message), a large
 * `auth` packet (two-byte frame length), the server's pings answered, and a
 * graceful close the server sees as a transport close.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Server, type Socket } from "socket.io";

interface SocketData {
  token: string;
}
import { handshake, textFrame } from "../../bench/clients/rawSocketIo.js";

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);

describe("bench: raw Socket.IO client", () => {
  const http = createServer();
  // Short ping interval: a connection that did not answer would be dropped within a second.
  const io = new Server<Record<string, never>, Record<string, never>, Record<string, never>, SocketData>(http, { transports: ["websocket"], pingInterval: 200, pingTimeout: 300 });
  let port = 0;
  const disconnects: string[] = [];

  before(async () => {
    io.of("/guarded").use((socket, next) => {
      const token = (socket.handshake.auth as { token?: unknown }).token;
      if (typeof token === "string" && token.startsWith("good")) return next();
      next(new Error("no entry"));
    });
    io.of("/guarded").on("connection", (socket: Socket<Record<string, never>, Record<string, never>, Record<string, never>, SocketData>) => {
      socket.data.token = (socket.handshake.auth as { token: string }).token;
      socket.on("disconnect", (reason) => disconnects.push(reason));
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    port = (http.address() as AddressInfo).port;
  });

  after(async () => {
    await io.close();
  });

  it("connects with a token the namespace accepts, and the server reads the whole auth packet", async () => {
    const token = `good-${"x".repeat(1_500)}`; // over 125 bytes: a two-byte frame length
    const outcome = await withTimeout(handshake(port, "/guarded", textFrame(`40/guarded,${JSON.stringify({ token })}`), 5_000), 6_000, "handshake");
    assert.equal(outcome.ok, true, outcome.ok ? "" : outcome.reason);
    const sockets = await io.of("/guarded").fetchSockets();
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0]!.data.token, token);
    if (outcome.ok) await outcome.connection.terminate();
  });

  it("reports a refusal with the server's message", async () => {
    const outcome = await withTimeout(handshake(port, "/guarded", textFrame(`40/guarded,${JSON.stringify({ token: "bad" })}`), 5_000), 6_000, "handshake");
    assert.deepEqual(outcome, { ok: false, reason: "44 no entry" });
  });

  it("answers the server's pings, and closes with a close frame", async () => {
    disconnects.length = 0;
    const outcome = await withTimeout(handshake(port, "/guarded", textFrame(`40/guarded,{"token":"good"}`), 5_000), 6_000, "handshake");
    assert.ok(outcome.ok);
    // Several ping intervals: without pongs the server would close it after interval + timeout (500 ms).
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal(outcome.connection.closed, false);
    assert.deepEqual(disconnects, []);
    outcome.connection.close(2_000);
    await withTimeout(
      (async () => {
        while (disconnects.length === 0 || !outcome.connection.closed) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      3_000,
      "close",
    );
    assert.deepEqual(disconnects, ["transport close"]);
  });

  it("gives up on a server that never answers", async () => {
    const { createServer: createTcpServer } = await import("node:net");
    const silent = createTcpServer((socket) => socket.on("error", () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const outcome = await withTimeout(handshake((silent.address() as AddressInfo).port, "/", textFrame("40"), 200), 2_000, "handshake");
      assert.deepEqual(outcome, { ok: false, reason: "timeout" });
    } finally {
      silent.close();
    }
  });
});
