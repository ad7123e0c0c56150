/**
 * The demo's embedded OpenID provider (demo/idp/provider.ts), driven like a
 * browser + single-page app would: real HTTP only, manual redirects, cookies
 * carried by hand, Authorization Code + PKCE, then the token endpoint with an
 * `Origin` header as `fetch()` from the SPA sends it.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import {
  DEMO_CLIENT_ID,
  DEMO_RESOURCE,
  DEMO_SPA_SCOPE,
  DEMO_USERS,
  startDemoProvider,
  type DemoProvider,
} from "../../demo/idp/provider.js";
import { CookieJar } from "../helpers/cookieJar.js";
import { DpopTestKey } from "../helpers/dpopTestKey.js";

const APP_ORIGIN = "http://127.0.0.1:3999"; // never contacted: the test stops at the redirect to /callback
const REDIRECT_URI = `${APP_ORIGIN}/callback`;
const TIMEOUT_MS = 10_000;

/** Everything the provider prints goes through console.*; recorded to prove it stays quiet. */
const printed: string[] = [];
const consoleMethods = ["log", "info", "warn", "error", "debug"] as const;
const originalConsole = new Map(consoleMethods.map((name) => [name, console[name]]));

let idp: DemoProvider;
let discovery: Record<string, unknown>;


/** One browser: GET/POST with its cookies, never following redirects by itself. */
function browser() {
  const jar = new CookieJar();
  async function request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: "text/html" };
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    if (init.form) headers["content-type"] = "application/x-www-form-urlencoded";
    const response = await fetch(url, {
      method: init.method ?? (init.form ? "POST" : "GET"),
      headers,
      body: init.form ? new URLSearchParams(init.form) : undefined,
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    jar.store(response);
    return response;
  }
  /** Follows redirects on the provider until one leaves it (→ that URL) or a page is returned (→ the response). */
  async function follow(response: Response, from: string): Promise<{ url: string } | { page: Response; url: string }> {
    let url = from;
    for (let hop = 0; hop < 10; hop++) {
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || !location) return { page: response, url };
      await response.body?.cancel();
      url = new URL(location, url).href;
      if (!url.startsWith(`${idp.issuer}/`)) return { url };
      response = await request(url);
    }
    throw new Error("too many redirects");
  }
  return { request, follow };
}

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

function authorizeUrl(params: Record<string, string>): string {
  const url = new URL(String(discovery.authorization_endpoint));
  url.search = new URLSearchParams(params).toString();
  return url.href;
}

/** The parameters the SPA sends (see the table in demo/idp/provider.ts); an `extra` value `null` removes a parameter. */
function spaParams(challenge: string, extra: Record<string, string | null> = {}): Record<string, string> {
  const params: Record<string, string | null> = {
    client_id: DEMO_CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    response_type: "code",
    scope: DEMO_SPA_SCOPE,
    resource: DEMO_RESOURCE,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: randomBytes(16).toString("base64url"),
    nonce: randomBytes(16).toString("base64url"),
    prompt: "consent",
    ...extra,
  };
  return Object.fromEntries(Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== null));
}

/** The login form's action, read from the page. */
function formAction(html: string): string {
  const match = /<form method="post" action="([^"]+\/login)"/.exec(html);
  assert.ok(match?.[1], "the page has a login form");
  return new URL(match[1].replace(/&amp;/g, "&"), idp.issuer).href;
}

/** Browser part of a sign-in: /auth → login page → POST credentials → redirects → `/callback?code=…`. */
async function signIn(username: string, password: string, extra: Record<string, string | null> = {}) {
  const { verifier, challenge } = pkce();
  const params = spaParams(challenge, extra);
  const agent = browser();
  const start = authorizeUrl(params);
  const landed = await agent.follow(await agent.request(start), start);
  assert.ok("page" in landed, "the provider shows a page");
  assert.equal(landed.page.status, 200);
  const html = await landed.page.text();
  const done = await agent.follow(await agent.request(formAction(html), { form: { username, password } }), landed.url);
  assert.ok(!("page" in done), `redirected back to the app (got ${"page" in done ? done.page.status : ""})`);
  const callback = new URL(done.url);
  assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
  assert.equal(callback.searchParams.get("state"), params.state);
  const code = callback.searchParams.get("code");
  assert.ok(code, `a code at /callback (${callback.search})`);
  return { code, verifier, agent };
}

