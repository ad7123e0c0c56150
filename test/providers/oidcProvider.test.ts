/**
 * The test OpenID Provider (panva's oidc-provider, test/helpers/oidcProvider.ts):
 * discovery, JWKS and real token requests, verified with jose directly.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from "jose";
import { OidcProviderError, startOidcProvider, type TestProvider } from "../helpers/oidcProvider.js";

const TIMEOUT = 10_000;

async function getJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT) });
  assert.equal(response.status, 200, `GET ${url}`);
  return (await response.json()) as Record<string, unknown>;
}

describe("test OpenID Provider (oidc-provider)", () => {
  let op: TestProvider;
  let discovery: Record<string, unknown>;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  before(async () => {
    op = await startOidcProvider();
    discovery = await getJson(`${op.issuer}/.well-known/openid-configuration`);
    jwks = createRemoteJWKSet(new URL(String(discovery.jwks_uri)), { timeoutDuration: TIMEOUT });
  });

  after(async () => {
    await op?.close();
  });

  const verify = (token: string) => jwtVerify(token, jwks, { issuer: op.issuer, audience: op.resource, typ: "at+jwt" });

  test("listens on loopback and publishes a discovery document for its issuer", () => {
    assert.match(op.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(op.resource, "urn:ioserver-oidc:test-api");
    assert.deepEqual(op.scopes, ["read:stats", "chat:write"]);
    assert.equal(op.discoveryUrl, `${op.issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.issuer, op.issuer);
    assert.equal(discovery.jwks_uri, `${op.issuer}/jwks`);
    assert.equal(discovery.token_endpoint, `${op.issuer}/token`);
    assert.ok(Array.isArray(discovery.grant_types_supported) && discovery.grant_types_supported.includes("client_credentials"));
  });

  test("its JWKS holds the per-run RS256 public key only", async () => {
    const { keys } = (await getJson(String(discovery.jwks_uri))) as { keys: JWK[] };
    assert.equal(keys.length, 1);
    const [key] = keys as [JWK];
    assert.equal(key.kty, "RSA");
    assert.equal(key.alg, "RS256");
    assert.equal(key.use, "sig");
    assert.ok(key.kid);
    for (const secret of ["d", "p", "q", "dp", "dq", "qi"] as const) assert.equal(key[secret], undefined, `private member ${secret}`);
  });

  test("client credentials: a real token request returns an RFC 9068 JWT access token", async () => {
    const token = await op.clientCredentialsToken();
    assert.equal(token.split(".").length, 3);

    const { payload, protectedHeader } = await verify(token);
    const { keys } = (await getJson(String(discovery.jwks_uri))) as { keys: JWK[] };
    assert.deepEqual(protectedHeader, { alg: "RS256", typ: "at+jwt", kid: keys[0]?.kid });
    assert.equal(payload.iss, op.issuer);
    assert.equal(payload.aud, op.resource);
    assert.equal(payload.client_id, op.clientId);
    assert.equal(payload.sub, op.clientId, "oidc-provider sets sub = client_id for client credentials");
    assert.equal(payload.scope, "read:stats chat:write");
    assert.equal(typeof payload.jti, "string");
    assert.ok((payload.jti as string).length > 0);
    assert.equal(typeof payload.iat, "number");
    assert.ok(Math.abs((payload.iat as number) - Date.now() / 1000) < 60);
    assert.equal((payload.exp as number) - (payload.iat as number), 300);
    assert.deepEqual(Object.keys(payload).sort(), ["aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub"]);
  });

  test("client credentials: a narrower scope and the restricted client", async () => {
    const read = await verify(await op.clientCredentialsToken({ scope: "read:stats" }));
    assert.equal(read.payload.scope, "read:stats");

    const restricted = await verify(await op.clientCredentialsToken({ clientId: op.restrictedClientId, scope: "read:stats" }));
    assert.equal(restricted.payload.client_id, op.restrictedClientId);
    assert.equal(restricted.payload.sub, op.restrictedClientId);
    assert.equal(restricted.payload.scope, "read:stats");
  });

  test("client credentials: a scope the client is not allowed → invalid_scope", async () => {
    await assert.rejects(op.clientCredentialsToken({ clientId: op.restrictedClientId, scope: "read:stats chat:write" }), (error: unknown) => {
      assert.ok(error instanceof OidcProviderError);
      assert.equal(error.error, "invalid_scope");
      assert.equal(error.status, 400);
      return true;
    });
  });

  test("client credentials: a scope the API does not define → invalid_scope", async () => {
    await assert.rejects(op.clientCredentialsToken({ scope: "read:stats admin:all" }), { name: "OidcProviderError", error: "invalid_scope", status: 400 });
  });

  test("client credentials: an unknown client → invalid_client", async () => {
    await assert.rejects(op.clientCredentialsToken({ clientId: "nobody" }), { name: "OidcProviderError", error: "invalid_client", status: 401 });
  });

  test("a token is refused by jose for another audience or issuer", async () => {
    const token = await op.clientCredentialsToken();
    await assert.rejects(jwtVerify(token, jwks, { issuer: op.issuer, audience: "urn:other-api" }), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED" });
    await assert.rejects(jwtVerify(token, jwks, { issuer: `${op.issuer}/`, audience: op.resource }), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED" });
  });

  test("authorization code + PKCE over HTTP: the end-user's token carries sub, roles and permissions", async () => {
    const token = await op.authorizationCodeToken();
    const { payload, protectedHeader } = await verify(token);
    assert.equal(protectedHeader.typ, "at+jwt");
    assert.equal(payload.sub, "alice");
    assert.equal(payload.client_id, op.clientId);
    assert.equal(payload.aud, op.resource);
    assert.equal(payload.scope, "read:stats chat:write");
    assert.deepEqual(payload.roles, ["admin"]);
    assert.deepEqual(payload.permissions, ["read:stats", "chat:write"]);
    assert.equal((payload.exp as number) - (payload.iat as number), 300);

    const bob = await verify(await op.authorizationCodeToken({ accountId: "bob", scope: "openid read:stats" }));
    assert.equal(bob.payload.sub, "bob");
    assert.equal(bob.payload.scope, "read:stats");
    assert.deepEqual(bob.payload.roles, ["user"]);
  });

  test("authorization code: an unknown account → access_denied", async () => {
    await assert.rejects(op.authorizationCodeToken({ accountId: "mallory" }), { name: "OidcProviderError", error: "access_denied" });
  });

  test("authorization code: a scope the client is not allowed → invalid_scope", async () => {
    await assert.rejects(op.authorizationCodeToken({ clientId: op.restrictedClientId, scope: "openid chat:write" }), {
      name: "OidcProviderError",
      error: "invalid_scope",
    });
  });
});

describe("test OpenID Provider options and close()", () => {
  test("resource, scopes and accessTokenTtl are honoured; close() stops the server", async () => {
    const op = await startOidcProvider({ resource: "https://api.example.test/", scopes: ["a:read", "a:write", "a:admin"], accessTokenTtl: 42 });
    try {
      const token = await op.clientCredentialsToken({ scope: "a:read a:admin" });
      const { jwks_uri } = await getJson(op.discoveryUrl);
      const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(String(jwks_uri))), {
        issuer: op.issuer,
        audience: "https://api.example.test/",
        typ: "at+jwt",
      });
      assert.equal(payload.scope, "a:read a:admin");
      assert.equal((payload.exp as number) - (payload.iat as number), 42);
      assert.equal(decodeProtectedHeader(token).alg, "RS256");
    } finally {
      await op.close();
      await op.close(); // idempotent
    }
    await assert.rejects(fetch(op.discoveryUrl, { signal: AbortSignal.timeout(TIMEOUT) }), TypeError);
  });
});
