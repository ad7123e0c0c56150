/**
 * A local token issuer for tests and local development — never production.
 * It serves a discovery document and a JWKS on 127.0.0.1 and signs tokens
 * with keys generated at start-up, so an app's own tests exercise protected
 * routes and namespaces with real signatures.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { CryptoKey, JWK } from "jose";
import { loadJose } from "../jwt/jose.js";
import type { OidcConfigInput } from "../types.js";

/** Signing algorithms of the test issuer: one RSA and one EC P-256 key. */
export type TestIssuerAlgorithm = "RS256" | "ES256";

/** Options of {@link createTestIssuer} (tests and local development only). */
export interface TestIssuerOptions {
  /** Client id, and the default `aud` of minted tokens. Default `"test-app"`. */
  appSlug?: string;
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port. Default 0 (any free port). */
  port?: number;
  /** Path of the JWKS. Default `/api/auth/jwks` (the package's default `jwksUri`). */
  jwksPath?: string;
  /** Lifetime in seconds of minted tokens. Default 300. */
  accessTokenTtl?: number;
}

/** Options of {@link TestIssuer.mint}. */
export interface MintOptions {
  /** Signing algorithm. Default `RS256`. */
  alg?: TestIssuerAlgorithm;
  /** Override the header's `kid`. */
  kid?: string;
  /** Extra or overriding protected-header fields (e.g. `typ`). */
  header?: Record<string, unknown>;
  /** Sign with the keys from before the last `rotateKeys()`. Default `"current"`. */
  key?: "current" | "previous";
}

/**
 * A running local issuer returned by {@link createTestIssuer}. For tests and
 * local development only, never production.
 */
export interface TestIssuer {
  /** `http://<host>:<port>`, no trailing slash. */
  readonly issuer: string;
  /** `issuer` + `jwksPath`. */
  readonly jwksUri: string;
  /** Client id and default `aud`. */
  readonly appSlug: string;
  /** The port actually bound. */
  readonly port: number;
  /** Ready to pass to `OidcConfigManager.configure()` or `verifyOidcToken()`. */
  readonly config: OidcConfigInput;
  /** How many times the JWKS was served. */
  readonly jwksRequests: number;
  /**
   * Sign a token. Defaults: `iss`, `aud` = appSlug, `sub` = `"user-1"`, `iat`
   * now, `exp` now + ttl. Given claims are merged over them; a claim set to
   * `undefined` is removed.
   */
  mint(claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** New keys; the old ones leave the JWKS unless `keepPrevious`. */
  rotateKeys(options?: { keepPrevious?: boolean }): Promise<void>;
  /** A copy of the JWKS currently served. */
  publicJwks(): { keys: TestIssuerJwk[] };
  /** Stop serving and close every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * A public JSON Web Key as the test issuer serves it (RFC 7517). Declared
 * here rather than taken from jose, whose types are ES-module only: a
 * CommonJS project checking its libraries could not read them.
 */
export interface TestIssuerJwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  [member: string]: unknown;
}

interface KeyPair {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}
type KeyRing = Record<TestIssuerAlgorithm, KeyPair>;

async function generateRing(): Promise<KeyRing> {
  const jose = await loadJose();
  const make = async (alg: TestIssuerAlgorithm): Promise<KeyPair> => {
    const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
    const kid = randomUUID();
    return { kid, privateKey, jwk: { ...(await jose.exportJWK(publicKey)), kid, alg, use: "sig" } };
  };
  const [RS256, ES256] = await Promise.all([make("RS256"), make("ES256")]);
  return { RS256, ES256 };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body));
}

/**
 * Start a local OIDC issuer on 127.0.0.1 (port 0 = any free port) with fresh
 * RS256 and ES256 keys. For tests and local development only, never
 * production. Always `close()` it when done.
 *
 * @throws TypeError when an option is invalid (e.g. `accessTokenTtl` not a positive finite number).
 */
export async function createTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const appSlug = options.appSlug ?? "test-app";
  const host = options.host ?? "127.0.0.1";
  const jwksPath = options.jwksPath ?? "/api/auth/jwks";
  const ttl = options.accessTokenTtl ?? 300;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new TypeError(`createTestIssuer: "accessTokenTtl" must be a positive number of seconds, got ${String(ttl)}`);
  }
  if (typeof appSlug !== "string" || appSlug === "") throw new TypeError('createTestIssuer: "appSlug" must be a non-empty string');
  if (typeof jwksPath !== "string" || !jwksPath.startsWith("/")) throw new TypeError('createTestIssuer: "jwksPath" must start with "/"');

  let current = await generateRing();
  let previous: KeyRing | undefined;
  let published: JWK[] = [current.RS256.jwk, current.ES256.jwk];
  let jwksRequests = 0;
  let discovery: Record<string, unknown> = {};

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET") return send(res, 404, { error: "not_found" });
    if (path === jwksPath) {
      jwksRequests++;
      return send(res, 200, { keys: published });
    }
    if (path === "/.well-known/openid-configuration" || path === "/.well-known/oauth-authorization-server") {
      return send(res, 200, discovery);
    }
    return send(res, 404, { error: "not_found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const jwksUri = issuer + jwksPath;
  discovery = {
    issuer,
    jwks_uri: jwksUri,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    response_types_supported: ["code"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256", "ES256"],
  };
  const config: OidcConfigInput = Object.freeze({ authServiceUrl: issuer, appSlug, issuer, jwksUri, audience: appSlug });

  let closed: Promise<void> | undefined;

  return {
    issuer,
    jwksUri,
    appSlug,
    port,
    config,
    get jwksRequests() {
      return jwksRequests;
    },
    async mint(claims = {}, mintOptions = {}) {
      const alg = mintOptions.alg ?? "RS256";
      const ring = mintOptions.key === "previous" ? previous : current;
      if (ring === undefined) throw new Error('createTestIssuer: mint({ key: "previous" }) needs an earlier rotateKeys()');
      const key = ring[alg];
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- JavaScript callers can pass a non-string alg (e.g. a Symbol, which a template literal would throw on)
      if (key === undefined) throw new TypeError(`createTestIssuer: unsupported alg ${String(alg)} (RS256 or ES256)`);
      const now = Math.floor(Date.now() / 1000);
      const merged: Record<string, unknown> = { iss: issuer, aud: appSlug, sub: "user-1", iat: now, exp: now + ttl, ...claims };
      const payload = Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined));
      const { SignJWT } = await loadJose();
      return new SignJWT(payload)
        .setProtectedHeader({ alg, kid: mintOptions.kid ?? key.kid, typ: "JWT", ...mintOptions.header })
        .sign(key.privateKey);
    },
    async rotateKeys(rotateOptions = {}) {
      previous = current;
      current = await generateRing();
      published = [current.RS256.jwk, current.ES256.jwk];
      if (rotateOptions.keepPrevious === true) published.push(previous.RS256.jwk, previous.ES256.jwk);
    },
    publicJwks() {
      // Every served key has kty (exportJWK sets it).
      return { keys: published.map((jwk) => ({ ...jwk, kty: jwk.kty as string })) };
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
