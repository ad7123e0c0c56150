/// <reference lib="dom" />
/**
 * A minimal OpenID Connect client for a single-page app: Authorization Code
 * with PKCE (S256), as a public client — the page has no secret to keep —
 * and DPoP-bound tokens (RFC 9449): a key pair made at sign-in, whose private
 * half never leaves the browser's WebCrypto, signs a proof for every token
 * request, so the provider binds the tokens to it. Real apps may prefer a
 * library (oidc-client-ts, oauth4webapi); this one is short enough to read.
 */
import { createDpopKey, type DpopKey } from "ioserver-oidc/client";
import { clearKeyPair, loadKeyPair, newKeyPair } from "./keyStore.js";

export interface OidcSettings {
  issuer: string;
  clientId: string;
  /** The API's resource indicator (RFC 8707), e.g. `urn:ioserver-oidc:demo-api`. */
  resource: string;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint?: string;
}

interface Tokens {
  accessToken: string;
  refreshToken: string | null;
  /** Epoch ms on this browser's clock, from `expires_in`: the access token is opaque to the page, which never decodes it. */
  expiresAt: number;
}

interface PendingSignIn {
  state: string;
  verifier: string;
}

/** Thrown when the provider refuses a request (`error` from RFC 6749), or the page's own checks fail. */
export class OidcError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Refresh the access token when it has less than this left (the server asks for a fresh one at 15 s). */
export const REFRESH_MARGIN_MS = 20_000;
const SCOPES = "openid profile email offline_access";
const TOKENS_KEY = "ioserver-oidc-demo.tokens";
const PENDING_KEY = "ioserver-oidc-demo.pending";

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function s256(verifier: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

/**
 * Tokens are kept in this object's memory, where only this page's script can
 * read them — never in cookies the browser would send on its own, nor in
 * localStorage, which every tab shares and keeps forever. A copy goes to
 * sessionStorage only so that reloading this tab keeps you signed in; it
 * disappears with the tab. Either way any script running in the page could
 * read them, which is why the page's Content-Security-Policy allows no
 * script but its own. What such a script reads is not enough, though: the
 * tokens are bound to the DPoP key (see ./keyStore.ts), whose private half
 * cannot be exported, and the API refuses them without a proof by it.
 */
export class OidcClient {
  private tokens: Tokens | null = null;
  /** The key the tokens are bound to (null when signed out). */
  private key: DpopKey | null = null;
  private refreshing: Promise<string> | null = null;
  /** How many times the refresh token was used during this page's life. */
  refreshCount = 0;
  /** Called after every sign-in, refresh and sign-out. */
  onChange: () => void = () => undefined;

  private constructor(
    private readonly settings: OidcSettings,
    private readonly discovery: Discovery,
  ) {}

  /** Reads the provider's discovery document to learn its endpoints, then this tab's tokens and key, if any. */
  static async create(settings: OidcSettings): Promise<OidcClient> {
    const response = await fetch(`${settings.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
    if (!response.ok) throw new OidcError("discovery_failed", `The identity provider answered ${response.status} to discovery`);
    const discovery = (await response.json()) as Discovery;
    // The document must describe the issuer we trust, or the endpoints could be anyone's.
    if (discovery.issuer !== settings.issuer) throw new OidcError("discovery_failed", `Discovery names issuer ${discovery.issuer}`);
    const client = new OidcClient(settings, discovery);
    await client.restore();
    return client;
  }

  /** After a reload: the tokens from sessionStorage and the key they are bound to from IndexedDB, or neither. */
  private async restore(): Promise<void> {
    const saved = sessionStorage.getItem(TOKENS_KEY);
    const keyPair = await loadKeyPair().catch(() => null);
    // Tokens without their key are useless: start signed out. (A key without
    // tokens is kept: on /callback it is the one the code is bound to.)
    const key = keyPair === null ? null : await createDpopKey({ keyPair }).catch(() => null);
    if (saved === null || key === null) {
      sessionStorage.removeItem(TOKENS_KEY);
      return;
    }
    this.key = key;
    this.tokens = JSON.parse(saved) as Tokens;
  }

  get signedIn(): boolean {
    return this.tokens !== null && this.key !== null;
  }

  /**
   * The DPoP key the access token is bound to: the API wants a proof by it
   * with every request (`key.fetch`) and every socket handshake and refresh
   * (`connectWithOidc(…, { dpop: key })`).
   */
  get dpopKey(): DpopKey {
    if (this.key === null) throw new OidcError("signed_out", "Not signed in");
    return this.key;
  }

  /** When the current access token expires (epoch ms), or null when signed out. */
  get expiresAt(): number | null {
    return this.tokens?.expiresAt ?? null;
  }

  private get redirectUri(): string {
    return `${location.origin}/callback`;
  }

  /** Leaves the page for the provider's login; it comes back to /callback. */
  async signIn(): Promise<void> {
    // A new key for every sign-in, kept in IndexedDB for the way back.
    const key = await createDpopKey({ keyPair: await newKeyPair() });
    const pending: PendingSignIn = { state: randomString(), verifier: randomString() };
    // The verifier must survive the round trip through the provider's pages,
    // and only this tab started the sign-in: sessionStorage.
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    const url = new URL(this.discovery.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.settings.clientId,
      redirect_uri: this.redirectUri,
      // offline_access asks for a refresh token, which OpenID Connect grants
      // only with prompt=consent (the demo provider consents automatically).
      // `login` shows the login form every time, so you can switch demo users.
      scope: SCOPES,
      prompt: "login consent",
      state: pending.state,
      code_challenge: await s256(pending.verifier),
      code_challenge_method: "S256",
      // The resource indicator (RFC 8707) names the API the access token is
      // for: the provider then issues a JWT access token with `aud` set to it,
      // which is exactly what the API checks (`audience` in server.ts).
      // Without it the token would be meant for the provider's own userinfo.
      resource: this.settings.resource,
      // RFC 9449 section 10: the code is bound to this key's thumbprint, so
      // only a token request with a proof by this key can redeem it.
      dpop_jkt: key.jkt,
    }).toString();
    location.assign(url.toString());
  }

  /** On /callback: checks the response and exchanges the code for tokens. */
  async handleCallback(url: URL): Promise<void> {
    const pendingJson = sessionStorage.getItem(PENDING_KEY);
    sessionStorage.removeItem(PENDING_KEY); // a code is good for one attempt, whatever happens
    const params = url.searchParams;
    const error = params.get("error");
    if (error !== null) throw new OidcError(error, params.get("error_description") ?? "The identity provider refused the sign-in");
    const pending = pendingJson === null ? null : (JSON.parse(pendingJson) as PendingSignIn);
    // `state` ties the response to the request this tab made (no login CSRF).
    if (pending === null || params.get("state") !== pending.state) throw new OidcError("invalid_state", "This sign-in response was not requested by this tab");
    // RFC 9207: when the provider names itself, it must be ours (mix-up defense).
    const iss = params.get("iss");
    if (iss !== null && iss !== this.settings.issuer) throw new OidcError("invalid_issuer", `The response comes from ${iss}`);
    const code = params.get("code");
    if (code === null) throw new OidcError("invalid_request", "The sign-in response has no code");
    // The key made by signIn() before the page left for the provider.
    const keyPair = await loadKeyPair();
    if (keyPair === null) throw new OidcError("invalid_state", "The key of this sign-in is gone: sign in again");
    this.key = await createDpopKey({ keyPair });
    await this.tokenRequest({
      grant_type: "authorization_code",
      code,
      redirect_uri: this.redirectUri,
      // Proves this tab made the request: a stolen code is useless without it.
      code_verifier: pending.verifier,
    });
    // The answer also holds an ID token, which this page does not use: who
    // you are comes from GET /api/me, i.e. from what the API concluded from
    // the access token. (A page that reads the ID token must validate it,
    // with a `nonce` sent in the authorization request.)
    this.onChange();
  }

  /**
   * The access token for an API call or a socket (re)connect — refreshed first
   * when it has less than REFRESH_MARGIN_MS left. Concurrent callers share one
   * refresh.
   */
  async getAccessToken(): Promise<string> {
    const tokens = this.tokens;
    if (tokens === null) throw new OidcError("signed_out", "Not signed in");
    if (tokens.expiresAt - Date.now() > REFRESH_MARGIN_MS) return tokens.accessToken;
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<string> {
    const refreshToken = this.tokens?.refreshToken;
    if (!refreshToken) {
      this.signOut();
      throw new OidcError("login_required", "The session ended: sign in again");
    }
    try {
      const tokens = await this.tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken });
      this.refreshCount += 1;
      this.onChange();
      return tokens.accessToken;
    } catch (error) {
      // invalid_grant: the refresh token expired or was revoked — the session is over.
      if (error instanceof OidcError && error.code === "invalid_grant") this.signOut();
      throw error;
    }
  }

  private async tokenRequest(grant: Record<string, string>): Promise<Tokens> {
    const sentAt = Date.now();
    if (this.key === null) throw new OidcError("signed_out", "Not signed in");
    // key.fetch adds the `DPoP` proof header (POST, the token endpoint, no
    // `ath`): the provider binds the new tokens to this key. It also follows
    // the provider's `DPoP-Nonce` if it ever asks for one.
    const response = await this.key.fetch(this.discovery.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      // The resource is repeated on every token request: it selects the API
      // (audience) the new access token is for.
      body: new URLSearchParams({ ...grant, client_id: this.settings.clientId, resource: this.settings.resource }),
    });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok || typeof body["access_token"] !== "string") {
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- OAuth error fields are strings (RFC 6749 section 5.2); String() only guards a non-conforming server
      throw new OidcError(String(body["error"] ?? "token_request_failed"), String(body["error_description"] ?? `Token endpoint answered ${response.status}`));
    }
    const tokens: Tokens = {
      accessToken: body["access_token"],
      // Providers may rotate the refresh token: keep the newest one.
      refreshToken: typeof body["refresh_token"] === "string" ? body["refresh_token"] : (this.tokens?.refreshToken ?? null),
      // Counted from when the request left, so that the page's idea of the
      // expiry is not later than the token's real `exp`.
      expiresAt: sentAt + Number(body["expires_in"] ?? 60) * 1000,
    };
    this.tokens = tokens;
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    return tokens;
  }

  /**
   * Forgets the tokens and revokes the refresh token at the provider, which
   * would otherwise stay usable for hours. (The provider's own login session
   * is left alone; the next sign-in asks for the password anyway.)
   */
  signOut(): void {
    const refreshToken = this.tokens?.refreshToken;
    this.tokens = null;
    this.key = null;
    sessionStorage.removeItem(TOKENS_KEY);
    void clearKeyPair().catch(() => undefined);
    if (refreshToken && this.discovery.revocation_endpoint) {
      void fetch(this.discovery.revocation_endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: refreshToken, token_type_hint: "refresh_token", client_id: this.settings.clientId }),
      }).catch(() => undefined); // best effort: the tokens are forgotten either way
    }
    this.onChange();
  }
}
