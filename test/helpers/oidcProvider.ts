/**
 * A real, certified OpenID Provider for the tests: panva's `oidc-provider`
 * (v8, the newest line that supports Node 20), started inside the test
 * process on `http://127.0.0.1:<free port>`, issuing RFC 9068 JWT access
 * tokens for one API (resource indicator, RFC 8707).
 *
 * Everything the provider needs is generated per run and lives in memory
 * only: an RS256 signing key, the cookie keys, the client secrets. Tokens are
 * obtained through real HTTP calls to the provider's endpoints.
 *
 * ```ts
 * const op = await startOidcProvider();
 * const token = await op.clientCredentialsToken({ scope: "read:stats" });
 * // verify with { issuer: op.issuer, audience: op.resource }
 * await op.close();
 * ```
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import { CookieJar } from "./cookieJar.js";

/** Options of {@link startOidcProvider}. */
export interface StartOidcProviderOptions {
  /** The API's resource indicator, i.e. the `aud` of every access token. Default `"urn:ioserver-oidc:test-api"`. */
  resource?: string;
  /** The scopes the API (resource server) defines. Default `["read:stats", "chat:write"]`. */
  scopes?: string[];
  /** Access-token lifetime in seconds (`exp - iat`). Default `300`. */
  accessTokenTtl?: number;
  /**
   * End-users for {@link TestProvider.authorizationCodeToken}, by account id
   * (= `sub`). Their claims (e.g. `roles`, `permissions`) are copied into the
   * access tokens issued for them. Default {@link DEFAULT_TEST_ACCOUNTS}.
   */
  accounts?: Record<string, TestAccountClaims>;
}

/** Claims of a test end-user; `sub` is the account id and cannot be overridden. */
export interface TestAccountClaims {
  roles?: string[];
  permissions?: string[];
  [claim: string]: unknown;
}

/** Options of {@link TestProvider.clientCredentialsToken}. */
export interface ClientCredentialsTokenOptions {
  /** Space-separated scopes to request. Default: all of the API's scopes. */
  scope?: string;
  /**
   * The client to authenticate as. Default {@link TestProvider.clientId}; use
   * {@link TestProvider.restrictedClientId} for a client only allowed the
   * first API scope. An unknown id is sent with a bogus secret (→ `invalid_client`).
   */
  clientId?: string;
}

/** Options of {@link TestProvider.authorizationCodeToken}. */
export interface AuthorizationCodeTokenOptions {
  /** The end-user who "logs in" (passed as `login_hint`). Default `"alice"`. */
  accountId?: string;
  /** Space-separated scopes to request. Default `"openid"` plus all of the API's scopes. */
  scope?: string;
  /** The client to authenticate as. Default {@link TestProvider.clientId}. */
  clientId?: string;
}

/** A running provider, see {@link startOidcProvider}. */
export interface TestProvider {
  /** `http://127.0.0.1:<port>`: the `iss` of its tokens and the `issuer` of its discovery document (no trailing slash). */
  issuer: string;
  /** The API's resource indicator = the `aud` of the access tokens. */
  resource: string;
  /** The API's scopes. */
  scopes: readonly string[];
  /** `<issuer>/.well-known/openid-configuration`. */
  discoveryUrl: string;
  /** The confidential client allowed every API scope (default of the token helpers). */
  clientId: string;
  /** A confidential client allowed only the first API scope; asking it for another one → `invalid_scope`. */
  restrictedClientId: string;
  /**
   * Real `POST <token_endpoint>` with `grant_type=client_credentials`,
   * `resource=<resource>`, `scope=…` and `client_secret_basic`; resolves to the
   * `access_token` (a JWS, `typ: "at+jwt"`, `sub` = `client_id`). Rejects with
   * {@link OidcProviderError} when the provider answers with an error.
   */
  clientCredentialsToken(options?: ClientCredentialsTokenOptions): Promise<string>;
  /**
   * Authorization code + PKCE (S256), driven purely by HTTP: `GET /auth` →
   * interaction (auto login of `accountId` + consent to everything asked) →
   * code → `POST <token_endpoint>` with `resource`. Resolves to the
   * `access_token` (`sub` = account id, plus the account's claims such as
   * `roles` / `permissions`). Rejects with {@link OidcProviderError} on a provider error.
   */
  authorizationCodeToken(options?: AuthorizationCodeTokenOptions): Promise<string>;
  /** Stops the HTTP server and drops its connections; the provider holds no timers, so the process can exit. */
  close(): Promise<void>;
}

