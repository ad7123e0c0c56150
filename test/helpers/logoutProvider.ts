/**
 * A real OpenID Provider with back-channel logout for the logout tests:
 * panva's oidc-provider 8 (`features.backchannelLogout`), in this process on
 * `http://127.0.0.1:<free port>`, one confidential client whose
 * `backchannel_logout_uri` is the app's route. Users log in through the
 * provider's HTTP endpoints (authorization code + PKCE) and get RFC 9068 JWT
 * access tokens carrying the provider session's `sid`; `signOut` ends a
 * session at the end_session endpoint, after which the provider itself POSTs
 * the `logout_token` to the app.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import { CookieJar } from "./cookieJar.js";

const TIMEOUT = 8_000;
const random = (bytes: number) => randomBytes(bytes).toString("base64url");

// The slice of oidc-provider's untyped API used here.
interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => unknown;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ params: Record<string, unknown> }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: Record<string, unknown>): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): void;
  Grant: new (properties: { accountId: string; clientId: string }) => {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  };
}

/** A Map-backed adapter for this provider only; expiry checked on read, no timers. */
function memoryAdapter() {
  const rows = new Map<string, { payload: Record<string, unknown>; until: number }>();
  const byUid = new Map<string, string>();
  const read = (key: string) => {
    const row = rows.get(key);
    if (row === undefined || row.until <= Date.now()) return undefined;
    return row.payload;
  };
  return class {
    constructor(readonly model: string) {}
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      rows.set(`${this.model}:${id}`, { payload, until: expiresIn === undefined ? Infinity : Date.now() + expiresIn * 1000 });
      if (typeof payload.uid === "string") byUid.set(`${this.model}:${payload.uid}`, id);
    }
    async find(id: string) {
      return read(`${this.model}:${id}`);
    }
    async findByUid(uid: string) {
      const id = byUid.get(`${this.model}:${uid}`);
      return id === undefined ? undefined : read(`${this.model}:${id}`);
    }
    async findByUserCode() {
      return undefined;
    }
    async consume(id: string) {
      const payload = read(`${this.model}:${id}`);
      if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      rows.delete(`${this.model}:${id}`);
    }
    async revokeByGrantId() {}
  };
}

/** A user logged in at the provider: the browser's cookies and the tokens. */
export interface ProviderLogin {
  jar: CookieJar;
  accessToken: string;
  idToken: string;
}

export interface LogoutProvider {
  /** `http://127.0.0.1:<port>`. */
  issuer: string;
  /** The client: the `aud` of its logout tokens. */
  clientId: string;
  /** The API's resource indicator: the `aud` of the access tokens. */
  resource: string;
  /** The provider's `backchannel.success` / `backchannel.error` events, in order. */
  outcomes: Array<{ event: string; detail: string }>;
  /** Authorization code + PKCE through the provider's endpoints. */
  login(accountId: string): Promise<ProviderLogin>;
  /** RP-initiated logout at the provider, confirmed like a browser would; the provider then posts the logout token. */
  signOut(login: ProviderLogin): Promise<void>;
  close(): Promise<void>;
}

export interface LogoutProviderOptions {
  /** The app's back-channel logout route, e.g. `http://127.0.0.1:<port>/oidc/backchannel-logout`. */
  backchannelLogoutUri: string;
  /** Default `"bcl-web"`. */
  clientId?: string;
  /** Default `"urn:ioserver-oidc:logout-api"`. */
  resource?: string;
}

