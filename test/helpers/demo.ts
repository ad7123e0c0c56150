/**
 * The runnable demo (demo/idp + demo/app) started on free ports with a fresh
 * temporary data directory, plus an HTTP-only "browser + SPA" that signs in
 * exactly as demo/web/oidc.ts does: Authorization Code + PKCE, the provider's
 * real login form, redirects followed by hand with cookies, then the token
 * endpoint with the page's `Origin`.
 *
 * The demo imports the package as `ioserver-oidc`, i.e. the built `dist/`:
 * run `npm run build` first (`npm test` does).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { startDemoApp, type DemoApp } from "../../demo/app/server.js";
import { DEMO_SPA_SCOPE, startDemoProvider, type DemoProvider } from "../../demo/idp/provider.js";
import { CookieJar } from "./cookieJar.js";
import { DpopTestKey } from "./dpopTestKey.js";
import { freePort } from "./app.js";

export { freePort, DpopTestKey };

/** Upper bound of every single network step or awaited event. */
export const STEP_TIMEOUT_MS = 10_000;


export interface RunningDemo {
  idp: DemoProvider;
  app: DemoApp;
  /** `http://127.0.0.1:<port>`: the page's origin, the provider's only redirect and CORS origin. */
  appOrigin: string;
  dataDir: string;
  /** Stops the app, then the provider, then removes `dataDir`. Idempotent. */
  close(): Promise<void>;
}

export interface StartDemoOptions {
  accessTokenTtl?: number;
}

/**
 * Provider first (it needs the app's origin, so the app's port is reserved
 * beforehand), then the app. A port taken between `freePort()` and the app's
 * listen (another process, rare) is retried with a new port.
 */
export async function startDemo(options: StartDemoOptions = {}): Promise<RunningDemo> {
  const dataDir = await mkdtemp(join(tmpdir(), "ioserver-oidc-demo-"));
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const appOrigin = `http://127.0.0.1:${port}`;
    let idp: DemoProvider | undefined;
    try {
      idp = await startDemoProvider({ port: 0, appOrigin, ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl }) });
      const app = await startDemoApp({ port, host: "127.0.0.1", issuer: idp.issuer, clientId: idp.clientId, resource: idp.resource, dataDir });
      assert.equal(app.url, appOrigin);
      const provider = idp;
      let closing: Promise<void> | undefined;
      return {
        idp: provider,
        app,
        appOrigin,
        dataDir,
        close() {
          closing ??= (async () => {
            try {
              await app.close();
            } finally {
              try {
                await provider.close();
              } finally {
                await rm(dataDir, { recursive: true, force: true });
              }
            }
          })();
          return closing;
        },
      };
    } catch (error) {
      lastError = error;
      await idp?.close().catch(() => undefined);
      if ((error as { code?: string } | null)?.code !== "EADDRINUSE") break;
    }
  }
  await rm(dataDir, { recursive: true, force: true });
  throw lastError;
}


export interface Tokens {
  accessToken: string;
  refreshToken: string;
  idToken: string;
  expiresIn: number;
  /** `token_type` of the token response: `"DPoP"` for a bound token. */
  tokenType: string;
  /** The key the tokens are bound to (a new one per sign-in; the refresh token is bound to it as well). */
  key: DpopTestKey;
}

/**
 * The SPA's side of the demo, over plain HTTP. One instance per demo; each
 * `signIn` uses a fresh cookie jar (a fresh browser).
 */
export class HttpSpa {
  private discovery: { authorization_endpoint: string; token_endpoint: string } | undefined;

  constructor(private readonly demo: RunningDemo) {}

  get redirectUri(): string {
    return `${this.demo.appOrigin}/callback`;
  }

