/**
 * The demo's own OpenID Provider: panva's certified `oidc-provider` (v8),
 * embedded in the demo process, with a real login page.
 *
 * ```ts
 * const idp = await startDemoProvider({ port: 4000, appOrigin: "http://127.0.0.1:3000" });
 * // the API trusts { issuer: idp.issuer, audience: idp.resource }
 * // the single-page app signs in with client_id idp.clientId (see "The SPA's side" below)
 * await idp.close();
 * ```
 *
 * What it sets up, and why:
 *
 * - **One public client, `demo-spa`.** A single-page app cannot keep a secret
 *   (anything shipped to the browser is public), so it authenticates with
 *   nothing (`token_endpoint_auth_method: "none"`) and uses the Authorization
 *   Code flow with **PKCE** instead: the SPA sends `code_challenge =
 *   BASE64URL(SHA-256(code_verifier))` to `/auth` and proves it holds the
 *   `code_verifier` at `/token`. An attacker who intercepts the code (a
 *   malicious browser extension, a leaked log, a hijacked redirect) cannot
 *   redeem it. Only `S256` is accepted (`plain` would show the verifier).
 *
 * - **Resource indicators (RFC 8707)** make the access token *for the demo
 *   API*: the SPA sends `resource=urn:ioserver-oidc:demo-api`, and the token is
 *   an RFC 9068 JWT (`typ: "at+jwt"`) with `aud` = that resource. The API
 *   verifies it locally against the provider's JWKS (no call to the provider
 *   per request) and rejects tokens minted for any other audience, so a token
 *   stolen from another API is useless here, and vice versa. Without a
 *   resource indicator oidc-provider would issue an opaque token meant for its
 *   own userinfo endpoint.
 *
 * - **Short access tokens + rotating refresh tokens.** A JWT access token
 *   cannot be recalled once issued: whoever holds it is "the user" until it
 *   expires. Keeping it short (120 s by default) bounds the damage of a leak
 *   and makes role / permission changes visible quickly. The SPA stays signed
 *   in by trading its refresh token for a fresh access token at `/token`.
 *   Every refresh *rotates* the refresh token (the old one is consumed); if a
 *   consumed one is ever presented again, the provider assumes theft and
 *   revokes the whole grant.
 *
 * - **DPoP-bound tokens (RFC 9449).** The SPA keeps a non-extractable
 *   signing key in the browser and sends a `DPoP` proof (a JWT signed with it,
 *   naming `POST <issuer>/token`) with every token request. The provider then
 *   writes the key's thumbprint into the access token (`cnf.jkt`) and binds
 *   the refresh token to the same key. A copied token is useless without the
 *   key: the API wants a fresh proof by that key with every request and
 *   every socket handshake.
 *
 * - **Consent** is given automatically: `demo-spa` is a first-party app, so
 *   the end-user only ever sees the login form.
 *
 * Everything secret is generated at start-up and lives in memory only (the
 * signing key, the cookie keys, sessions, grants, tokens): restart the
 * provider and every session and token is gone.
 *
 * ## The SPA's side
 *
 * Authorization request (a top-level navigation to `<issuer>/auth`):
 *
 * | parameter               | value                                              |
 * | ----------------------- | -------------------------------------------------- |
 * | `client_id`             | `demo-spa`                                         |
 * | `redirect_uri`          | `<appOrigin>/callback`                             |
 * | `response_type`         | `code`                                             |
 * | `scope`                 | `openid profile email offline_access`              |
 * | `resource`              | `urn:ioserver-oidc:demo-api`                       |
 * | `code_challenge`        | `BASE64URL(SHA-256(code_verifier))`                |
 * | `code_challenge_method` | `S256`                                             |
 * | `state`                 | random, checked at `/callback`                     |
 * | `nonce`                 | random, checked in the ID token (recommended)      |
 * | `prompt`                | `consent` (required for a refresh token, see below) |
 *
 * Then `POST <issuer>/token` (`application/x-www-form-urlencoded`, from the
 * SPA's origin, with a `DPoP` proof header: `htm` `POST`, `htu` the token
 * endpoint, no `ath`; always by the same key, which the refresh token is bound to):
 * - `grant_type=authorization_code&code=…&redirect_uri=…&code_verifier=…&client_id=demo-spa&resource=…`
 * - later `grant_type=refresh_token&refresh_token=…&client_id=demo-spa&resource=…`
 *   (store the *new* `refresh_token` from each answer; the old one is spent).
 *
 * Sign-out: `POST <issuer>/token/revocation` with `token=<refresh token>&client_id=demo-spa`,
 * then navigate to `<issuer>/session/end?id_token_hint=…&post_logout_redirect_uri=<appOrigin>/`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import { createMemoryAdapter } from "./memoryAdapter.js";
import { loadOidcProvider, type Interaction } from "./oidcProvider.js";
import { DEMO_USERS, checkCredentials, findUser, type DemoUser } from "./users.js";
import { PAGE_HEADERS, errorPage, loggedOutPage, loginPage, logoutPage, sendHtml } from "./views.js";

export { DEMO_USERS, type DemoUser } from "./users.js";

/** The `client_id` of the demo's single-page app. */
export const DEMO_CLIENT_ID = "demo-spa";
/** The resource indicator of the demo API: the `aud` of every access token. */
export const DEMO_RESOURCE = "urn:ioserver-oidc:demo-api";
/** The `scope` the SPA asks for: an ID token with name and email, plus a refresh token. */
export const DEMO_SPA_SCOPE = "openid profile email offline_access";
/**
 * The scopes the demo API (the resource server) defines. A client may add them
 * to its `scope`; a user is only granted those listed in their `permissions`.
 */
