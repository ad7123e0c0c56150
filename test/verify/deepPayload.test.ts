/**
 * A verified payload nested a few thousand levels deep (well under
 * maxTokenLength) must be refused or accepted like any other token, never
 * fail with a bare RangeError from the freezing walk.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CompactSign } from "jose";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { outcome, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

const ISS = "https://idp.example.test";
const AUD = "deep-app";
let key: SigningKey;
let jwks: JwksServer;
let config: OidcConfigInput;
let app: TestApp;

before(async () => {
  key = await makeKey("ES256");
  jwks = await startJwksServer([key.jwk]);
  config = { authServiceUrl: ISS, appSlug: AUD, jwksUri: jwks.jwksUri };
  app = await startApp({ config });
});
after(async () => {
  await app?.close();
  await jwks?.close();
});

/** Signed by hand: JSON.stringify itself cannot write this depth, JSON.parse reads it. */
async function deepToken(sub: string, depth: number): Promise<string> {
  return deepClaimToken("nested", depth, sub);
}

/** A token whose claim `claim` is an array nested `depth` levels deep (replacing the registered claim of that name). */
async function deepClaimToken(claim: string, depth: number, sub = "deep-claim"): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const members: Record<string, string> = { iss: JSON.stringify(ISS), aud: JSON.stringify(AUD), sub: JSON.stringify(sub), iat: String(now), exp: String(now + 300) };
  members[claim] = `${"[".repeat(depth)}${"]".repeat(depth)}`;
  const json = `{${Object.entries(members).map(([name, value]) => `${JSON.stringify(name)}:${value}`).join(",")}}`;
  return new CompactSign(new TextEncoder().encode(json)).setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" }).sign(key.privateKey);
}

/** POST /api/echo with the token as a Bearer credential: the status and the body. */
async function postEcho(token: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${app.url}/api/echo`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.text() };
}

describe("deeply nested verified payloads", () => {
  it("verifyOidcToken: a 4,500-deep payload under maxTokenLength verifies (it did before the shared lists)", async () => {
    const token = await deepToken("deep-1", 4_500);
    assert.ok(token.length < 16 * 1024);
    const context = await verifyOidcToken(token, config);
    assert.equal(context.sub, "deep-1");
  });

  it("HTTP: the same token reaches the handler (POST /api/echo answers no claims), not a 500 from the middleware", async () => {
    const { status, body } = await postEcho(await deepToken("deep-2", 4_500));
    assert.equal(status, 200, body);
  });

  it("Socket.IO: the same token connects", async () => {
    const token = await deepToken("deep-3", 4_500);
    const socket = app.connect("chat", { auth: { token } });
    try {
      const result = await outcome(socket);
      assert.equal(result.connected, true, JSON.stringify(result.connected ? {} : { message: result.message, data: result.data }));
    } finally {
      socket.disconnect();
    }
  });
});

describe("a registered claim nested thousands deep is refused as invalid", () => {
  // The refusal's reason quotes the claim: quoting it must not overflow the stack (a 500 instead of a 401).
  for (const claim of ["sub", "iss", "aud", "iat"]) {
    it(`verifyOidcToken: ${claim}`, async () => {
      const token = await deepClaimToken(claim, 4_500);
      assert.ok(token.length < 16 * 1024);
      await assert.rejects(verifyOidcToken(token, config), (error: unknown) => error instanceof OidcAuthError && error.code === "ERR_AUTH_TOKEN_INVALID");
    });
  }

  it("HTTP: 401, not a 500", async () => {
    const { status, body } = await postEcho(await deepClaimToken("sub", 4_500));
    assert.equal(status, 401, body);
  });

  it("Socket.IO: the handshake is refused as invalid", async () => {
    const token = await deepClaimToken("aud", 4_500);
    const socket = app.connect("chat", { auth: { token } });
    try {
      const result = await outcome(socket);
      assert.equal(result.connected, false);
      assert.equal((result.data as { code?: unknown } | undefined)?.code, "ERR_AUTH_TOKEN_INVALID");
    } finally {
      socket.disconnect();
    }
  });
});