export async function startLogoutProvider(options: LogoutProviderOptions): Promise<LogoutProvider> {
  const clientId = options.clientId ?? "bcl-web";
  const resource = options.resource ?? "urn:ioserver-oidc:logout-api";
  const secret = random(32);
  const outcomes: Array<{ event: string; detail: string }> = [];

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const specifier: string = "oidc-provider";
  const { default: ProviderClass } = (await import(specifier)) as { default: new (issuer: string, config: Record<string, unknown>) => Provider };
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const provider = new ProviderClass(issuer, {
    adapter: memoryAdapter(),
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: `bcl-${random(6)}`, alg: "RS256", use: "sig" }] },
    cookies: { keys: [random(32)] },
    clients: [
      {
        client_id: clientId,
        client_secret: secret,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: [`${issuer}/cb`],
        backchannel_logout_uri: options.backchannelLogoutUri,
        backchannel_logout_session_required: true,
      },
    ],
    pkce: { required: () => true },
    ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 300, Session: 3600, Grant: 3600 },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    // RFC 9068 access tokens carrying the OP session id, as Keycloak's do.
    extraTokenClaims: async (_ctx: unknown, token: { sid?: string }) => (token.sid === undefined ? undefined : { sid: token.sid }),
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: { body: unknown }, form: string) => {
          ctx.body = `<!doctype html><body>${form}</body>`;
        },
        postLogoutSuccessSource: async (ctx: { body: unknown }) => {
          ctx.body = "signed out";
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({ scope: "read", audience: resource, accessTokenFormat: "jwt", accessTokenTTL: 300 }),
      },
    },
    renderError: async (ctx: { type: string; body: unknown }, out: unknown) => {
      ctx.type = "json";
      ctx.body = out;
    },
  });
  provider.on("backchannel.success", (_ctx, client, accountId, sid) =>
    outcomes.push({ event: "success", detail: `${String((client as { clientId: string }).clientId)} ${String(accountId)} ${String(sid)}` }),
  );
  provider.on("backchannel.error", (_ctx, error) => outcomes.push({ event: "error", detail: String((error as Error).message) }));

  // Interactions: log in the login_hint account and consent to what was asked.
  const handle = provider.callback();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && req.url?.startsWith("/interaction/")) {
      (async () => {
        const { params } = await provider.interactionDetails(req, res);
        const accountId = String(params.login_hint);
        const grant = new provider.Grant({ accountId, clientId });
        grant.addOIDCScope("openid");
        grant.addResourceScope(resource, "read");
        await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: false });
      })().catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
      return;
    }
    void handle(req, res);
  });

  /** Follow redirects by hand (keeping the provider's cookies) until one leaves the provider. */
  async function follow(jar: CookieJar, url: string, init: RequestInit = {}): Promise<Response> {
    let next = url;
    let requestInit = init;
    for (let hop = 0; hop < 10; hop++) {
      const response = await fetch(next, {
        ...requestInit,
        redirect: "manual",
        headers: { ...(requestInit.headers as Record<string, string>), cookie: jar.header() },
        signal: AbortSignal.timeout(TIMEOUT),
      });
      jar.store(response);
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || location === null) return response;
      await response.body?.cancel();
      next = new URL(location, next).href;
      if (next.startsWith(`${issuer}/cb`)) return Response.redirect(next, 303);
      requestInit = {};
    }
    throw new Error("too many redirects");
  }

  return {
    issuer,
    clientId,
    resource,
    outcomes,
    async login(accountId) {
      const jar = new CookieJar();
      const verifier = random(32);
      const authorize = new URL(`${issuer}/auth`);
      authorize.search = new URLSearchParams({
        client_id: clientId,
        response_type: "code",
        redirect_uri: `${issuer}/cb`,
        scope: "openid",
        resource,
        login_hint: accountId,
        state: random(8),
        code_challenge: createHash("sha256").update(verifier).digest("base64url"),
        code_challenge_method: "S256",
      }).toString();
      const callback = await follow(jar, authorize.href);
      const code = new URL(callback.headers.get("location") ?? "").searchParams.get("code");
      assert.ok(code, `no code in the callback (${callback.headers.get("location")})`);
      const response = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString("base64")}` },
        body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: `${issuer}/cb`, code_verifier: verifier, resource }),
        signal: AbortSignal.timeout(TIMEOUT),
      });
      const body = (await response.json()) as Record<string, string>;
      assert.equal(response.status, 200, JSON.stringify(body));
      return { jar, accessToken: body.access_token!, idToken: body.id_token! };
    },
    async signOut(login) {
      const end = new URL(`${issuer}/session/end`);
      end.search = new URLSearchParams({ id_token_hint: login.idToken, client_id: clientId }).toString();
      const page = await follow(login.jar, end.href);
      const html = await page.text();
      assert.equal(page.status, 200, html);
      const action = /action="([^"]+)"/.exec(html)?.[1];
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
      assert.ok(action && xsrf, `no logout form in ${html}`);
      const confirmed = await follow(login.jar, new URL(action, issuer).href, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ xsrf, logout: "yes" }),
      });
      await confirmed.body?.cancel();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
