/**
 * A real `oidc-provider` (v8) that issues opaque access tokens and answers
 * token introspection (RFC 7662), on `http://127.0.0.1:<free port>`.
 *
 * - `features.clientCredentials`, `features.introspection`,
 *   `features.revocation`, `features.dPoP` (a token request with a `DPoP`
 *   proof gets a token bound to the proof's key: its introspection answer
 *   has `cnf.jkt` and `token_type: "DPoP"`); access tokens for the one API (`resource`) are
 *   opaque reference tokens (`accessTokenFormat: "opaque"`) with `aud` =
 *   `resource`, and carry the extra claims given (`roles`).
 * - One client that obtains tokens ({@link IntrospectionProvider.appClientId}),
 *   and three confidential resource-server clients that may introspect, one
 *   per client authentication method: `client_secret_basic`,
 *   `client_secret_post`, `private_key_jwt` (an ES256 key generated here).
 * - It counts the introspection requests it receives, and can be told to
 *   answer them slowly or with a status of the test's choosing.
 *
 * Everything is generated per run and kept in memory.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";

export interface IntrospectionProvider {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  readonly issuer: string;
  readonly resource: string;
  readonly introspectionEndpoint: string;
  /** Where tokens are requested: the `htu` of a token request's DPoP proof. */
  readonly tokenEndpoint: string;
  /** The client that obtains tokens (client_credentials, client_secret_basic). */
  readonly appClientId: string;
  /** Resource-server clients allowed to introspect, and their credentials. */
  readonly basic: { clientId: string; clientSecret: string };
  readonly post: { clientId: string; clientSecret: string };
  readonly jwt: { clientId: string; privateKey: JWK };
  /** Introspection requests received so far (answered or not). */
  readonly introspections: number;
  /**
   * Hold each introspection request this long before handing it to the
   * provider (0: none). For single-flight tests: concurrent callers must be
   * waiting together.
   */
  delayMs: number;
  /** Answer introspection requests with this HTTP status and a JSON error instead of asking the provider (undefined: normal). */
  failWith: number | undefined;
  /** A fresh opaque access token for the API (client_credentials); bound to a key when `dpop` is a proof for the token request (`POST` to `tokenEndpoint`). */
  token(scope?: string, dpop?: string): Promise<string>;
  /** Revoke a token at the revocation endpoint (RFC 7009), as the client it was issued to. */
  revoke(token: string): Promise<void>;
  close(): Promise<void>;
}

interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
  urlFor(name: string): string;
}

interface OidcProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;
  errors: { InvalidTarget: new (description?: string) => Error };
}

async function loadOidcProvider(): Promise<OidcProviderModule> {
  const specifier: string = "oidc-provider";
  return (await import(specifier)) as OidcProviderModule;
}

/** A per-provider in-memory adapter; expiry checked on read, no timers. */
function memoryAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const grants = new Map<string, Set<string>>();
  const read = (key: string) => {
    const entry = store.get(key);
    if (entry === undefined || entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class MemoryAdapter {
    constructor(readonly model: string) {}
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      const key = `${this.model}:${id}`;
      store.set(key, { payload, expiresAt: typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : Infinity });
      if (typeof payload.grantId === "string") {
        const members = grants.get(payload.grantId) ?? new Set<string>();
        members.add(key);
        grants.set(payload.grantId, members);
      }
    }
    async find(id: string) {
      return read(`${this.model}:${id}`);
    }
    async findByUid() {
      return undefined;
    }
    async findByUserCode() {
      return undefined;
    }
    async consume(id: string) {
      const payload = read(`${this.model}:${id}`);
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(`${this.model}:${id}`);
    }
    async revokeByGrantId(grantId: string) {
      for (const key of grants.get(grantId) ?? []) store.delete(key);
      grants.delete(grantId);
    }
  };
}

const secret = () => randomBytes(32).toString("base64url");

export interface StartIntrospectionProviderOptions {
  /** Access-token lifetime in seconds. Default 300. */
  accessTokenTtl?: number;
  /** Extra claims of every access token (returned by introspection). Default `{ roles: ["reader"] }`. */
  extraClaims?: Record<string, unknown>;
}

