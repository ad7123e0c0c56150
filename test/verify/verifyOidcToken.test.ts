import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { exportSPKI, SignJWT } from "jose";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { b64url, makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

const ISS = "https://idp.example.test";
const AUD = "my-app";
const now = () => Math.floor(Date.now() / 1000);

let rsa: SigningKey;
let ec: SigningKey;
let ps: SigningKey;
let ed: SigningKey;
let stranger: SigningKey;
let jwks: JwksServer;
let config: OidcConfigInput;

before(async () => {
  [rsa, ec, ps, ed, stranger] = await Promise.all([makeKey("RS256"), makeKey("ES256"), makeKey("PS256"), makeKey("EdDSA"), makeKey("RS256")]);
  jwks = await startJwksServer([rsa.jwk, ec.jwk, ps.jwk, ed.jwk]);
  config = { authServiceUrl: ISS, appSlug: AUD, jwksUri: jwks.jwksUri };
});
after(async () => {
  await jwks.close();
});

const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, sub: "user-1", iat: now(), exp: now() + 300, ...extra });

async function rejects(token: unknown, code: string, reason?: RegExp, cfg: OidcConfigInput = config): Promise<OidcAuthError> {
  let caught: unknown;
  try {
    await verifyOidcToken(token as string, cfg);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof OidcAuthError, `expected an OidcAuthError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.reason);
  if (reason) assert.match(caught.reason, reason);
  if (typeof token === "string" && token.length > 20) {
    assert.ok(!caught.reason.includes(token) && !caught.message.includes(token), "the token never appears in the error");
  }
  return caught;
}

describe("verifyOidcToken: valid tokens", () => {
  for (const name of ["RS256", "ES256", "PS256", "EdDSA"] as const) {
    it(`accepts ${name} and maps the claims`, async () => {
      const key = { RS256: rsa, ES256: ec, PS256: ps, EdDSA: ed }[name];
      const exp = now() + 300;
      const token = await sign(key, claims({ exp, email: "u@x.test", roles: ["a"], permissions: ["p"], features: { f: 1 } }));
      const { claims: verified, ...context } = await verifyOidcToken(token, config);
      assert.equal(verified.sub, "user-1");
      assert.equal(verified.iss, ISS);
      assert.ok(Object.isFrozen(verified));
      assert.deepEqual(context, {
        sub: "user-1",
        userId: "user-1",
        email: "u@x.test",
        name: null,
        userRole: "a",
        roles: ["a"],
        permissions: ["p"],
        features: { f: 1 },
        scopes: [],
        expiresAt: exp * 1000,
      });
    });
  }

  it("accepts an aud array that contains the audience", async () => {
    await verifyOidcToken(await sign(rsa, claims({ aud: ["other", AUD] })), config);
  });

  it("accepts a token expired within the clock tolerance (default 5 s)", async () => {
    await verifyOidcToken(await sign(rsa, claims({ exp: now() - 2 })), config);
  });

  it("accepts nbf slightly in the future within the tolerance", async () => {
    await verifyOidcToken(await sign(rsa, claims({ nbf: now() + 2 })), config);
  });
});

describe("verifyOidcToken: rejected tokens", () => {
  it("expired", async () => {
    await rejects(await sign(rsa, claims({ exp: now() - 42 })), "ERR_AUTH_TOKEN_INVALID", /expired 4[2-4] s ago/);
  });

  it("expired beyond a clockTolerance of 0", async () => {
    await rejects(await sign(rsa, claims({ exp: now() - 2 })), "ERR_AUTH_TOKEN_INVALID", /expired/, { ...config, clockTolerance: 0 });
  });

  it("nbf in the future", async () => {
    await rejects(await sign(rsa, claims({ nbf: now() + 120 })), "ERR_AUTH_TOKEN_INVALID", /not valid before/);
  });

  it("wrong iss", async () => {
    await rejects(await sign(rsa, claims({ iss: "https://evil.test" })), "ERR_AUTH_TOKEN_INVALID", /iss was "https:\/\/evil.test"/);
  });

  it("iss with a trailing slash is not the issuer", async () => {
    await rejects(await sign(rsa, claims({ iss: `${ISS}/` })), "ERR_AUTH_TOKEN_INVALID", /iss was/);
  });

  it("wrong aud", async () => {
    await rejects(await sign(rsa, claims({ aud: "other-app" })), "ERR_AUTH_TOKEN_INVALID", /aud was "other-app"/);
  });

  it("aud array without the audience", async () => {
    await rejects(await sign(rsa, claims({ aud: ["a", "b"] })), "ERR_AUTH_TOKEN_INVALID", /aud was/);
  });

  it("missing exp (a token must not live forever)", async () => {
    await rejects(await sign(rsa, claims({ exp: undefined })), "ERR_AUTH_TOKEN_INVALID", /"exp" is missing/);
  });

  it("missing sub", async () => {
    await rejects(await sign(rsa, claims({ sub: undefined })), "ERR_AUTH_TOKEN_INVALID", /"sub" is missing/);
  });

  it("empty or non-string sub", async () => {
    await rejects(await sign(rsa, claims({ sub: "" })), "ERR_AUTH_TOKEN_INVALID", /sub must be a non-empty string/);
    await rejects(await sign(rsa, claims({ sub: 42 })), "ERR_AUTH_TOKEN_INVALID", /sub must be a non-empty string/);
  });

  it("exp as a string", async () => {
    await rejects(await sign(rsa, claims({ exp: String(now() + 300) })), "ERR_AUTH_TOKEN_INVALID");
  });

  it("tampered payload", async () => {
    const [h, , s] = (await sign(rsa, claims())).split(".");
    const forged = `${h}.${b64url(JSON.stringify(claims({ sub: "admin", roles: ["admin"] })))}.${s}`;
    await rejects(forged, "ERR_AUTH_TOKEN_INVALID", /signature verification failed/);
  });

  it("signed by an unknown key under a published kid", async () => {
    const token = await sign({ ...stranger, kid: rsa.kid }, claims());
    await rejects(token, "ERR_AUTH_TOKEN_INVALID", /signature verification failed/);
  });

  it("unknown kid", async () => {
    await rejects(await sign(stranger, claims()), "ERR_AUTH_TOKEN_INVALID", /no key in the JWKS matches kid/);
  });

  it('"a.b.c"', async () => {
    await rejects("a.b.c", "ERR_AUTH_TOKEN_INVALID", /header is not valid/);
  });

  it("random bytes", async () => {
    await rejects(randomBytes(256).toString("latin1"), "ERR_AUTH_TOKEN_INVALID", /not a compact JWS/);
  });

  it("a 1 MiB string is refused on length alone", async () => {
    await rejects("a".repeat(1024 * 1024), "ERR_AUTH_TOKEN_INVALID", /over the 16384 limit/);
  });

  it("unicode garbage", async () => {
    await rejects("Ω≈ç√∫.˜µ≤≥÷.🙂🙃", "ERR_AUTH_TOKEN_INVALID", /not a compact JWS/);
  });

  it("a JWE (five segments) is not a JWS", async () => {
    await rejects("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "ERR_AUTH_TOKEN_INVALID", /not a compact JWS/);
  });

  it("non-string or empty tokens count as no token", async () => {
    for (const token of [undefined, null, 42, {}, ["x"], ""]) {
      await rejects(token, "ERR_AUTH_TOKEN_REQUIRED");
    }
  });
});

describe("verifyOidcToken: algorithm confusion is refused before any key fetch", () => {
  let fresh: JwksServer;
  let cfg: OidcConfigInput;
  before(async () => {
    fresh = await startJwksServer([rsa.jwk]);
    cfg = { ...config, jwksUri: fresh.jwksUri };
  });
  after(async () => {
    await fresh.close();
  });

  it("alg: none (empty signature)", async () => {
    const token = `${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify(claims()))}.`;
    await rejects(token, "ERR_AUTH_TOKEN_INVALID", undefined, cfg);
    assert.equal(fresh.hits, 0);
  });

  it("alg: none with a made-up signature", async () => {
    const token = `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify(claims()))}.${b64url("sig")}`;
    await rejects(token, "ERR_AUTH_TOKEN_INVALID", /algorithm "none" is not allowed/, cfg);
    assert.equal(fresh.hits, 0);
  });

  it("HS256 signed with the RSA public key (PEM) as the HMAC secret", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: rsa.kid }).sign(new TextEncoder().encode(pem));
    await rejects(token, "ERR_AUTH_TOKEN_INVALID", /algorithm "HS256" is not allowed/, cfg);
    assert.equal(fresh.hits, 0);
  });

  it("an algorithm outside a narrowed allow-list", async () => {
    const token = await sign(ec, claims());
    await rejects(token, "ERR_AUTH_TOKEN_INVALID", /"ES256" is not allowed/, { ...cfg, algorithms: ["RS256"] });
    assert.equal(fresh.hits, 0);
  });

  it("HS* cannot even be configured", async () => {
    await rejects(await sign(rsa, claims()), "ERR_AUTH_MISCONFIGURED", /may only list asymmetric algorithms/, { ...cfg, algorithms: ["HS256"] });
  });
});

describe("verifyOidcToken: key set fetching", () => {
  it("concurrent first requests share one JWKS fetch", async () => {
    const server = await startJwksServer([rsa.jwk]);
    try {
      const cfg = { ...config, jwksUri: server.jwksUri };
      const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => sign(rsa, claims({ sub: `u${i}` }))));
      await Promise.all(tokens.map((t) => verifyOidcToken(t, cfg)));
      assert.equal(server.hits, 1);
      await verifyOidcToken(tokens[0]!, cfg);
      assert.equal(server.hits, 1, "cached afterwards");
    } finally {
      await server.close();
    }
  });

  it("an unknown kid causes at most one re-fetch per cooldown", async () => {
    const server = await startJwksServer([rsa.jwk]);
    try {
      const cfg = { ...config, jwksUri: server.jwksUri, jwksCooldown: 60_000 };
      await verifyOidcToken(await sign(rsa, claims()), cfg);
      assert.equal(server.hits, 1);
      for (let i = 0; i < 5; i++) await rejects(await sign(stranger, claims()), "ERR_AUTH_TOKEN_INVALID", /no key/, cfg);
      // The set was fetched moments ago, inside the cooldown: no re-fetch at all.
      assert.equal(server.hits, 1);
    } finally {
      await server.close();
    }
  });

  it("a key published after the cooldown is picked up by one re-fetch (rotation)", async () => {
    const server = await startJwksServer([rsa.jwk]);
    try {
      const cfg = { ...config, jwksUri: server.jwksUri, jwksCooldown: 0 };
      await verifyOidcToken(await sign(rsa, claims()), cfg);
      server.keys = [rsa.jwk, stranger.jwk];
      await verifyOidcToken(await sign(stranger, claims()), cfg);
      assert.equal(server.hits, 2);
    } finally {
      await server.close();
    }
  });

  for (const mode of ["500", "invalid-json", "not-a-jwks"] as const) {
    it(`JWKS answering ${mode} → ERR_AUTH_UNAVAILABLE`, async () => {
      const server = await startJwksServer([rsa.jwk]);
      server.mode = mode;
      try {
        await rejects(await sign(rsa, claims()), "ERR_AUTH_UNAVAILABLE", /could not be obtained/, { ...config, jwksUri: server.jwksUri });
      } finally {
        await server.close();
      }
    });
  }

  it("JWKS server down → ERR_AUTH_UNAVAILABLE at once", async () => {
    const server = await startJwksServer([rsa.jwk]);
    const uri = server.jwksUri;
    await server.close();
    const started = Date.now();
    await rejects(await sign(rsa, claims()), "ERR_AUTH_UNAVAILABLE", /could not be obtained/, { ...config, jwksUri: uri });
    assert.ok(Date.now() - started < 5_000);
  });

  it("JWKS hanging → ERR_AUTH_UNAVAILABLE after jwksTimeout, no hang", async () => {
    const server = await startJwksServer([rsa.jwk]);
    server.mode = "hang";
    try {
      const started = Date.now();
      const error = await rejects(await sign(rsa, claims()), "ERR_AUTH_UNAVAILABLE", /could not be obtained/, { ...config, jwksUri: server.jwksUri, jwksTimeout: 300 });
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 4_000, `took ${elapsed} ms`);
      assert.equal(error.statusCode, 503);
      assert.equal(error.headers["retry-after"], "5");
    } finally {
      await server.close();
    }
  });
});

describe("verifyOidcToken: configuration errors", () => {
  it("an invalid config rejects with ERR_AUTH_MISCONFIGURED naming the option", async () => {
    await rejects("x.y.z", "ERR_AUTH_MISCONFIGURED", /"appSlug" is required/, { authServiceUrl: ISS });
    await rejects("x.y.z", "ERR_AUTH_MISCONFIGURED", /"jwksTimeout" must be a non-negative integer/, { ...config, jwksTimeout: -1 });
    await rejects("x.y.z", "ERR_AUTH_MISCONFIGURED", /"tokenCache.admitAfter" must be 1 or 2/, { ...config, tokenCache: { admitAfter: 3 as 2 } });
    await rejects("x.y.z", "ERR_AUTH_MISCONFIGURED", /"tokenCache.admitAfter" must be 1 or 2/, { ...config, tokenCache: { admitAfter: "2" as unknown as 2 } });
    await rejects("x.y.z", "ERR_AUTH_MISCONFIGURED", /"tokenCache.later" is not an option \(maxEntries, maxBytes, maxTtl, admitAfter\)/, { ...config, tokenCache: { later: 1 } as never });
  });
});

describe("verifyOidcToken: always answers through its promise", () => {
  /** Calls verifyOidcToken, checking that it neither throws nor returns anything but a promise. */
  function call(token: unknown, cfg: OidcConfigInput): Promise<unknown> {
    let answer: unknown;
    assert.doesNotThrow(() => {
      answer = verifyOidcToken(token as string, cfg);
    });
    assert.ok(answer instanceof Promise, "a promise");
    return answer as Promise<unknown>;
  }

  it("whether the answer is known at once (no token, not a JWS, bad config, a claim mapping that throws, a cached token) or not (first verification)", async () => {
    const mapping: OidcConfigInput = {
      ...config,
      claimMapping: () => {
        throw new Error("mapping failed");
      },
    };
    const token = await sign(rsa, claims());
    const cases: Array<[unknown, OidcConfigInput, string]> = [
      [undefined, config, "ERR_AUTH_TOKEN_REQUIRED"],
      ["not a token", config, "ERR_AUTH_TOKEN_INVALID"],
      ["x.y.z", { authServiceUrl: ISS }, "ERR_AUTH_MISCONFIGURED"],
      ["x.y.z", null as unknown as OidcConfigInput, "ERR_AUTH_MISCONFIGURED"],
      [token, mapping, "ERR_AUTH_MISCONFIGURED"],
      [token, mapping, "ERR_AUTH_MISCONFIGURED"], // cached now: the mapping runs (and throws) again
    ];
    for (const [value, cfg, code] of cases) {
      await assert.rejects(call(value, cfg), (error: unknown) => error instanceof OidcAuthError && error.code === code);
    }
    const first = await call(token, config);
    const again = await call(token, config);
    assert.equal((first as { sub: string }).sub, "user-1");
    assert.deepStrictEqual(again, first);
  });
});
