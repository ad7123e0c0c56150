/**
 * Keys and a JWKS server under the test's control: real keys generated per
 * run, a real HTTP server on 127.0.0.1 that counts hits and misbehaves on cue.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
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

export type JwksMode = "ok" | "500" | "invalid-json" | "hang" | "not-a-jwks";

export interface JwksServer {
  url: string;
  jwksUri: string;
  hits: number;
  mode: JwksMode;
  keys: JWK[];
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const hanging = new Set<ServerResponse>();
  const state = { hits: 0, mode: "ok" as JwksMode, keys };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== "/jwks") {
      res.writeHead(404).end();
      return;
    }
    state.hits++;
    switch (state.mode) {
      case "500":
        res.writeHead(500, { "content-type": "application/json" }).end('{"error":"boom"}');
        return;
      case "invalid-json":
        res.writeHead(200, { "content-type": "application/json" }).end("{ not json");
        return;
      case "not-a-jwks":
        res.writeHead(200, { "content-type": "application/json" }).end('{"hello":"world"}');
        return;
      case "hang":
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      default:
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: state.keys }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    jwksUri: `${url}/jwks`,
    get hits() {
      return state.hits;
    },
    set hits(value: number) {
      state.hits = value;
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
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
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
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...options.header } as never)
    .sign(key.privateKey);
}

export const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");