export async function startIntrospectionProvider(options: StartIntrospectionProviderOptions = {}): Promise<IntrospectionProvider> {
  const accessTokenTtl = options.accessTokenTtl ?? 300;
  const extraClaims = options.extraClaims ?? { roles: ["reader"] };
  const { default: Provider, errors } = await loadOidcProvider();
  const { privateKey: opKey } = await generateKeyPair("RS256", { extractable: true });
  const signingJwk = { ...(await exportJWK(opKey)), kid: "op", alg: "RS256", use: "sig" };
  const { privateKey: rsKey, publicKey: rsPublic } = await generateKeyPair("ES256", { extractable: true });
  const rsPrivateJwk: JWK = { ...(await exportJWK(rsKey)), kid: "rs-1", alg: "ES256" };
  const rsPublicJwk: JWK = { ...(await exportJWK(rsPublic)), kid: "rs-1", alg: "ES256", use: "sig" };

  const server = createServer();
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const resource = "urn:ioserver-oidc:introspection-api";
  const scopes = ["read:stats", "chat:write"];
  const app = { clientId: "app", clientSecret: secret() };
  const basic = { clientId: "rs-basic", clientSecret: secret() };
  const post = { clientId: "rs-post", clientSecret: secret() };
  const jwt = { clientId: "rs-jwt", privateKey: rsPrivateJwk };
  const resourceServers = new Set([basic.clientId, post.clientId, jwt.clientId]);
  const noFlows = { grant_types: [], response_types: [], redirect_uris: [] };

  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    jwks: { keys: [signingJwk] },
    cookies: { keys: [secret()] },
    clients: [
      { client_id: app.clientId, client_secret: app.clientSecret, token_endpoint_auth_method: "client_secret_basic", grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: scopes.join(" ") },
      { client_id: basic.clientId, client_secret: basic.clientSecret, token_endpoint_auth_method: "client_secret_basic", ...noFlows },
      { client_id: post.clientId, client_secret: post.clientSecret, token_endpoint_auth_method: "client_secret_post", ...noFlows },
      { client_id: jwt.clientId, token_endpoint_auth_method: "private_key_jwt", token_endpoint_auth_signing_alg: "ES256", jwks: { keys: [rsPublicJwk] }, ...noFlows },
    ],
    scopes,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      dPoP: { enabled: true },
      introspection: {
        enabled: true,
        // Only the resource servers may introspect (and the client may for its own tokens).
        allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) =>
          resourceServers.has(client.clientId) || token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          if (indicator !== resource) throw new errors.InvalidTarget("unknown resource indicator");
          return { scope: scopes.join(" "), audience: resource, accessTokenFormat: "opaque", accessTokenTTL: accessTokenTtl };
        },
      },
    },
    extraTokenClaims: async () => extraClaims,
    ttl: { ClientCredentials: accessTokenTtl, AccessToken: accessTokenTtl, Interaction: 60, Session: 60, Grant: 60, IdToken: 60 },
    clientBasedCORS: () => true,
    renderError: async (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
      ctx.type = "json";
      ctx.body = out;
    },
  });

  const introspectionEndpoint = provider.urlFor("introspection");
  const introspectionPath = new URL(introspectionEndpoint).pathname;
  const handle = provider.callback();
  const state = { introspections: 0, delayMs: 0, failWith: undefined as number | undefined };
  const timers = new Set<ReturnType<typeof setTimeout>>();

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "POST" && req.url?.split("?")[0] === introspectionPath) {
      state.introspections++;
      const status = state.failWith;
      const go = () => {
        // The client gave up while the request was held (a timeout test): nothing to answer.
        if (req.socket.destroyed) return;
        if (status !== undefined) {
          res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error: "server_error" }));
          return;
        }
        void handle(req, res);
      };
      if (state.delayMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          go();
        }, state.delayMs);
        timers.add(timer);
      } else go();
      return;
    }
    void handle(req, res);
  });

  const basicHeader = `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString("base64")}`;
  async function form(path: string, fields: Record<string, string>, dpop?: string): Promise<Response> {
    return fetch(path, {
      method: "POST",
      headers: { authorization: basicHeader, "content-type": "application/x-www-form-urlencoded", ...(dpop === undefined ? {} : { dpop }) },
      body: new URLSearchParams(fields),
      signal: AbortSignal.timeout(10_000),
    });
  }

  let closed: Promise<void> | undefined;
  return {
    issuer,
    resource,
    introspectionEndpoint,
    tokenEndpoint: provider.urlFor("token"),
    appClientId: app.clientId,
    basic,
    post,
    jwt,
    get introspections() {
      return state.introspections;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(value: number) {
      state.delayMs = value;
    },
    get failWith() {
      return state.failWith;
    },
    set failWith(value: number | undefined) {
      state.failWith = value;
    },
    async token(scope = scopes.join(" "), dpop?: string) {
      const response = await form(provider.urlFor("token"), { grant_type: "client_credentials", scope, resource }, dpop);
      const body = (await response.json()) as Record<string, unknown>;
      if (response.status !== 200 || typeof body.access_token !== "string") throw new Error(`token request failed: HTTP ${response.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async revoke(token: string) {
      const response = await form(provider.urlFor("revocation"), { token, token_type_hint: "access_token" });
      await response.body?.cancel();
      if (response.status !== 200) throw new Error(`revocation failed: HTTP ${response.status}`);
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        server.close((error) => (error ? reject(error) : resolve()));
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}
