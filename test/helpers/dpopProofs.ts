/**
 * DPoP proofs for tests: a proof key generated in the test, proofs signed
 * with jose, and a real IOServer with one protected route (`GET|POST
 * /api/me`) behind `OidcHttpMiddleware`.
 */
import { createHash, randomUUID } from "node:crypto";
import { BaseController } from "ioserver";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { OidcConfigManager, OidcHttpMiddleware, type OidcConfigInput } from "../../src/index.js";
import { createServerBase, routesFolder, type ServerBase } from "./app.js";

let routes: string | undefined;

class DpopApiController extends BaseController {
  async me(request: Record<string, unknown>, reply: { send(body: unknown): unknown }) {
    return reply.send({ sub: request.sub, dpopJkt: request.dpopJkt ?? null });
  }
}

/** A real IOServer on 127.0.0.1 configured with `config`, serving `/api/me`. */
export async function startDpopApp(config: OidcConfigInput): Promise<ServerBase> {
  routes ??= routesFolder("ioserver-oidc-dpop-helper-", {
    api: [
      { method: "GET", url: "/me", handler: "me" },
      { method: "POST", url: "/me", handler: "me" },
    ],
  });
  const base = await createServerBase(routes);
  base.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(config) });
  base.server.addController({ name: "api", controller: DpopApiController, middlewares: [OidcHttpMiddleware] });
  await base.server.start();
  return base;
}

export interface ProofKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

export async function proofKey(alg: "ES256" | "EdDSA" | "RS256" = "ES256"): Promise<ProofKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, "sha256") };
}

export const accessTokenHash = (token: string) => createHash("sha256").update(token).digest("base64url");
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export interface ProofOptions {
  htm?: string;
  htu: string;
  token?: string;
  iat?: number;
  jti?: string;
  nonce?: string;
  alg?: string;
}

/** A proof signed with `key` (ES256 unless `alg` says otherwise). */
export async function signProof(key: ProofKey, options: ProofOptions): Promise<string> {
  const claims: Record<string, unknown> = { htm: options.htm ?? "GET", htu: options.htu, iat: options.iat ?? nowSeconds(), jti: options.jti ?? randomUUID() };
  if (options.token !== undefined) claims.ath = accessTokenHash(options.token);
  if (options.nonce !== undefined) claims.nonce = options.nonce;
  return new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? "ES256", typ: "dpop+jwt", jwk: key.jwk }).sign(key.privateKey);
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** `GET <base>/api/me` (or `method`) with `headers`, bounded to 8 s. */
export async function callApi(base: ServerBase, headers: Record<string, string> | [string, string][], method = "GET"): Promise<ApiResponse> {
  const response = await fetch(`${base.url}/api/me`, { method, headers, signal: AbortSignal.timeout(8_000) });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, body };
}
