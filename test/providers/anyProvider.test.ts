/**
 * Any OpenID provider: discovery, several issuers, verification options and
 * claim-mapping presets, through verifyOidcToken with real keys and servers.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";

const nowS = () => Math.floor(Date.now() / 1000);

async function refused(promise: Promise<unknown>, code: string, reason?: RegExp): Promise<OidcAuthError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof OidcAuthError, String(error));
  assert.equal(error.code, code, error.reason);
  if (reason) assert.match(error.reason, reason);
  return error;
}

/** A provider whose discovery document we control: path layout, status, issuer, hit count. */
interface DiscoveryServer {
  origin: string;
  hits: Record<string, number>;
  mode: "oidc" | "rfc8414" | "500" | "wrong-issuer" | "no-jwks";
  issuerPath: string;
  close(): Promise<void>;
}

async function startDiscoveryServer(kit: TestIssuer, issuerPath = ""): Promise<DiscoveryServer> {
  const state: DiscoveryServer = { origin: "", hits: {}, mode: "oidc", issuerPath, close: async () => undefined };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/";
    state.hits[path] = (state.hits[path] ?? 0) + 1;
    const issuer = state.origin + state.issuerPath;
    const document = { issuer, jwks_uri: kit.jwksUri };
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    const oidcPath = `${state.issuerPath}/.well-known/openid-configuration`;
    const rfcPath = `/.well-known/oauth-authorization-server${state.issuerPath}`;
    switch (state.mode) {
      case "500":
        return json(500, { error: "down" });
      case "wrong-issuer":
        return path === oidcPath ? json(200, { ...document, issuer: "https://elsewhere.test" }) : json(404, {});
      case "no-jwks":
        return path === oidcPath ? json(200, { issuer }) : json(404, {});
      case "rfc8414":
        return path === rfcPath ? json(200, document) : json(404, {});
      default:
        return path === oidcPath ? json(200, document) : json(404, {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}

let kit: TestIssuer;
before(async () => {
  kit = await createTestIssuer({ appSlug: "api" });
});
after(async () => {
  await kit.close();
});

describe("discovery", () => {
  it("issuer + audience alone: the JWKS comes from .well-known/openid-configuration, fetched once", async () => {
    const idp = await startDiscoveryServer(kit, "/realms/demo");
    try {
      const issuer = `${idp.origin}/realms/demo`;
      const config: OidcConfigInput = { issuer, audience: "api" };
      const tokens = await Promise.all([1, 2, 3].map((i) => kit.mint({ iss: issuer, sub: `u${i}` })));
      const contexts = await Promise.all(tokens.map((t) => verifyOidcToken(t, config)));
      assert.deepEqual(contexts.map((c) => c.sub), ["u1", "u2", "u3"]);
      assert.equal(idp.hits["/realms/demo/.well-known/openid-configuration"], 1, "one discovery fetch for concurrent first requests");
      await verifyOidcToken(tokens[0]!, config);
      assert.equal(idp.hits["/realms/demo/.well-known/openid-configuration"], 1, "cached");
    } finally {
      await idp.close();
    }
  });

  it("falls back to RFC 8414 (/.well-known/oauth-authorization-server inserted before the issuer's path)", async () => {
    const idp = await startDiscoveryServer(kit, "/tenant1");
    idp.mode = "rfc8414";
    try {
      const issuer = `${idp.origin}/tenant1`;
      const context = await verifyOidcToken(await kit.mint({ iss: issuer }), { issuer, audience: "api" });
      assert.equal(context.sub, "user-1");
      assert.equal(idp.hits["/.well-known/oauth-authorization-server/tenant1"], 1);
    } finally {
      await idp.close();
    }
  });

  it("a document naming another issuer, or without jwks_uri, is refused: ERR_AUTH_UNAVAILABLE", async () => {
    for (const mode of ["wrong-issuer", "no-jwks"] as const) {
      const idp = await startDiscoveryServer(kit);
      idp.mode = mode;
      try {
        const issuer = idp.origin;
        await refused(verifyOidcToken(await kit.mint({ iss: issuer }), { issuer, audience: "api" }), "ERR_AUTH_UNAVAILABLE", /discovery of/);
      } finally {
        await idp.close();
      }
    }
  });

  it("a failing discovery is retried with back-off, not on every request", async () => {
    const idp = await startDiscoveryServer(kit);
    idp.mode = "500";
    try {
      const issuer = idp.origin;
      const config = { issuer, audience: "api" };
      const token = await kit.mint({ iss: issuer });
      await refused(verifyOidcToken(token, config), "ERR_AUTH_UNAVAILABLE", /answered 500/);
      const after1 = idp.hits["/.well-known/openid-configuration"];
      for (let i = 0; i < 5; i++) await refused(verifyOidcToken(token, config), "ERR_AUTH_UNAVAILABLE", /backing off/);
      assert.equal(idp.hits["/.well-known/openid-configuration"], after1, "no fetch during the back-off");
      idp.mode = "oidc";
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      assert.equal((await verifyOidcToken(token, config)).sub, "user-1", "recovers after the back-off");
    } finally {
      await idp.close();
    }
  });
});

describe("several issuers", () => {
  let other: TestIssuer;
  let config: OidcConfigInput;
  before(async () => {
    other = await createTestIssuer({ appSlug: "other-api" });
    config = {
      issuers: [
        { issuer: kit.issuer, audience: "api", jwksUri: kit.jwksUri },
        { issuer: other.issuer, audience: ["other-api", "extra"], jwksUri: other.jwksUri, claimMapping: "okta" },
      ],
    };
  });
  after(async () => {
    await other.close();
  });

  it("routes each token by its iss, with that issuer's audience and claim mapping", async () => {
    const a = await verifyOidcToken(await kit.mint({ sub: "a", roles: ["r-a"], groups: ["g"] }), config);
    assert.deepEqual([a.sub, a.roles], ["a", ["r-a"]]);
    const b = await verifyOidcToken(await other.mint({ sub: "b", roles: ["ignored"], groups: ["okta-group"] }), config);
    assert.deepEqual([b.sub, b.roles], ["b", ["okta-group"]]);
  });

  it("a token of one issuer with the other's audience is refused", async () => {
    await refused(verifyOidcToken(await kit.mint({ aud: "other-api" }), config), "ERR_AUTH_TOKEN_INVALID", /aud was "other-api"/);
  });

  it("an issuer's keys do not verify the other's tokens", async () => {
    const forged = await other.mint({ iss: kit.issuer, aud: "api" });
    await refused(verifyOidcToken(forged, config), "ERR_AUTH_TOKEN_INVALID", /no key in the JWKS|signature/);
  });

  it("an unknown iss is refused without any network call", async () => {
    const before = kit.jwksRequests + other.jwksRequests;
    await refused(verifyOidcToken(await kit.mint({ iss: "https://unknown.test" }), config), "ERR_AUTH_TOKEN_INVALID", /expected one of/);
    await refused(verifyOidcToken(await kit.mint({ iss: undefined }), config), "ERR_AUTH_TOKEN_INVALID", /iss was undefined/);
    assert.equal(kit.jwksRequests + other.jwksRequests, before);
  });

  it("configuration mistakes are named", async () => {
    await refused(verifyOidcToken("a.b.c", { issuers: [] }), "ERR_AUTH_MISCONFIGURED", /"issuers" must be a non-empty array/);
    await refused(
      verifyOidcToken("a.b.c", { issuer: "https://x.test", issuers: [{ issuer: "https://y.test", audience: "a" }] }),
      "ERR_AUTH_MISCONFIGURED",
      /"issuer" cannot be combined with "issuers"/,
    );
    await refused(
      verifyOidcToken("a.b.c", { issuers: [{ issuer: "https://y.test", audience: "a" }, { issuer: "https://y.test", audience: "b" }] }),
      "ERR_AUTH_MISCONFIGURED",
      /"issuers\[1\].issuer" repeats/,
    );
    await refused(verifyOidcToken("a.b.c", { issuers: [{ issuer: "https://y.test" } as never] }), "ERR_AUTH_MISCONFIGURED", /"issuers\[0\].audience"/);
    await refused(verifyOidcToken("a.b.c", { issuer: "https://y.test" }), "ERR_AUTH_MISCONFIGURED", /"appSlug" is required .*, or "audience"/);
  });
});

describe("verification options", () => {
  const base = () => ({ ...kit.config });

  it("maxTokenAge refuses old tokens and tokens without iat", async () => {
    const config = { ...base(), maxTokenAge: 60 };
    assert.equal((await verifyOidcToken(await kit.mint({ iat: nowS() - 30 }), config)).sub, "user-1");
    await refused(verifyOidcToken(await kit.mint({ iat: nowS() - 600 }), config), "ERR_AUTH_TOKEN_INVALID", /over the maxTokenAge of 60 s/);
    await refused(verifyOidcToken(await kit.mint({ iat: undefined }), config), "ERR_AUTH_TOKEN_INVALID", /"iat" is missing/);
  });

  it("requiredClaims", async () => {
    const config = { ...base(), requiredClaims: ["tenant"] };
    assert.equal((await verifyOidcToken(await kit.mint({ tenant: "t1" }), config)).sub, "user-1");
    await refused(verifyOidcToken(await kit.mint(), config), "ERR_AUTH_TOKEN_INVALID", /"tenant" is missing/);
  });

  it("strict mode (RFC 9068): typ at+jwt, client_id, iat and jti required", async () => {
    const config = { ...base(), strict: true };
    const good = { client_id: "spa", jti: "j1" };
    assert.equal((await verifyOidcToken(await kit.mint(good, { header: { typ: "at+jwt" } }), config)).sub, "user-1");
    assert.equal((await verifyOidcToken(await kit.mint(good, { header: { typ: "application/at+jwt" } }), config)).sub, "user-1");
    await refused(verifyOidcToken(await kit.mint(good), config), "ERR_AUTH_TOKEN_INVALID", /typ/);
    await refused(verifyOidcToken(await kit.mint({ ...good, jti: undefined }, { header: { typ: "at+jwt" } }), config), "ERR_AUTH_TOKEN_INVALID", /"jti" is missing/);
    await refused(verifyOidcToken(await kit.mint({ ...good, client_id: undefined }, { header: { typ: "at+jwt" } }), config), "ERR_AUTH_TOKEN_INVALID", /"client_id" is missing/);
    // Not strict: an ID-token-shaped JWT is accepted.
    assert.equal((await verifyOidcToken(await kit.mint(), base())).sub, "user-1");
  });

  it("invalid option values are named", async () => {
    await refused(verifyOidcToken("a.b.c", { ...base(), maxTokenAge: -1 }), "ERR_AUTH_MISCONFIGURED", /"maxTokenAge" must be a positive number/);
    await refused(verifyOidcToken("a.b.c", { ...base(), claimMapping: "cognito" as never }), "ERR_AUTH_MISCONFIGURED", /"claimMapping" must be a function or one of/);
    await refused(verifyOidcToken("a.b.c", { ...base(), requiredClaims: "tenant" as never }), "ERR_AUTH_MISCONFIGURED", /"requiredClaims" must be an array/);
  });
});

describe("claim mapping presets (tokens shaped like each provider's)", () => {
  it("each preset works in the README's form: issuer + audience (keys by discovery) + claimMapping", async () => {
    for (const claimMapping of ["auth-service", "keycloak", "auth0", "entra", "okta", "google"] as const) {
      // Keycloak marks its access tokens with the payload typ "Bearer".
      const marker = claimMapping === "keycloak" ? { typ: "Bearer" } : {};
      const context = await verifyOidcToken(await kit.mint({ sub: claimMapping, ...marker }), { issuer: kit.issuer, audience: "api", claimMapping });
      assert.equal(context.sub, claimMapping);
    }
  });

  const map = async (claims: Record<string, unknown>, options: Partial<OidcConfigInput>) => {
    const { roles, permissions, scopes, features, userRole } = await verifyOidcToken(await kit.mint(claims), { ...kit.config, ...options });
    return { roles, permissions, scopes, features, userRole };
  };

  it("auth-service (default): roles, permissions, features; scopes from scope", async () => {
    assert.deepEqual(await map({ roles: ["admin"], permissions: ["p"], features: { f: true }, scope: "openid chat:write" }, {}), {
      roles: ["admin"],
      permissions: ["p"],
      scopes: ["openid", "chat:write"],
      features: { f: true },
      userRole: "admin",
    });
  });

  it("keycloak: realm_access.roles plus resource_access[clientId].roles", async () => {
    const claims = {
      realm_access: { roles: ["offline_access", "user"] },
      resource_access: { api: { roles: ["editor"] }, account: { roles: ["manage-account"] } },
      scope: "openid profile",
      roles: ["ignored"],
      typ: "Bearer",
    };
    assert.deepEqual(await map(claims, { claimMapping: "keycloak" }), {
      roles: ["offline_access", "user", "editor"],
      permissions: [],
      scopes: ["openid", "profile"],
      features: {},
      userRole: "offline_access",
    });
    assert.deepEqual((await map(claims, { claimMapping: "keycloak", clientId: "account" })).roles, ["offline_access", "user", "manage-account"]);
  });

  it("auth0: namespaced roles claim and permissions", async () => {
    const claims = { "https://example.test/roles": ["admin"], permissions: ["read:stats"], scope: "read:stats" };
    assert.deepEqual(await map(claims, { claimMapping: "auth0", rolesClaim: "https://example.test/roles" }), {
      roles: ["admin"],
      permissions: ["read:stats"],
      scopes: ["read:stats"],
      features: {},
      userRole: "admin",
    });
    assert.deepEqual((await map(claims, { claimMapping: "auth0" })).roles, [], "no rolesClaim, no roles");
  });

  it("entra: roles and scp (space-delimited string)", async () => {
    const claims = { roles: ["Task.Admin"], scp: "User.Read Files.Read", groups: ["5f1c…"] };
    assert.deepEqual(await map(claims, { claimMapping: "entra" }), {
      roles: ["Task.Admin"],
      permissions: [],
      scopes: ["User.Read", "Files.Read"],
      features: {},
      userRole: "Task.Admin",
    });
  });

  it("okta: groups as roles, scp as an array", async () => {
    const claims = { groups: ["Everyone", "Admins"], scp: ["openid", "email"] };
    assert.deepEqual(await map(claims, { claimMapping: "okta" }), {
      roles: ["Everyone", "Admins"],
      permissions: [],
      scopes: ["openid", "email"],
      features: {},
      userRole: "Everyone",
    });
  });

  it("google: no roles", async () => {
    assert.deepEqual(await map({ roles: ["x"], email: "g@example.test", scope: "openid email" }, { claimMapping: "google" }), {
      roles: [],
      permissions: [],
      scopes: ["openid", "email"],
      features: {},
      userRole: "user",
    });
  });

  it("a custom function; its output is sanitised", async () => {
    const mapped = await map({ perms: "a,b", tier: "gold" }, {
      claimMapping: (claims) => ({
        roles: [String(claims["tier"]), 42 as never],
        permissions: String(claims["perms"]).split(","),
        features: { tier: claims["tier"] },
        scopes: ["custom"],
      }),
    });
    assert.deepEqual(mapped, { roles: ["gold"], permissions: ["a", "b"], scopes: ["custom"], features: { tier: "gold" }, userRole: "gold" });
  });

  it("a custom function that throws is a server-side fault: ERR_AUTH_MISCONFIGURED", async () => {
    await refused(
      verifyOidcToken(await kit.mint(), { ...kit.config, claimMapping: () => { throw new Error("bug"); } }),
      "ERR_AUTH_MISCONFIGURED",
      /claim mapping threw: Error: bug/,
    );
  });
});