/** The provider answered with an OAuth error (or an unexpected response). */
export class OidcProviderError extends Error {
  override name = "OidcProviderError";
  constructor(
    /** The OAuth `error` code, e.g. `invalid_scope`, `invalid_client`, `invalid_target`. */
    readonly error: string,
    /** `error_description` when the provider sent one. */
    readonly description: string | undefined,
    /** HTTP status of the failed response. */
    readonly status: number,
  ) {
    super(description ? `${error}: ${description}` : error);
  }
}

/** Accounts used when {@link StartOidcProviderOptions.accounts} is not given. */
export const DEFAULT_TEST_ACCOUNTS: Readonly<Record<string, TestAccountClaims>> = Object.freeze({
  alice: { roles: ["admin"], permissions: ["read:stats", "chat:write"], email: "alice@example.test" },
  bob: { roles: ["user"], permissions: ["read:stats"], email: "bob@example.test" },
});

const DEFAULT_RESOURCE = "urn:ioserver-oidc:test-api";
const DEFAULT_SCOPES = ["read:stats", "chat:write"];
const HTTP_TIMEOUT_MS = 10_000;

// --- the slice of oidc-provider's (untyped) API used here -------------------

interface InteractionDetails {
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

interface GrantInstance {
  addOIDCScope(scope: string): void;
  addResourceScope(resource: string, scope: string): void;
  addOIDCClaims(claims: string[]): void;
  save(): Promise<string>;
}

interface ProviderInstance {
  issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
  urlFor(name: string): string;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (properties: { accountId: string; clientId: string }): GrantInstance;
    find(id: string): Promise<GrantInstance | undefined>;
  };
}

interface OidcProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;
  errors: {
    InvalidScope: new (description: string, scope?: string) => Error;
    InvalidTarget: new (description?: string) => Error;
  };
}

/** oidc-provider ships no type declarations; load it through a non-literal specifier and type the slice we use. */
async function loadOidcProvider(): Promise<OidcProviderModule> {
  const specifier: string = "oidc-provider";
  return (await import(specifier)) as OidcProviderModule;
}

/**
 * A per-provider in-memory adapter (the built-in one is process-global and
 * warns on stdout). Expiry is checked on read: no timers.
 */
function createMemoryAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const indexes = new Map<string, string>();
  const grants = new Map<string, Set<string>>();
  const get = (key: string) => {
    const entry = store.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class TestMemoryAdapter {
    constructor(readonly model: string) {}
    key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      const key = this.key(id);
      store.set(key, { payload, expiresAt: typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : Infinity });
      if (typeof payload.uid === "string") indexes.set(`${this.model}:uid:${payload.uid}`, id);
      if (typeof payload.userCode === "string") indexes.set(`${this.model}:userCode:${payload.userCode}`, id);
      if (typeof payload.grantId === "string") {
        const members = grants.get(payload.grantId) ?? new Set<string>();
        members.add(key);
        grants.set(payload.grantId, members);
      }
    }
    async find(id: string) {
      return get(this.key(id));
    }
    async findByUid(uid: string) {
      const id = indexes.get(`${this.model}:uid:${uid}`);
      return id === undefined ? undefined : get(this.key(id));
    }
    async findByUserCode(userCode: string) {
      const id = indexes.get(`${this.model}:userCode:${userCode}`);
      return id === undefined ? undefined : get(this.key(id));
    }
    async consume(id: string) {
      const payload = get(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const key of grants.get(grantId) ?? []) store.delete(key);
      grants.delete(grantId);
    }
  };
}


const base64url = (bytes: number) => randomBytes(bytes).toString("base64url");

async function readTokenResponse(response: Response): Promise<string> {
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // fall through: reported below
  }
  if (!response.ok || typeof body.access_token !== "string") {
    const error = typeof body.error === "string" ? body.error : "unexpected_response";
    const description =
      typeof body.error_description === "string" ? body.error_description : response.ok ? "no access_token in the token response" : text.slice(0, 200);
    throw new OidcProviderError(error, description, response.status);
  }
  return body.access_token;
}

