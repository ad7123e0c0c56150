/**
 * Keys and a JWKS server under the test's control: real keys generated per
 * run, a real HTTP server on 127.0.0.1 that counts hits and misbehaves on cue.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export async function makeKey(alg: "RS256" | "ES256" | "PS256" | "EdDSA" | "ES384", kid: string = randomUUID()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicKey, jwk };
}

/**
 * How the JWKS endpoint answers: `"ok"` the key set; `"500"` an error;
 * `"invalid-json"` / `"not-a-jwks"` a 200 the package cannot use; `"hang"`
 * never; `{ status, retryAfter }` that status (with a `Retry-After` header
 * when given); `{ delayMs }` the key set as published when the request came
 * in, after that delay.
 */
export type JwksMode = "ok" | "500" | "invalid-json" | "hang" | "not-a-jwks" | { status: number; retryAfter?: string } | { delayMs: number };

export interface JwksServer {
  url: string;
  jwksUri: string;
  /** JWKS requests received (settable, to count from a point on). */
  hits: number;
  /** Epoch ms of each JWKS request received, in order. */
  readonly hitTimes: readonly number[];
  mode: JwksMode;
  keys: JWK[];
  /** Close the server and every connection, answered or not. Idempotent. */
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[], mode: JwksMode = "ok"): Promise<JwksServer> {
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hitTimes: number[] = [];
  const state = { hits: 0, mode, keys };
  const json = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    if (!res.destroyed && !res.writableEnded) res.writeHead(status, { "content-type": "application/json", ...headers }).end(body);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== "/jwks") {
      res.writeHead(404).end();
      return;
    }
    state.hits++;
    hitTimes.push(Date.now());
    const current = state.mode;
    if (typeof current === "object") {
      if ("delayMs" in current) {
        const body = JSON.stringify({ keys: state.keys });
        const timer = setTimeout(() => {
          timers.delete(timer);
          json(res, 200, body);
        }, current.delayMs);
        timers.add(timer);
      } else {
        json(res, current.status, '{"error":"unavailable"}', current.retryAfter === undefined ? {} : { "retry-after": current.retryAfter });
      }
      return;
    }
    switch (current) {
      case "500":
        json(res, 500, '{"error":"boom"}');
        return;
      case "invalid-json":
        json(res, 200, "{ not json");
        return;
      case "not-a-jwks":
        json(res, 200, '{"hello":"world"}');
        return;
      case "hang":
        return;
      default:
        json(res, 200, JSON.stringify({ keys: state.keys }));
    }
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    jwksUri: `${url}/jwks`,
    get hits() {
      return state.hits;
    },
    set hits(value: number) {
      state.hits = value;
    },
    get hitTimes() {
      return [...hitTimes];
    },
    get mode() {
      return state.mode;
    },
    set mode(value: JwksMode) {
      state.mode = value;
    },
    get keys() {
      return state.keys;
    },
    set keys(value: JWK[]) {
      state.keys = value;
    },
    close() {
      closing ??= (async () => {
        for (const timer of timers) clearTimeout(timer);
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await done;
      })();
      return closing;
    },
  };
}

export interface SignOptions {
  header?: Record<string, unknown>;
}

/** Sign claims exactly as given (a claim set to undefined is dropped). */
export async function sign(key: SigningKey, claims: Record<string, unknown>, options: SignOptions = {}): Promise<string> {
  const payload = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...options.header })
    .sign(key.privateKey);
}

export const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");
