/**
 * A small identity provider (JWKS only) that misbehaves on cue, for the fault
 * tests: real keys, a real HTTP server on 127.0.0.1, and a `mode` the test
 * switches at any time. It can rotate its keys and be stopped and started
 * again on the same port (an IdP restart), and it tracks every connection so
 * that closing it leaves nothing open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { makeKey, sign, type SigningKey } from "../helpers/keys.js";

export type IdpMode =
  /** 200 with the published key set. */
  | "ok"
  /** 200 with the published key set, after `slowMs`. */
  | "slow"
  /** Accepts the request and never answers. */
  | "hang"
  /** 500 with a JSON error body. */
  | "500"
  /** 503 with `Retry-After: <retryAfter>` (default 2). */
  | "503"
  /** 200, `content-type: application/json`, a body that is not JSON. */
  | "invalid-json"
  /** 200 with `{ "keys": [] }`. */
  | "empty";

export const ISSUER = "https://idp.faults.test";
export const AUDIENCE = "faults-app";

export interface FaultIdp {
  /** `http://127.0.0.1:<port>` (the same across restarts). */
  readonly url: string;
  readonly port: number;
  /** The JWKS URI; a distinct `variant` gives a distinct URI, hence a cold key-set cache in the package. */
  jwksUri(variant?: string): string;
  mode: IdpMode;
  /** Delay of the `slow` mode. */
  slowMs: number;
  /** `Retry-After` value of the `503` mode. Default `"2"`. */
  retryAfter: string;
  /** JWKS requests received (in any mode). */
  readonly hits: number;
  /** Epoch ms of each JWKS request received, in order. */
  readonly hitTimes: readonly number[];
  /** Requests accepted and not yet answered (`slow`, `hang`). */
  readonly pending: number;
  /** TCP connections currently open to the server. */
  readonly connections: number;
  readonly listening: boolean;
  readonly closed: boolean;
  /** The key new tokens are signed with. */
  readonly current: SigningKey;
  /** Every key ever used, published or not. */
  readonly published: SigningKey[];
  /** Sign a token (default claims: iss, aud, sub, iat, exp now + 300 s) with `key` (default: the current key). */
  token(claims?: Record<string, unknown>, key?: SigningKey, header?: Record<string, unknown>): Promise<string>;
  /** A new current key; the previous one stays published only with `keepOld`. Resolves to the previous key. */
  rotate(options?: { keepOld?: boolean }): Promise<SigningKey>;
  /** Publish exactly these keys. */
  publish(keys: SigningKey[]): void;
  /** Stop listening and destroy every open connection (the IdP goes down). */
  stop(): Promise<void>;
  /** Listen again on the same port (the IdP comes back, same keys). */
  start(): Promise<void>;
  /** Stop for good. Idempotent. */
  close(): Promise<void>;
}

/** Every IdP created in this process, so the file can check that all were closed. */
export const allIdps = new Set<FaultIdp>();

export async function startFaultIdp(options: { mode?: IdpMode; slowMs?: number } = {}): Promise<FaultIdp> {
  let current = await makeKey("RS256");
  let published: SigningKey[] = [current];
  let mode: IdpMode = options.mode ?? "ok";
  let slowMs = options.slowMs ?? 0;
  let hits = 0;
  const hitTimes: number[] = [];
  let retryAfter = "2";
  let port = 0;
  let server: Server | undefined;
  let closed = false;
  const pending = new Set<ServerResponse>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const sockets = new Set<Socket>();

  const sendKeys = (res: ServerResponse, keys: unknown[]) => {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ keys }));
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" || path !== "/jwks") {
      res.writeHead(404).end();
      return;
    }
    hits++;
    hitTimes.push(Date.now());
    switch (mode) {
      case "hang":
        pending.add(res);
        res.on("close", () => pending.delete(res));
        return;
      case "slow": {
        pending.add(res);
        res.on("close", () => pending.delete(res));
        const keys = published.map((key) => key.jwk); // what was published when the request came in
        const timer = setTimeout(() => {
          timers.delete(timer);
          pending.delete(res);
          sendKeys(res, keys);
        }, slowMs);
        timers.add(timer);
        return;
      }
      case "500":
        res.writeHead(500, { "content-type": "application/json" }).end('{"error":"internal"}');
        return;
      case "503":
        res.writeHead(503, { "content-type": "application/json", "retry-after": retryAfter }).end('{"error":"unavailable"}');
        return;
      case "invalid-json":
        res.writeHead(200, { "content-type": "application/json" }).end('{"keys": [ {"kty": "RSA", ');
        return;
      case "empty":
        sendKeys(res, []);
        return;
      default:
        sendKeys(res, published.map((key) => key.jwk));
    }
  };

  const listen = async () => {
    const next = createServer(handler);
    next.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      next.once("error", reject);
      next.listen(port, "127.0.0.1", () => {
        next.off("error", reject);
        resolve();
      });
    });
    port = (next.address() as AddressInfo).port;
    server = next;
  };

  const stop = async () => {
    const running = server;
    server = undefined;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    for (const res of pending) res.destroy();
    pending.clear();
    if (running === undefined) return;
    const done = new Promise<void>((resolve) => running.close(() => resolve()));
    // Every open connection (keep-alive or hung) is destroyed; wait (bounded) until each has emitted "close".
    running.closeAllConnections();
    for (const socket of sockets) socket.destroy();
    await done;
    const deadline = Date.now() + 2_000;
    while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  };

  await listen();
  const url = `http://127.0.0.1:${port}`;

  const idp: FaultIdp = {
    url,
    port,
    jwksUri: (variant) => `${url}/jwks${variant === undefined ? "" : `?v=${encodeURIComponent(variant)}`}`,
    get mode() {
      return mode;
    },
    set mode(value: IdpMode) {
      mode = value;
    },
    get slowMs() {
      return slowMs;
    },
    set slowMs(value: number) {
      slowMs = value;
    },
    get retryAfter() {
      return retryAfter;
    },
    set retryAfter(value: string) {
      retryAfter = value;
    },
    get hits() {
      return hits;
    },
    get hitTimes() {
      return [...hitTimes];
    },
    get pending() {
      return pending.size;
    },
    get connections() {
      return sockets.size;
    },
    get listening() {
      return server?.listening === true;
    },
    get closed() {
      return closed;
    },
    get current() {
      return current;
    },
    get published() {
      return [...published];
    },
    token(claims = {}, key = current, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      return sign(key, { iss: ISSUER, aud: AUDIENCE, sub: "user-1", iat: now, exp: now + 300, ...claims }, { header });
    },
    async rotate(rotateOptions = {}) {
      const previous = current;
      current = await makeKey("RS256");
      published = rotateOptions.keepOld === true ? [current, ...published] : [current];
      return previous;
    },
    publish(keys) {
      published = [...keys];
    },
    stop,
    async start() {
      if (closed) throw new Error("closed for good");
      if (server !== undefined) return;
      await listen();
    },
    async close() {
      closed = true;
      await stop();
    },
  };
  allIdps.add(idp);
  return idp;
}
