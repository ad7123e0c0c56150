/**
 * Only access tokens are access tokens (RFC 8725 section 3.11, RFC 9068):
 * the trusted issuer's other JWTs (logout tokens, ID tokens, other typed
 * tokens) have a good signature, iss, aud and exp, and must still be refused
 * as Bearer credentials — on HTTP and on the Socket.IO handshake.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { type TestIssuer } from "../../src/testing/index.js";
import { bothTransports, startApp, type TestApp } from "../helpers/app.js";
import { useIssuerAndApp } from "../helpers/fixtures.js";

let issuer: TestIssuer;
let app: TestApp;

useIssuerAndApp((created) => ({ issuer, app } = created));

const nowS = () => Math.floor(Date.now() / 1000);

/** A back-channel logout token (OpenID Connect Back-Channel Logout 1.0 section 2.4) addressed to the API's audience. */
const logoutToken = () =>
  issuer.mint(
    { sub: "user-1", jti: randomUUID(), iat: nowS(), events: { "http://schemas.openid.net/event/backchannel-logout": {} }, sid: "op-session" },
    { header: { typ: "logout+jwt" } },
  );

/** The outcome on both transports: HTTP status and error code, and the handshake's connect_error. */
async function both(token: string): Promise<{ http: number; code: unknown; socket: string }> {
  const { http, code, socket } = await bothTransports(app, token);
  return { http, code, socket };
}

const REFUSED = { http: 401, code: "ERR_AUTH_TOKEN_INVALID", socket: "ERR_AUTH_TOKEN_INVALID" };
const ACCEPTED = { http: 200, code: undefined, socket: "ok" };