export const DEMO_API_SCOPES: readonly string[] = Object.freeze(["chat:write", "sessions:manage"]);

const CLIENT_NAME = "IOServer OIDC demo";

export interface DemoProviderOptions {
  /** TCP port to listen on; `0` picks a free one (read it back from `issuer`). */
  port: number;
  /** Interface to listen on. Default `"127.0.0.1"`. */
  host?: string;
  /** The SPA's origin, e.g. `"http://127.0.0.1:3000"`: its `/callback` is the redirect URI, and only it may call the token endpoint from a browser (CORS). */
  appOrigin: string;
  /** The API's resource indicator (`aud` of the access tokens). Default {@link DEMO_RESOURCE}. */
  resource?: string;
  /** Access-token lifetime in seconds. Default `120`. */
  accessTokenTtl?: number;
}

export interface DemoProvider {
  /** `http://<host>:<port>` without a trailing slash: the `iss` of every token; discovery is at `<issuer>/.well-known/openid-configuration`. */
  issuer: string;
  clientId: typeof DEMO_CLIENT_ID;
  /** The API's resource indicator = the `aud` of the access tokens. */
  resource: string;
  users: ReadonlyArray<DemoUser>;
  /** Stops the HTTP server and drops open connections. Safe to call more than once. */
  close(): Promise<void>;
}