/**
 * Starts panva's `oidc-provider` on `http://127.0.0.1:<free port>` with:
 * - an RS256 key pair generated for this run (`jwks`), random `cookies.keys`;
 * - `features.resourceIndicators`: every request defaults to (and may only
 *   ask for) `resource`, whose access tokens are JWTs (`accessTokenFormat: "jwt"`,
 *   `aud` = `resource`, lifetime `accessTokenTtl`, scopes ⊆ `scopes`);
 * - `features.clientCredentials`; two confidential `client_secret_basic`
 *   clients ({@link TestProvider.clientId}, {@link TestProvider.restrictedClientId});
 * - scopes outside `openid`, `offline_access` and `scopes` are rejected with
 *   `invalid_scope` (plain oidc-provider would silently drop them);
 * - no dev interactions: `GET /interaction/:uid` is answered by this helper,
 *   which logs in the `login_hint` account and consents to everything requested;
 * - quiet: every default that would print a notice is replaced.
 */
export async function startOidcProvider(options: StartOidcProviderOptions = {}): Promise<TestProvider> {
  const resource = options.resource ?? DEFAULT_RESOURCE;
  const scopes = [...(options.scopes ?? DEFAULT_SCOPES)];
  const accessTokenTtl = options.accessTokenTtl ?? 300;
  const accounts = new Map(Object.entries(options.accounts ?? DEFAULT_TEST_ACCOUNTS));
  const { default: Provider, errors } = await loadOidcProvider();

  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), kid: `test-${base64url(8)}`, alg: "RS256", use: "sig" };

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const redirectUri = `${issuer}/test-client/callback`;

  const clientId = "ioserver-oidc-test";
  const restrictedClientId = "ioserver-oidc-test-restricted";
  const secrets = new Map([
    [clientId, base64url(32)],
    [restrictedClientId, base64url(32)],
  ]);
  const staticScopes = ["openid", "offline_access", ...scopes];
  const clientMetadata = (id: string, scope: string[]) => ({
    client_id: id,
    client_secret: secrets.get(id),
    token_endpoint_auth_method: "client_secret_basic",
    grant_types: ["client_credentials", "authorization_code"],
    response_types: ["code"],
    redirect_uris: [redirectUri],
    scope: scope.join(" "),
  });

  const provider = new Provider(issuer, {
    adapter: createMemoryAdapter(),
    jwks: { keys: [signingJwk] },
    cookies: { keys: [base64url(32)] },
    clients: [
      clientMetadata(clientId, staticScopes),
      clientMetadata(restrictedClientId, ["openid", ...scopes.slice(0, 1)]),
    ],
    scopes: staticScopes,
    pkce: { methods: ["S256"], required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf ?? resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx: { oidc: { params: Record<string, unknown> } }, indicator: string) => {
          if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource indicator (this provider serves ${resource})`);
          const requested = typeof ctx.oidc.params.scope === "string" ? ctx.oidc.params.scope.split(" ").filter(Boolean) : [];
          const unknown = requested.filter((scope) => !staticScopes.includes(scope));
          if (unknown.length) throw new errors.InvalidScope("requested scope is not supported", unknown.join(" "));
          return { scope: scopes.join(" "), audience: resource, accessTokenFormat: "jwt", accessTokenTTL: accessTokenTtl };
        },
      },
    },
    findAccount: async (_ctx: unknown, sub: string) => {
      const claims = accounts.get(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => ({ ...claims, sub }) };
    },
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
      if (!token.accountId) return undefined;
      const { sub: _sub, ...claims } = accounts.get(token.accountId) ?? {};
      return claims;
    },
    ttl: {
      AccessToken: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      ClientCredentials: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
        token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 300,
      RefreshToken: 3600,
      Interaction: 300,
      Session: 3600,
      Grant: 3600,
    },
    clientBasedCORS: () => true,
    renderError: async (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
      ctx.type = "json";
      ctx.body = out;
    },
  });

  /** Auto login (account from `login_hint`) + consent to everything the request asked for. */
  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const { params, prompt } = details;
    const requestedClient = String(params.client_id);
    const accountId =
      details.session?.accountId ?? (typeof params.login_hint === "string" && params.login_hint ? params.login_hint : "alice");
    if (!accounts.has(accountId)) {
      await provider.interactionFinished(
        req,
        res,
        { error: "access_denied", error_description: `unknown test account ${accountId}` },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ?? new provider.Grant({ accountId, clientId: requestedClient });
    const requested = typeof params.scope === "string" ? params.scope.split(" ").filter(Boolean) : [];
    if (requested.length) grant.addOIDCScope(requested.join(" "));
    const resourceScopes = requested.filter((scope) => scopes.includes(scope));
    const indicators = params.resource === undefined ? [resource] : Array.isArray(params.resource) ? params.resource : [params.resource];
    for (const indicator of indicators) {
      if (typeof indicator === "string" && resourceScopes.length) grant.addResourceScope(indicator, resourceScopes.join(" "));
    }
    const missing = prompt.details;
    if (Array.isArray(missing.missingOIDCScope)) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (Array.isArray(missing.missingOIDCClaims)) grant.addOIDCClaims(missing.missingOIDCClaims as string[]);
    if (missing.missingResourceScopes && typeof missing.missingResourceScopes === "object") {
      for (const [indicator, list] of Object.entries(missing.missingResourceScopes as Record<string, string[]>)) {
        grant.addResourceScope(indicator, list.join(" "));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const handle = provider.callback();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && /^\/interaction\/[^/?]+(\?|$)/.test(req.url ?? "")) {
      interaction(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "server_error", error_description: error instanceof Error ? error.message : String(error) }));
      });
      return;
    }
    void handle(req, res);
  });

  const tokenEndpoint = provider.urlFor("token");
  const authorizationEndpoint = provider.urlFor("authorization");

  function basic(id: string): string {
    const secret = secrets.get(id) ?? "not-a-registered-client-secret";
    return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
  }

  async function postToken(id: string, body: Record<string, string>): Promise<string> {
    const response = await fetch(tokenEndpoint, {
      method: "POST",
      headers: { authorization: basic(id), "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(body),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    return readTokenResponse(response);
  }

  let closed: Promise<void> | undefined;

  return {
    issuer,
    resource,
    scopes: Object.freeze([...scopes]),
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    clientId,
    restrictedClientId,

    clientCredentialsToken({ scope = scopes.join(" "), clientId: id = clientId } = {}) {
      return postToken(id, { grant_type: "client_credentials", resource, ...(scope ? { scope } : {}) });
    },

    async authorizationCodeToken({ accountId = "alice", scope = ["openid", ...scopes].join(" "), clientId: id = clientId } = {}) {
      const verifier = base64url(32);
      const state = base64url(16);
      const url = new URL(authorizationEndpoint);
      url.search = new URLSearchParams({
        client_id: id,
        response_type: "code",
        redirect_uri: redirectUri,
        scope,
        resource,
        state,
        nonce: base64url(16),
        login_hint: accountId,
        code_challenge: createHash("sha256").update(verifier).digest("base64url"),
        code_challenge_method: "S256",
      }).toString();

      const jar = new CookieJar();
      let next = url.href;
      for (let hop = 0; hop < 10; hop++) {
        if (next.startsWith(`${redirectUri}?`)) {
          const callback = new URL(next).searchParams;
          const error = callback.get("error");
          if (error) throw new OidcProviderError(error, callback.get("error_description") ?? undefined, 303);
          if (callback.get("state") !== state) throw new OidcProviderError("state_mismatch", "the callback's state differs", 303);
          const code = callback.get("code");
          if (!code) throw new OidcProviderError("unexpected_response", "no code in the callback", 303);
          return postToken(id, { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier, resource });
        }
        if (!next.startsWith(`${issuer}/`)) throw new OidcProviderError("unexpected_response", `redirected off the provider to ${next}`, 303);
        const response = await fetch(next, {
          redirect: "manual",
          headers: { cookie: jar.header(), accept: "text/html,application/json" },
          signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
        });
        jar.store(response);
        const location = response.headers.get("location");
        if (response.status < 300 || response.status >= 400 || !location) {
          const text = await response.text();
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          throw new OidcProviderError(
            typeof body.error === "string" ? body.error : "unexpected_response",
            typeof body.error_description === "string" ? body.error_description : `HTTP ${response.status} at ${next}: ${text.slice(0, 200)}`,
            response.status,
          );
        }
        await response.body?.cancel();
        next = new URL(location, next).href;
      }
      throw new OidcProviderError("unexpected_response", "too many redirects", 0);
    },

    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