describe("refused by default, on HTTP and Socket.IO", () => {
  it("a back-channel logout token of the trusted issuer (typ logout+jwt, events)", async () => {
    assert.deepEqual(await both(await logoutToken()), REFUSED);
  });

  it("a logout token without its typ header (events alone)", async () => {
    const token = await issuer.mint({ events: { "http://schemas.openid.net/event/backchannel-logout": {} }, jti: randomUUID() });
    assert.deepEqual(await both(token), REFUSED);
  });

  it("an ID token (nonce), with header typ JWT", async () => {
    assert.deepEqual(await both(await issuer.mint({ nonce: "n-0S6_WzA2Mj", auth_time: nowS() })), REFUSED);
  });

  it("an ID token of the code flow: no nonce, but at_hash (or c_hash), aud the client id", async () => {
    assert.deepEqual(await both(await issuer.mint({ at_hash: "77QmUPtjPfzWtF2AnpK9RQ", azp: "test-app", auth_time: nowS() })), REFUSED);
    assert.deepEqual(await both(await issuer.mint({ c_hash: "LDktKdoQak3Pk0cnXxCltA" })), REFUSED);
  });

  for (const typ of ["secevent+jwt", "dpop+jwt", "id_token+jwt", "application/logout+jwt", "jwt+at", ""]) {
    it(`header typ ${JSON.stringify(typ)}`, async () => {
      assert.deepEqual(await both(await issuer.mint({}, { header: { typ } })), REFUSED);
    });
  }

  it("a non-string header typ", async () => {
    assert.deepEqual(await both(await issuer.mint({}, { header: { typ: 42 as unknown as string } })), REFUSED);
  });

  it("a refused token stays refused when presented again (nothing is cached for it)", async () => {
    const token = await issuer.mint({ nonce: "again" });
    for (let i = 0; i < 3; i++) assert.deepEqual(await both(token), REFUSED);
  });

  it("the reason is in the server log, never in the response", async () => {
    const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${await logoutToken()}` }, signal: AbortSignal.timeout(5_000) });
    const text = await response.text();
    assert.doesNotMatch(text, /typ|logout|events/i);
    assert.ok(app.logs.some((line) => /header typ "logout\+jwt" is not an access token type/.test(line.text)), JSON.stringify(app.logs.slice(-3)));
  });
});

describe("accepted: the access token types", () => {
  for (const typ of [undefined, "JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/JWT"]) {
    it(`header typ ${String(typ)}`, async () => {
      const header = typ === undefined ? { typ: undefined as unknown as string } : { typ };
      assert.deepEqual(await both(await issuer.mint({}, { header })), ACCEPTED);
    });
  }
});

describe("relaxTokenType loosens only what it names", () => {
  const config = (relaxTokenType: OidcConfigInput["relaxTokenType"]): OidcConfigInput => ({ ...issuer.config, relaxTokenType });
  const accepted = async (token: string, cfg: OidcConfigInput) => (await verifyOidcToken(token, cfg)).sub;
  const refused = async (token: string, cfg: OidcConfigInput, reason: RegExp) =>
    assert.rejects(verifyOidcToken(token, cfg), (error: { code?: string; reason?: string }) => error.code === "ERR_AUTH_TOKEN_INVALID" && reason.test(String(error.reason)));

  it("nonce: true accepts a token with nonce; a logout token is still refused", async () => {
    const cfg = config({ nonce: true });
    assert.equal(await accepted(await issuer.mint({ nonce: "n" }), cfg), "user-1");
    await refused(await logoutToken(), cfg, /logout\+jwt/);
  });

  it("typ: extra header types are accepted (any case, application/ optional); others still refused", async () => {
    const cfg = config({ typ: ["vnd.example+jwt"] });
    assert.equal(await accepted(await issuer.mint({}, { header: { typ: "application/VND.example+JWT" } }), cfg), "user-1");
    await refused(await issuer.mint({}, { header: { typ: "secevent+jwt" } }), cfg, /not an access token type/);
  });

  it("events can never be loosened", async () => {
    const cfg = config({ typ: ["logout+jwt"], nonce: true, presetMarker: false });
    await refused(await logoutToken(), cfg, /"events"/);
  });

  it("strict (RFC 9068) still requires at+jwt", async () => {
    const cfg: OidcConfigInput = { ...issuer.config, strict: true, relaxTokenType: { typ: ["JWT"] } };
    const claims = { client_id: "c", jti: randomUUID(), iat: nowS() };
    await refused(await issuer.mint(claims, { header: { typ: "JWT" } }), cfg, /at\+jwt/);
    assert.equal(await accepted(await issuer.mint(claims, { header: { typ: "at+jwt" } }), cfg), "user-1");
  });

  it("invalid options are named", async () => {
    const misconfigured = (reason: RegExp) => (error: { code?: string; reason?: string }) => error.code === "ERR_AUTH_MISCONFIGURED" && reason.test(String(error.reason));
    await assert.rejects(verifyOidcToken("a.b.c", config({ nonce: "yes" as unknown as boolean })), misconfigured(/"relaxTokenType\.nonce" must be a boolean/));
    await assert.rejects(verifyOidcToken("a.b.c", config({ events: true } as never)), misconfigured(/"relaxTokenType" has no option "events"/));
    await assert.rejects(verifyOidcToken("a.b.c", config({ typ: "JWT" as never })), misconfigured(/"relaxTokenType\.typ" must be an array/));
    const perIssuer: OidcConfigInput = { issuers: [{ issuer: issuer.issuer, audience: "test-app", relaxTokenType: { presetMarker: 0 as never } }] };
    await assert.rejects(verifyOidcToken("a.b.c", perIssuer), misconfigured(/"issuers\[0\]\.relaxTokenType\.presetMarker" must be a boolean/));
  });
});

describe("presets know their provider's marker", () => {
  const keycloak = (): OidcConfigInput => ({ ...issuer.config, claimMapping: "keycloak" });

  it("keycloak: payload typ Bearer is an access token; ID, Refresh, Logout and none are refused", async () => {
    assert.equal((await verifyOidcToken(await issuer.mint({ typ: "Bearer" }), keycloak())).sub, "user-1");
    for (const typ of ["ID", "Refresh", "Logout", "bearer", undefined]) {
      await assert.rejects(
        verifyOidcToken(await issuer.mint({ typ }), keycloak()),
        (error: { code?: string; reason?: string }) => error.code === "ERR_AUTH_TOKEN_INVALID" && /keycloak: only Bearer tokens/.test(String(error.reason)),
        `payload typ ${String(typ)}`,
      );
    }
  });

  it("keycloak through a real IOServer: an ID token is refused on both transports", async () => {
    const keycloakApp = await startApp({ config: keycloak() });
    try {
      const saved = app;
      app = keycloakApp;
      try {
        assert.deepEqual(await both(await issuer.mint({ typ: "ID" })), REFUSED);
        assert.deepEqual(await both(await issuer.mint({ typ: "Bearer" })), ACCEPTED);
      } finally {
        app = saved;
      }
    } finally {
      await keycloakApp.close();
    }
  });

  it("presetMarker: false skips the marker (documented risk)", async () => {
    assert.equal((await verifyOidcToken(await issuer.mint({ typ: "ID" }), { ...keycloak(), relaxTokenType: { presetMarker: false } })).sub, "user-1");
  });
});