/** `POST /token` the way the SPA's fetch() does it; with `dpop`, that proof in a `DPoP` header. */
async function token(body: Record<string, string>, origin = APP_ORIGIN, dpop?: string) {
  const response = await fetch(String(discovery.token_endpoint), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json", origin, ...(dpop === undefined ? {} : { dpop }) },
    body: new URLSearchParams({ client_id: DEMO_CLIENT_ID, ...body }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  return { response, body: (await response.json()) as Record<string, unknown> };
}

function exchangeCode(code: string, verifier: string, origin?: string) {
  return token({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, resource: DEMO_RESOURCE }, origin);
}

function refresh(refreshToken: string) {
  return token({ grant_type: "refresh_token", refresh_token: refreshToken, resource: DEMO_RESOURCE });
}

async function verifyAccessToken(accessToken: string) {
  const jwks = createRemoteJWKSet(new URL(String(discovery.jwks_uri)), { timeoutDuration: TIMEOUT_MS });
  return jwtVerify(accessToken, jwks, { issuer: idp.issuer, audience: DEMO_RESOURCE, typ: "at+jwt", algorithms: ["RS256"] });
}

describe("demo identity provider", () => {
  before(async () => {
    for (const name of consoleMethods) {
      console[name] = (...args: unknown[]) => {
        printed.push(args.map(String).join(" "));
      };
    }
    idp = await startDemoProvider({ port: 0, appOrigin: APP_ORIGIN });
    const response = await fetch(`${idp.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    discovery = (await response.json()) as Record<string, unknown>;
  });

  after(async () => {
    await idp?.close();
    await idp?.close(); // idempotent
    for (const [name, original] of originalConsole) console[name] = original;
  });

  it("describes itself: issuer, client, resource, users, discovery", () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(idp.clientId, "demo-spa");
    assert.equal(idp.resource, "urn:ioserver-oidc:demo-api");
    assert.deepEqual(
      idp.users.map(({ username, roles }) => ({ username, roles })),
      [
        { username: "alice", roles: ["admin"] },
        { username: "bob", roles: ["member"] },
        { username: "carol", roles: ["member"] },
      ],
    );
    assert.equal(idp.users, DEMO_USERS);
    assert.equal(discovery.issuer, idp.issuer);
    assert.deepEqual(discovery.code_challenge_methods_supported, ["S256"]);
    assert.ok(String(discovery.jwks_uri).startsWith(`${idp.issuer}/`));
    assert.ok(discovery.revocation_endpoint, "the SPA can revoke its refresh token");
    assert.ok(discovery.end_session_endpoint);
  });

  it("runs Authorization Code + PKCE with a real login form, then refreshes", async () => {
    const { verifier, challenge } = pkce();
    const params = spaParams(challenge);
    const agent = browser();

    // /auth → 303 → /interaction/:uid → the login page
    const start = authorizeUrl(params);
    const landed = await agent.follow(await agent.request(start), start);
    assert.ok("page" in landed);
    assert.match(landed.url, new RegExp(`^${idp.issuer}/interaction/[\\w-]+$`));
    assert.equal(landed.page.status, 200);
    assert.match(landed.page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(landed.page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    const loginHtml = await landed.page.text();
    assert.match(loginHtml, /<form method="post" action="\/interaction\/[\w-]+\/login"/);
    assert.match(loginHtml, /name="username"/);
    assert.match(loginHtml, /name="password" type="password"/);
    assert.doesNotMatch(loginHtml, /<script|https?:\/\/(?!127\.0\.0\.1)/, "self-contained page");
    const action = formAction(loginHtml);

    // wrong password → the form again, with an error
    const wrong = await agent.request(action, { form: { username: "alice", password: "nope" } });
    assert.equal(wrong.status, 401);
    const wrongHtml = await wrong.text();
    assert.match(wrongHtml, /role="alert">Wrong username or password\.</);
    assert.match(wrongHtml, /name="username"[^>]*value="alice"/);
    assert.equal(formAction(wrongHtml), action);

    // right password → back to the provider → (automatic consent) → /callback?code=…
    const done = await agent.follow(await agent.request(action, { form: { username: "alice", password: "alice-password" } }), landed.url);
    assert.ok(!("page" in done), "no consent page: straight back to the app");
    const callback = new URL(done.url);
    assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
    assert.equal(callback.searchParams.get("state"), params.state);
    assert.equal(callback.searchParams.get("iss"), idp.issuer);
    const code = callback.searchParams.get("code");
    assert.ok(code);

    // the SPA redeems the code with fetch() from its origin
    const { response, body } = await exchangeCode(code, verifier);
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(response.headers.get("access-control-allow-origin"), APP_ORIGIN);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.expires_in, 120);
    // `scope` is the access token's: the API scopes granted (none were asked for here)
    assert.equal(body.scope, "");
    assert.equal(typeof body.refresh_token, "string", "a refresh token for the public client");
    assert.equal(typeof body.id_token, "string");

    const accessToken = String(body.access_token);
    assert.equal(decodeProtectedHeader(accessToken).typ, "at+jwt");
    const { payload, protectedHeader } = await verifyAccessToken(accessToken);
    assert.equal(protectedHeader.alg, "RS256");
    assert.equal(payload.iss, idp.issuer);
    assert.equal(payload.aud, DEMO_RESOURCE);
    assert.equal(payload.sub, "alice");
    assert.equal(payload.client_id, DEMO_CLIENT_ID);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 120);
    assert.deepEqual(payload.roles, ["admin"]);
    assert.deepEqual(payload.permissions, ["chat:write", "sessions:manage"]);
    assert.deepEqual(payload.features, { theme: "dark" });
    assert.equal(payload.name, "Alice Admin");
    assert.equal(payload.email, "alice@example.com");

    // the ID token is for the SPA: who signed in
    const idToken = decodeJwt(String(body.id_token));
    assert.equal(idToken.aud, DEMO_CLIENT_ID);
    assert.equal(idToken.sub, "alice");
    assert.equal(idToken.nonce, params.nonce);
    assert.equal(idToken.name, "Alice Admin");
    assert.equal(idToken.email, "alice@example.com");

    // refresh → a new JWT access token for the API, and a new (rotated) refresh token
    const refreshed = await refresh(String(body.refresh_token));
    assert.equal(refreshed.response.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.response.headers.get("access-control-allow-origin"), APP_ORIGIN);
    assert.notEqual(refreshed.body.access_token, accessToken);
    assert.equal(typeof refreshed.body.refresh_token, "string");
    assert.notEqual(refreshed.body.refresh_token, body.refresh_token);
    const again = await verifyAccessToken(String(refreshed.body.access_token));
    assert.equal(again.protectedHeader.typ, "at+jwt");
    assert.equal(again.payload.aud, DEMO_RESOURCE);
    assert.equal(again.payload.sub, "alice");
    assert.deepEqual(again.payload.roles, ["admin"]);
    assert.notEqual(again.payload.jti, payload.jti);
  });

  it("binds the tokens to the DPoP key of the token request's proof, and the code to the dpop_jkt of the authorization request", async () => {
    const key = await DpopTestKey.create();
    const tokenEndpoint = String(discovery.token_endpoint);
    const proof = () => key.proof({ method: "POST", url: tokenEndpoint });
    assert.ok((discovery.dpop_signing_alg_values_supported as string[] | undefined)?.includes("ES256"), "discovery announces DPoP");

    const { code, verifier } = await signIn("alice", "alice-password", { dpop_jkt: key.jkt });
    const grant = { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, resource: DEMO_RESOURCE };
    const { response, body } = await token(grant, APP_ORIGIN, await proof());
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, "DPoP");
    const { payload } = await verifyAccessToken(String(body.access_token));
    assert.deepEqual(payload.cnf, { jkt: key.jkt });

    // the refresh token is bound to the key as well: no proof, or another key's proof, is refused
    const refreshGrant = { grant_type: "refresh_token", refresh_token: String(body.refresh_token), resource: DEMO_RESOURCE };
    const other = await DpopTestKey.create();
    const withoutProof = await token(refreshGrant);
    assert.deepEqual([withoutProof.response.status, withoutProof.body.error], [400, "invalid_grant"]);
    const otherKey = await token(refreshGrant, APP_ORIGIN, await other.proof({ method: "POST", url: tokenEndpoint }));
    assert.deepEqual([otherKey.response.status, otherKey.body.error], [400, "invalid_grant"]);
    const refreshed = await token(refreshGrant, APP_ORIGIN, await proof());
    assert.equal(refreshed.response.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.token_type, "DPoP");
    assert.deepEqual((await verifyAccessToken(String(refreshed.body.access_token))).payload.cnf, { jkt: key.jkt });

    // a code bound with dpop_jkt, redeemed (with its verifier) by someone else's key: refused
    const stolen = await signIn("bob", "bob-password", { dpop_jkt: key.jkt });
    const thief = await token(
      { grant_type: "authorization_code", code: stolen.code, redirect_uri: REDIRECT_URI, code_verifier: stolen.verifier, resource: DEMO_RESOURCE },
      APP_ORIGIN,
      await other.proof({ method: "POST", url: tokenEndpoint }),
    );
    assert.deepEqual([thief.response.status, thief.body.error], [400, "invalid_grant"]);

    // the browser may send the DPoP header cross-origin (CORS preflight)
    const preflight = await fetch(tokenEndpoint, {
      method: "OPTIONS",
      headers: { origin: APP_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type,dpop" },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await preflight.body?.cancel();
    assert.ok(preflight.status < 300, `preflight answered ${preflight.status}`);
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /\bdpop\b/i);
  });

  it("does not let another origin read token responses (CORS)", async () => {
    const { code, verifier } = await signIn("bob", "bob-password");
    const foreign = await exchangeCode(code, verifier, "http://evil.example");
    assert.equal(foreign.response.status, 400);
    assert.equal(foreign.response.headers.get("access-control-allow-origin"), null);
    assert.equal(foreign.body.error, "invalid_request");

    // the same code still works from the SPA's origin
    const { response, body } = await exchangeCode(code, verifier);
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(response.headers.get("access-control-allow-origin"), APP_ORIGIN);
    const { payload } = await verifyAccessToken(String(body.access_token));
    assert.equal(payload.sub, "bob");
    assert.deepEqual(payload.roles, ["member"]);
    assert.deepEqual(payload.permissions, ["chat:write"]);
  });

  it("requires PKCE (S256) and the matching code_verifier", async () => {
    const agent = browser();
    const { code_challenge: _challenge, code_challenge_method: _method, ...withoutPkce } = spaParams("unused");
    const noPkce = await agent.request(authorizeUrl(withoutPkce));
    const location = new URL(noPkce.headers.get("location") ?? "", idp.issuer);
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    assert.equal(location.searchParams.get("error"), "invalid_request");
    assert.match(location.searchParams.get("error_description") ?? "", /PKCE/);

    const plain = await agent.request(authorizeUrl(spaParams("a".repeat(43), { code_challenge_method: "plain" })));
    assert.equal(new URL(plain.headers.get("location") ?? "", idp.issuer).searchParams.get("error"), "invalid_request");

    const { code } = await signIn("carol", "carol-password");
    const stolen = await exchangeCode(code, pkce().verifier);
    assert.equal(stolen.response.status, 400);
    assert.equal(stolen.body.error, "invalid_grant");
  });

  it("grants the API's scopes a client asks for only when the user holds them", async () => {
    const scope = `${DEMO_SPA_SCOPE} chat:write sessions:manage`;
    const alice = await signIn("alice", "alice-password", { scope });
    const aliceTokens = await exchangeCode(alice.code, alice.verifier);
    assert.equal((await verifyAccessToken(String(aliceTokens.body.access_token))).payload.scope, "chat:write sessions:manage");

    const bob = await signIn("bob", "bob-password", { scope });
    const bobTokens = await exchangeCode(bob.code, bob.verifier);
    assert.equal(bobTokens.response.status, 200, JSON.stringify(bobTokens.body));
    assert.equal((await verifyAccessToken(String(bobTokens.body.access_token))).payload.scope, "chat:write");
  });

  it("rotates refresh tokens: a reused one revokes the grant; revocation works from the SPA", async () => {
    const { code, verifier } = await signIn("alice", "alice-password");
    const first = await exchangeCode(code, verifier);
    const original = String(first.body.refresh_token);
    const second = await refresh(original);
    assert.equal(second.response.status, 200);
    const reused = await refresh(original);
    assert.equal(reused.response.status, 400);
    assert.equal(reused.body.error, "invalid_grant");
    const afterTheft = await refresh(String(second.body.refresh_token));
    assert.equal(afterTheft.body.error, "invalid_grant", "the whole grant is revoked");

    const other = await signIn("bob", "bob-password");
    const tokens = await exchangeCode(other.code, other.verifier);
    const revoked = await fetch(String(discovery.revocation_endpoint), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: APP_ORIGIN },
      body: new URLSearchParams({ client_id: DEMO_CLIENT_ID, token: String(tokens.body.refresh_token) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.headers.get("access-control-allow-origin"), APP_ORIGIN);
    await revoked.body?.cancel();
    assert.equal((await refresh(String(tokens.body.refresh_token))).body.error, "invalid_grant");
  });

  it("without prompt=consent, offline_access is dropped (OIDC Core §11): no refresh token", async () => {
    const { code, verifier } = await signIn("carol", "carol-password", { prompt: null });
    const { response, body } = await exchangeCode(code, verifier);
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.refresh_token, undefined);
    assert.equal(typeof body.access_token, "string");
  });

  it("signs a returning user in without a page (SSO), and signs out through end_session", async () => {
    const first = await signIn("alice", "alice-password");
    const tokens = await exchangeCode(first.code, first.verifier);
    const { agent } = first;

    // the provider session cookie: /auth → /interaction (automatic consent) → /callback, no page
    const { verifier, challenge } = pkce();
    const start = authorizeUrl(spaParams(challenge));
    const back = await agent.follow(await agent.request(start), start);
    assert.ok(!("page" in back), "no login page for a signed-in user");
    const code = new URL(back.url).searchParams.get("code");
    assert.ok(code);
    assert.equal((await exchangeCode(code, verifier)).response.status, 200);

    // RP-initiated logout: confirmation page → POST logout=yes → back to the app
    const endSession = new URL(String(discovery.end_session_endpoint));
    endSession.search = new URLSearchParams({
      id_token_hint: String(tokens.body.id_token),
      post_logout_redirect_uri: `${APP_ORIGIN}/`,
      state: "bye",
    }).toString();
    const confirm = await agent.request(endSession.href);
    assert.equal(confirm.status, 200);
    const html = await confirm.text();
    assert.match(html, /Sign out\?/);
    const form = /<form id="op\.logoutForm" method="post" action="([^"]+)"><input type="hidden" name="xsrf" value="([^"]+)"\/>/.exec(html);
    assert.ok(form?.[1] && form[2], "oidc-provider's logout form is embedded");
    const out = await agent.request(form[1], { form: { xsrf: form[2], logout: "yes" } });
    const done = await agent.follow(out, form[1]);
    assert.ok(!("page" in done));
    assert.equal(done.url, `${APP_ORIGIN}/?state=bye`);

    // signed out: the login form again
    const again = authorizeUrl(spaParams(pkce().challenge));
    const landed = await agent.follow(await agent.request(again), again);
    assert.ok("page" in landed);
    assert.match(await landed.page.text(), /name="password"/);

    // an offline_access refresh token outlives the provider session: hence revocation at sign-out
    assert.equal((await refresh(String(tokens.body.refresh_token))).response.status, 200);
  });

  it("escapes what it echoes and refuses stale or malformed interactions", async () => {
    const agent = browser();
    const start = authorizeUrl(spaParams(pkce().challenge, { login_hint: `"><script>alert(1)</script>` }));
    const landed = await agent.follow(await agent.request(start), start);
    assert.ok("page" in landed);
    const html = await landed.page.text();
    assert.ok(html.includes('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"'));
    assert.doesNotMatch(html, /<script/);

    const wrongType = await agent.request(formAction(html), { method: "POST" });
    assert.equal(wrongType.status, 415);
    await wrongType.body?.cancel();

    const stranger = await browser().request(landed.url); // no interaction cookie
    assert.equal(stranger.status, 400);
    assert.match(await stranger.text(), /Sign-in expired/);

    const cancel = await agent.request(formAction(html).replace(/\/login$/, "/abort"), { form: {} });
    const done = await agent.follow(cancel, landed.url);
    assert.ok(!("page" in done));
    assert.equal(new URL(done.url).searchParams.get("error"), "access_denied");
  });

  it("printed nothing (no oidc-provider notices or warnings)", () => {
    // oidc-provider warns, once at import, on any Node whose process.release
    // has no LTS codename (a Current release; the Node 26.12.1 CI runs reports
    // none): a fact about the runtime, not the demo's configuration. Nothing else.
    const runtimeWarning = "oidc-provider WARNING: Unsupported runtime. Use Node.js v18.x LTS, or a later LTS release.";
    assert.deepEqual(printed, process.release.lts === undefined ? [runtimeWarning] : []);
  });
});
