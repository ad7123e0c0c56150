/**
 * A real JWKS endpoint on 127.0.0.1 that counts its requests and misbehaves
 * on cue: `ok`, `503` (optionally with `Retry-After`), `500`, `hang` (never
 * answers), or `closed` (connections are destroyed at once).
 */
import { createServer, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { AddressInfo } from "node:net";

export type JwksMode = "ok" | "503" | "500" | "hang" | "closed";

export interface JwksServer {
  readonly url: string;
  readonly jwksUri: string;
  /** Requests to the JWKS path since start (or the last `resetHits()`). */
  readonly hits: number;
  /** `performance.now()` of each request since the last reset. */
  readonly hitTimes: readonly number[];
  mode: JwksMode;
  /** Seconds sent as `Retry-After` with a 503; undefined = none. */
  retryAfter: number | undefined;
  resetHits(): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: ReadonlyArray<Record<string, unknown>>): Promise<JwksServer> {
  const state = { hits: 0, hitTimes: [] as number[], mode: "ok" as JwksMode, retryAfter: undefined as number | undefined };
  const body = JSON.stringify({ keys });
  const hanging = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    if ((req.url ?? "").split("?")[0] !== "/jwks") {
      res.writeHead(404).end();
      return;
    }
    state.hits++;
    state.hitTimes.push(performance.now());
    switch (state.mode) {
      case "ok":
        res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=600" }).end(body);
        return;
      case "503":
        res
          .writeHead(503, { "content-type": "application/json", ...(state.retryAfter === undefined ? {} : { "retry-after": String(state.retryAfter) }) })
          .end('{"error":"unavailable"}');
        return;
      case "500":
        res.writeHead(500, { "content-type": "application/json" }).end('{"error":"boom"}');
        return;
      case "closed":
        req.socket.destroy();
        return;
      case "hang":
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    jwksUri: `${url}/jwks`,
    get hits() {
      return state.hits;
    },
    get hitTimes() {
      return state.hitTimes;
    },
    get mode() {
      return state.mode;
    },
    set mode(value: JwksMode) {
      state.mode = value;
    },
    get retryAfter() {
      return state.retryAfter;
    },
    set retryAfter(value: number | undefined) {
      state.retryAfter = value;
    },
    resetHits() {
      state.hits = 0;
      state.hitTimes = [];
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