  private async endpoints() {
    if (this.discovery === undefined) {
      // What the page does first: GET /config.json from the app, then the provider's discovery.
      const config = (await (await fetch(`${this.demo.appOrigin}/config.json`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) })).json()) as {
        issuer: string;
        clientId: string;
        resource: string;
      };
      assert.deepEqual(config, { issuer: this.demo.idp.issuer, clientId: "demo-spa", resource: "urn:ioserver-oidc:demo-api" });
      const response = await fetch(`${config.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
      this.discovery = (await response.json()) as { authorization_endpoint: string; token_endpoint: string };
    }
    return this.discovery;
  }

  /** /auth → login form → POST credentials → redirects (cookies carried) → code at /callback → POST /token. */
  async signIn(username: string, password: string): Promise<Tokens> {
    const { authorization_endpoint } = await this.endpoints();
    const issuer = this.demo.idp.issuer;
    const jar = new CookieJar();
    const request = async (url: string, form?: Record<string, string>): Promise<Response> => {
      const headers: Record<string, string> = { accept: "text/html" };
      const cookie = jar.header();
      if (cookie) headers.cookie = cookie;
      if (form) headers["content-type"] = "application/x-www-form-urlencoded";
      const response = await fetch(url, {
        method: form ? "POST" : "GET",
        headers,
        body: form ? new URLSearchParams(form) : undefined,
        redirect: "manual",
        signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
      });
      jar.store(response);
      return response;
    };
    /** Follows redirects while they stay on the provider: → the page shown, or the URL that left it. */
    const follow = async (response: Response, from: string): Promise<{ url: string; page?: Response }> => {
      let url = from;
      for (let hop = 0; hop < 10; hop++) {
        const location = response.headers.get("location");
        if (response.status < 300 || response.status >= 400 || !location) return { url, page: response };
        await response.body?.cancel();
        url = new URL(location, url).href;
        if (!url.startsWith(`${issuer}/`)) return { url };
        response = await request(url);
      }
      throw new Error("too many redirects");
    };

    // A new key for every sign-in, as the page makes one; the code is bound to it (dpop_jkt).
    const key = await DpopTestKey.create();
    const verifier = randomBytes(32).toString("base64url");
    const state = randomBytes(16).toString("base64url");
    const start = new URL(authorization_endpoint);
    start.search = new URLSearchParams({
      client_id: this.demo.idp.clientId,
      redirect_uri: this.redirectUri,
      response_type: "code",
      scope: DEMO_SPA_SCOPE,
      resource: this.demo.idp.resource,
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
      state,
      nonce: randomBytes(16).toString("base64url"),
      prompt: "consent",
      dpop_jkt: key.jkt,
    }).toString();

    const landed = await follow(await request(start.href), start.href);
    assert.ok(landed.page, `the provider shows its login page (left for ${landed.url})`);
    assert.equal(landed.page.status, 200);
    const html = await landed.page.text();
    const action = /<form method="post" action="([^"]+\/login)"/.exec(html)?.[1];
    assert.ok(action, "the page has a login form");
    assert.match(html, /name="username"/);
    assert.match(html, /name="password"/);

    const posted = await request(new URL(action.replace(/&amp;/g, "&"), issuer).href, { username, password });
    const done = await follow(posted, landed.url);
    assert.equal(done.page, undefined, `redirected back to the app (got HTTP ${done.page?.status})`);
    const callback = new URL(done.url);
    assert.equal(`${callback.origin}${callback.pathname}`, this.redirectUri);
    assert.equal(callback.searchParams.get("state"), state);
    assert.equal(callback.searchParams.get("iss"), issuer);
    const code = callback.searchParams.get("code");
    assert.ok(code, `a code at /callback (${callback.search})`);

    // The page itself is served at /callback (it reads ?code=… in the browser).
    const page = await fetch(done.url, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/app\.js">/);

    return this.token({ grant_type: "authorization_code", code, redirect_uri: this.redirectUri, code_verifier: verifier }, key);
  }

  /** The refresh grant, as the page's OidcClient sends it, with a proof by the key the tokens are bound to (rotation: use the returned refresh token next). */
  refresh(tokens: Pick<Tokens, "refreshToken" | "key">): Promise<Tokens> {
    return this.token({ grant_type: "refresh_token", refresh_token: tokens.refreshToken }, tokens.key);
  }

  private async token(grant: Record<string, string>, key: DpopTestKey): Promise<Tokens> {
    const { token_endpoint } = await this.endpoints();
    const response = await fetch(token_endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
        origin: this.demo.appOrigin,
        // The token endpoint's proof: no `ath` (no access token yet).
        dpop: await key.proof({ method: "POST", url: token_endpoint }),
      },
      body: new URLSearchParams({ ...grant, client_id: this.demo.idp.clientId, resource: this.demo.idp.resource }),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(response.status, 200, `token endpoint: ${JSON.stringify(body)}`);
    assert.equal(response.headers.get("access-control-allow-origin"), this.demo.appOrigin, "the page may read the answer (CORS)");
    assert.equal(typeof body.access_token, "string");
    assert.equal(typeof body.refresh_token, "string");
    return {
      accessToken: String(body.access_token),
      refreshToken: String(body.refresh_token),
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the token endpoint answers id_token as a string; String() only guards a malformed answer
      idToken: String(body.id_token ?? ""),
      expiresIn: Number(body.expires_in),
      tokenType: String(body.token_type),
      key,
    };
  }
}

/** What an API call or a socket presents: a DPoP-bound token with its key, or a bare token (sent as `Bearer`). */
export type Credential = Pick<Tokens, "accessToken" | "key"> | string;

/**
 * A call to the app's HTTP API: `Authorization: DPoP` with a fresh proof by
 * the token's key, or `Authorization: Bearer` for a bare token. The JSON body (or `{}`).
 */
export async function callApi<T = Record<string, unknown>>(
  demo: RunningDemo,
  method: "GET" | "POST",
  path: string,
  credential: Credential,
): Promise<{ status: number; body: T }> {
  const url = `${demo.appOrigin}${path}`;
  const headers: Record<string, string> = { accept: "application/json" };
  if (typeof credential === "string") headers.authorization = `Bearer ${credential}`;
  else {
    headers.authorization = `DPoP ${credential.accessToken}`;
    headers.dpop = await credential.key.proof({ method, url, accessToken: credential.accessToken });
  }
  const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  const text = await response.text();
  return { status: response.status, body: (text === "" ? {} : JSON.parse(text)) as T };
}

/**
 * A socket.io-client socket to a namespace of the app, websocket only, no
 * automatic reconnection. With a bound token, the handshake's `auth` carries
 * `{ token, dpop }`, a fresh proof for each attempt; a bare token goes alone.
 */
export function openSocket(demo: RunningDemo, namespace: string, credential: Credential, options: Partial<ManagerOptions & SocketOptions> = {}): Socket {
  const auth =
    typeof credential === "string"
      ? { token: credential }
      : (send: (data: object) => void) => {
          credential.key.socketProof(demo.appOrigin, credential.accessToken).then(
            (dpop) => send({ token: credential.accessToken, dpop }),
            () => send({ token: credential.accessToken }),
          );
        };
  return io(`${demo.appOrigin}/${namespace}`, {
    auth,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: STEP_TIMEOUT_MS,
    ...options,
  });
}

/** The arguments of the next `event` on `socket` that passes `filter`, or a rejection after `ms`. */
export function nextEvent<T extends unknown[] = unknown[]>(
  socket: Socket,
  event: string,
  ms = STEP_TIMEOUT_MS,
  filter: (...args: T) => boolean = () => true,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (...args: unknown[]) => {
      if (!filter(...(args as T))) return;
      cleanup();
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off(event, listener);
    };
    socket.on(event, listener);
  });
}