/** A failure answered with a plain HTML page by the interaction routes. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startDemoProvider(options: DemoProviderOptions): Promise<DemoProvider> {
  const host = options.host ?? "127.0.0.1";
  const resource = options.resource ?? DEMO_RESOURCE;
  const accessTokenTtl = options.accessTokenTtl ?? 120;
  const appOrigin = new URL(options.appOrigin).origin; // normalized: no path, no trailing slash
  const { default: OidcProvider, errors } = await loadOidcProvider();

  // The key that signs ID tokens and access tokens, generated for this run.
  // oidc-provider wants the *private* key as a JWK; it publishes the public
  // half at `jwks_uri`, where the API (ioserver-oidc) fetches it.
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "RS256", use: "sig" };

  // Listen first, so that the issuer URL can carry the real port when `port` is 0.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const issuer = issuerUrl(host, (server.address() as AddressInfo).port);

  const provider = new OidcProvider(issuer, {
    adapter: createMemoryAdapter(),
    jwks: { keys: [signingKey] },
    cookies: {
      // Signs the provider's cookies (session, interaction); random per start.
      keys: [randomBytes(32).toString("base64url")],
      // The SPA and the provider are same-site (127.0.0.1, plain http) and
      // every cookie-carrying request is a top-level navigation, so `lax`
      // fits. oidc-provider's default `none` needs https.
      long: { httpOnly: true, sameSite: "lax", signed: true },
      short: { httpOnly: true, sameSite: "lax", signed: true },
    },

    clients: [
      {
        client_id: DEMO_CLIENT_ID,
        client_name: CLIENT_NAME,
        application_type: "web",
        // Public client: no secret (see PKCE below).
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: [`${appOrigin}/callback`],
        post_logout_redirect_uris: [`${appOrigin}/`],
      },
    ],

    // PKCE with S256 for every authorization request. (oidc-provider 8
    // already requires it for public clients; spelled out here because the
    // SPA's security rests on it.)
    pkce: { methods: ["S256"], required: () => true },

    // The SPA calls /token (and /token/revocation) with fetch(); the browser
    // only hands it the answer if the provider allows its origin. Allow the
    // demo SPA's origin for the demo client, nothing else. (Discovery and JWKS
    // are public documents, readable from any origin.)
    clientBasedCORS: (_ctx: unknown, origin: string, client: { clientId: string }) =>
      client.clientId === DEMO_CLIENT_ID && origin === appOrigin,

    // OpenID scopes and the ID-token claims they unlock. The API's scopes
    // (chat:write, …) are not listed here: they belong to the resource server.
    scopes: ["openid", "profile", "email", "offline_access"],
    claims: { openid: ["sub"], profile: ["name"], email: ["email", "email_verified"] },

    findAccount: async (_ctx: unknown, sub: string) => {
      const user = findUser(sub);
      if (!user) return undefined;
      return {
        accountId: user.username,
        // oidc-provider keeps only the claims the granted scopes allow (see `claims` above).
        claims: async () => ({ sub: user.username, name: user.name, email: user.email, email_verified: true }),
      };
    },

    // What the API needs to authorize requests, copied into each access token.
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
      const user = token.accountId === undefined ? undefined : findUser(token.accountId);
      if (!user) return undefined;
      return {
        name: user.name,
        email: user.email,
        roles: [...user.roles],
        permissions: [...user.permissions],
        features: { ...user.features },
      };
    },

    // Refresh tokens. oidc-provider issues one when the authorization request
    // was granted `offline_access` and the client may use the refresh_token
    // grant (this is also its default, written out for the demo).
    //
    // About `prompt=consent`: OpenID Connect Core §11 only lets a provider
    // honour `offline_access` when the request carries `prompt=consent`, and
    // oidc-provider enforces this by silently dropping `offline_access`
    // otherwise (no refresh token). The clean, standard way is for the SPA to
    // send `prompt=consent`. It costs the user nothing here: consent for this
    // first-party client is granted automatically (see `consent()` below), so
    // a user who is already signed in just bounces through /interaction/:uid
    // without seeing a page. (The alternative would be to ignore offline_access
    // and return `true` below for the SPA; its refresh tokens would then end
    // with the provider session.)
    issueRefreshToken: async (
      _ctx: unknown,
      client: { grantTypeAllowed(type: string): boolean },
      code: { scopes: Set<string> },
    ) => client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
    // Rotate on every use, so a spent token never works again: the refresh
    // token is also bound to the page's DPoP key (features.dPoP below), but
    // rotation still catches a thief who can make the page sign for them.
    rotateRefreshToken: () => true,

    ttl: {
      AccessToken: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) =>
        token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 600,
      // 8 hours, not extended by rotation: a rotated refresh token inherits
      // what is left of its predecessor's lifetime, so the user signs in
      // again at least once a working day.
      RefreshToken: (ctx: { oidc?: { entities: { RotatedRefreshToken?: { remainingTTL: number } } } } | undefined) =>
        ctx?.oidc?.entities.RotatedRefreshToken?.remainingTTL ?? 8 * 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },

    features: {
      // We serve our own login page under /interaction/:uid (below).
      devInteractions: { enabled: false },
      // DPoP (RFC 9449): a token request that carries a `DPoP` proof gets an
      // access token bound to the proof's key (`cnf.jkt`, the key's RFC 7638
      // thumbprint, in the JWT) and `token_type: "DPoP"`; for this public
      // client the refresh token is bound to the same key, so a refresh needs
      // a proof by that key too. The page creates a non-extractable key at
      // sign-in; the API requires the binding (`dpop: { policy: "required" }`).
      // The provider's own nonces (`nonceSecret`, `requireNonce`) are left
      // off: required, they would cost every first token request a 400 and a
      // second round trip (the page's key.fetch retries with the nonce).
      dPoP: { enabled: true },
      // Lets the SPA revoke its refresh token when the user signs out (the
      // grant includes offline_access, so ending the provider session alone
      // would leave the refresh token valid).
      revocation: { enabled: true },
      // Every access token is for the demo API, never for the provider's
      // userinfo endpoint, so the SPA reads name and email from the ID token.
      userinfo: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContext, form: string) => {
          renderPage(ctx, logoutPage(form, ctx.host));
        },
        postLogoutSuccessSource: async (ctx: KoaContext & { oidc: { client?: { clientName?: string } } }) => {
          renderPage(ctx, loggedOutPage(ctx.oidc.client?.clientName));
        },
      },
      resourceIndicators: {
        enabled: true,
        // No `resource` parameter means the demo API.
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf ?? resource,
        // At /token, a token for the resource granted at /auth.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource, this provider serves ${resource}`);
          return {
            scope: DEMO_API_SCOPES.join(" "),
            audience: resource,
            accessTokenFormat: "jwt", // RFC 9068: header typ "at+jwt"
            accessTokenTTL: accessTokenTtl,
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },

    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },

    // Errors shown to the user (e.g. an unknown redirect_uri, where the
    // provider must not redirect), in the demo's look.
    renderError: async (ctx: KoaContext, out: Record<string, unknown>) => {
      renderPage(ctx, errorPage("Something went wrong", "The sign-in request could not be completed.", out));
    },
  });

  // --- interactions: the login page and the automatic consent ---------------

  /** GET /interaction/:uid — the provider sends the browser here when it needs the user to log in or consent. */
  async function showInteraction(req: IncomingMessage, res: ServerResponse, interaction: Interaction): Promise<void> {
    if (interaction.prompt.name === "login") {
      const hint = typeof interaction.params.login_hint === "string" ? interaction.params.login_hint : undefined;
      sendHtml(res, 200, loginPage({ uid: interaction.uid, clientName: CLIENT_NAME, username: hint, accounts: DEMO_USERS }));
      return;
    }
    if (interaction.prompt.name === "consent") {
      await consent(req, res, interaction);
      return;
    }
    throw new HttpError(400, `unsupported prompt ${interaction.prompt.name}`);
  }

  /** POST /interaction/:uid/login — checks the credentials; on success the provider continues the authorization. */
  async function login(req: IncomingMessage, res: ServerResponse, interaction: Interaction): Promise<void> {
    if (interaction.prompt.name !== "login") throw new HttpError(400, "this sign-in step is already done");
    const form = await readForm(req);
    const username = (form.get("username") ?? "").trim();
    const user = checkCredentials(username, form.get("password") ?? "");
    if (!user) {
      const error = "Wrong username or password.";
      sendHtml(res, 401, loginPage({ uid: interaction.uid, clientName: CLIENT_NAME, username, error, accounts: DEMO_USERS }));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.username } }, { mergeWithLastSubmission: false });
  }

  /**
   * Consent without a consent page: the demo SPA is first-party, so the user
   * grants it what it asked for. `prompt.details` lists what is missing from
   * the grant: OpenID scopes (incl. offline_access), claims, and the API's
   * scopes, of which the user gets only those their permissions allow.
   */
  async function consent(req: IncomingMessage, res: ServerResponse, interaction: Interaction): Promise<void> {
    const accountId = interaction.session?.accountId;
    const user = accountId === undefined ? undefined : findUser(accountId);
    if (interaction.params.client_id !== DEMO_CLIENT_ID || !user) {
      await provider.interactionFinished(
        req,
        res,
        { error: "access_denied", error_description: "only the demo client is trusted" },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const grant =
      (interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined) ??
      new provider.Grant({ accountId: user.username, clientId: DEMO_CLIENT_ID });
    const missing = interaction.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      const allowed = scopes.filter((scope) => user.permissions.includes(scope));
      const refused = scopes.filter((scope) => !user.permissions.includes(scope));
      if (allowed.length) grant.addResourceScope(indicator, allowed.join(" "));
      if (refused.length) grant.rejectResourceScope(indicator, refused.join(" "));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  /** POST /interaction/:uid/abort — "Cancel": the SPA gets `error=access_denied` at its callback. */
  async function abort(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await provider.interactionFinished(
      req,
      res,
      { error: "access_denied", error_description: "End-User aborted interaction" },
      { mergeWithLastSubmission: false },
    );
  }

  async function interactionRoute(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined): Promise<void> {
    const method = action === undefined ? "GET" : "POST";
    if (req.method !== method) {
      res.setHeader("allow", method);
      throw new HttpError(405, "method not allowed");
    }
    // Reads the interaction from the provider's (path-scoped, signed) cookie.
    const interaction = await provider.interactionDetails(req, res);
    if (interaction.uid !== uid) throw new errors.SessionNotFound("interaction mismatch");
    if (action === undefined) return showInteraction(req, res, interaction);
    if (action === "login") return login(req, res, interaction);
    return abort(req, res);
  }

  // --- HTTP: our interaction routes in front of the provider's own ---------

  const providerCallback = provider.callback();
  const INTERACTION_ROUTE = /^\/interaction\/([\w-]+)(?:\/(login|abort))?$/;

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const { pathname } = new URL(req.url ?? "/", issuer);
    const match = INTERACTION_ROUTE.exec(pathname);
    if (!match) {
      void providerCallback(req, res);
      return;
    }
    interactionRoute(req, res, match[1] ?? "", match[2]).catch((error: unknown) => sendInteractionError(res, error));
  });

  let closing: Promise<void> | undefined;
  return {
    issuer,
    clientId: DEMO_CLIENT_ID,
    resource,
    users: DEMO_USERS,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// --- helpers -----------------------------------------------------------------

/** The slice of Koa's context used by the page-rendering hooks of oidc-provider. */
interface KoaContext {
  host: string;
  type: string;
  body: unknown;
  set(headers: Record<string, string>): void;
}

function renderPage(ctx: KoaContext, html: string): void {
  ctx.set({ ...PAGE_HEADERS });
  ctx.type = "html";
  ctx.body = html;
}

/** `http://<host>:<port>`; a wildcard listen address is reached through loopback. */
function issuerUrl(host: string, port: number): string {
  const name = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return `http://${name.includes(":") ? `[${name}]` : name}:${port}`;
}

const MAX_FORM_BYTES = 8 * 1024;

/** Reads an `application/x-www-form-urlencoded` body (the login form), at most 8 KiB. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") throw new HttpError(415, "expected a form submission");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, "form too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function sendInteractionError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const oauth = error as { name?: string; statusCode?: number };
  if (oauth.name === "SessionNotFound") {
    // Expired, already completed, or opened in another browser.
    sendHtml(res, 400, errorPage("Sign-in expired", "This sign-in request is no longer valid. Go back to the application and sign in again."));
  } else if (error instanceof HttpError) {
    if (error.status === 413) res.setHeader("connection", "close");
    sendHtml(res, error.status, errorPage("Request refused", error.message));
  } else {
    console.error("demo identity provider: interaction failed", error);
    sendHtml(res, 500, errorPage("Something went wrong", "The sign-in could not be completed. Please try again."));
  }
}
