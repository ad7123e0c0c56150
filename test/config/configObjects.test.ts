/**
 * Config objects: frozen once validated (a change in place throws instead of
 * being ignored), and recognised by content, so a getConfig() that builds a
 * new equal object per call keeps one normalised config and one token cache.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { OidcAuthError, OidcConfigManager, verifyOidcToken, type OidcClaimMapper, type OidcConfigInput } from "../../src/index.js";
import { CONFIG_CONTENT_CACHE_SIZE } from "../../src/config/knownConfigs.js";
import { normalizeConfig } from "../../src/config/normalize.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { tokenCacheOf } from "../../src/verify/issuerState.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { httpGet, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

const ISS = "https://idp.config-objects.test";
const now = () => Math.floor(Date.now() / 1000);

let key: SigningKey;
let jwks: JwksServer;
let issuer: TestIssuer;
let app: TestApp | undefined;

before(async () => {
  key = await makeKey("RS256");
  jwks = await startJwksServer([key.jwk]);
  issuer = await createTestIssuer({ appSlug: "objects-app" });
});
after(async () => {
  await jwks.close();
  await issuer.close();
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const mint = (aud: string | string[], extra: Record<string, unknown> = {}) =>
  sign(key, { iss: ISS, aud, sub: "user-1", iat: now(), exp: now() + 300, jti: `j-${Math.random()}`, ...extra });

async function refusal(promise: Promise<unknown>): Promise<OidcAuthError> {
  const error = await promise.then(
    () => assert.fail("expected a rejection"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof OidcAuthError, String(error));
  return error;
}

async function status(token: string): Promise<number> {
  return (await httpGet(app!, token)).status;
}

describe("a config object cannot be tightened in place without effect", () => {
  it("verifyOidcToken: after first use the object and everything inside it are frozen; changes throw; a new object takes effect", async () => {
    const config = {
      issuer: ISS,
      audience: ["api-a", "api-b"],
      jwksUri: jwks.jwksUri,
      algorithms: ["RS256", "ES256"],
      requiredClaims: ["jti"],
      tokenCache: { maxTtl: 60_000 },
    };
    const token = await mint("api-b");
    assert.equal((await verifyOidcToken(token, config)).sub, "user-1");

    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.audience) && Object.isFrozen(config.algorithms));
    assert.ok(Object.isFrozen(config.requiredClaims) && Object.isFrozen(config.tokenCache));
    assert.throws(() => {
      config.audience = ["api-a"];
    }, TypeError);
    assert.throws(() => {
      config.audience[1] = "api-a";
    }, TypeError);
    assert.throws(() => config.audience.pop(), TypeError);
    assert.throws(() => config.algorithms.push("PS256"), TypeError);
    assert.throws(() => config.requiredClaims.push("client_id"), TypeError);
    assert.throws(() => {
      config.tokenCache.maxTtl = 0;
    }, TypeError);
    assert.throws(() => {
      (config as OidcConfigInput).clockTolerance = 0;
    }, TypeError, "adding an option throws too");
    assert.deepEqual(config.audience, ["api-a", "api-b"], "the object still says what is enforced");
    assert.equal((await verifyOidcToken(await mint("api-b"), config)).sub, "user-1");

    // The way to tighten: a new object.
    const narrowed = { ...config, audience: ["api-a"] };
    assert.equal((await refusal(verifyOidcToken(await mint("api-b"), narrowed))).code, "ERR_AUTH_TOKEN_INVALID");
  });

  it("verifyOidcToken with issuers: the list and each entry are frozen", async () => {
    const config = { issuers: [{ issuer: ISS, audience: ["multi-api"], jwksUri: jwks.jwksUri, requiredClaims: ["jti"] }] };
    await verifyOidcToken(await mint("multi-api"), config);
    const entry = config.issuers[0]!;
    assert.ok(Object.isFrozen(config.issuers) && Object.isFrozen(entry) && Object.isFrozen(entry.audience) && Object.isFrozen(entry.requiredClaims));
    assert.throws(() => {
      entry.audience = ["other"];
    }, TypeError);
    assert.throws(() => entry.audience.push("other"), TypeError);
    assert.throws(() => config.issuers.push({ issuer: "https://evil.test", audience: ["x"], jwksUri: jwks.jwksUri, requiredClaims: [] }), TypeError);
  });

  it("an invalid config is not frozen (it may be corrected in place); it is once it is valid", async () => {
    const config: OidcConfigInput = { issuer: ISS, audience: "", jwksUri: jwks.jwksUri };
    assert.equal((await refusal(verifyOidcToken(await mint("fixed-api"), config))).code, "ERR_AUTH_MISCONFIGURED");
    assert.ok(!Object.isFrozen(config));
    config.audience = "fixed-api";
    assert.equal((await verifyOidcToken(await mint("fixed-api"), config)).sub, "user-1");
    assert.ok(Object.isFrozen(config));
  });

  it("OidcConfigManager.configure(options): options are frozen at once; changing them throws", async () => {
    const options = { ...issuer.config, audience: ["objects-app"], algorithms: ["RS256", "ES256"] };
    app = await startApp({ config: options });
    assert.equal(await status(await issuer.mint()), 200);
    assert.ok(Object.isFrozen(options) && Object.isFrozen(options.audience) && Object.isFrozen(options.algorithms));
    assert.throws(() => {
      options.audience = ["other"];
    }, TypeError);
    assert.throws(() => options.audience.push("other"), TypeError);
    assert.equal(await status(await issuer.mint()), 200);
  });

  it("a user-written manager's stable object is frozen after the first request; changing it throws", async () => {
    const config = { authServiceUrl: issuer.issuer, appSlug: "objects-app", audience: ["objects-app"] };
    class StableConfig {
      getConfig() {
        return config;
      }
    }
    app = await startApp({ managers: { oidcConfig: StableConfig } });
    assert.equal(await status(await issuer.mint()), 200);
    assert.throws(() => {
      config.audience = ["other"];
    }, TypeError);
    assert.throws(() => config.audience.push("other"), TypeError);
    assert.deepEqual(config.audience, ["objects-app"]);
  });
});

describe("config objects are recognised by content", () => {
  it("a user-written getConfig() returning a new equal object per call: one normalised config, one token cache, with hits", async () => {
    const audience = "fresh-app";
    let calls = 0;
    class FreshConfig {
      getConfig(): OidcConfigInput {
        calls++;
        return { authServiceUrl: issuer.issuer, appSlug: audience, audience: [audience], tokenCache: { maxTtl: 60_000 } };
      }
    }
    app = await startApp({ managers: { oidcConfig: FreshConfig } });
    const token = await issuer.mint({ aud: audience });
    const requests = 8;
    for (let i = 0; i < requests; i++) assert.equal(await status(token), 200);
    assert.ok(calls >= requests, "getConfig() was asked on every request");

    const resolved = resolveConfig(app.appHandle);
    assert.equal(resolveConfig(app.appHandle), resolved, "the same normalised config for every new object");
    const stats = tokenCacheOf(resolved)!.stats();
    // The first verification is deferred (admitAfter 2), the second admitted, the rest are hits.
    assert.equal(stats.hits, requests - 2);
    assert.equal(stats.misses, 2);
  });

  it("an OidcConfigManager subclass whose getConfig() builds a new object per call: getHealth() reports one token cache with hits", async () => {
    const audience = "fresh-subclass-app";
    const base = issuer.issuer;
    class FreshManager extends OidcConfigManager {
      override getConfig(): OidcConfigInput {
        return { authServiceUrl: base, appSlug: audience };
      }
    }
    app = await startApp({ managers: { oidcConfig: FreshManager } });
    const token = await issuer.mint({ aud: audience });
    const requests = 6;
    for (let i = 0; i < requests; i++) assert.equal(await status(token), 200);
    const manager = app.appHandle.oidcConfig as OidcConfigManager;
    assert.equal(manager.getResolvedConfig(), manager.getResolvedConfig());
    assert.equal(manager.getHealth().tokenCache?.hits, requests - 2);
  });

  it("equal content shares one normalised config; a function compares by identity; the content cache is bounded", () => {
    const input = () => ({ issuer: ISS, audience: ["content-api"], jwksUri: jwks.jwksUri, tokenCache: { maxEntries: 100 } });
    const first = normalizeConfig(input());
    assert.equal(normalizeConfig(input()), first);
    assert.equal(normalizeConfig({ ...input(), issuers: undefined }) === first, false, "a key more is other content");
    assert.notEqual(normalizeConfig({ ...input(), audience: ["content-api", "more"] }), first);

    const mapper: OidcClaimMapper = () => ({ roles: [], permissions: [], scopes: [], features: {} });
    const mapped = normalizeConfig({ ...input(), claimMapping: mapper });
    assert.equal(normalizeConfig({ ...input(), claimMapping: mapper }), mapped, "the same function");
    const copy: OidcClaimMapper = (claims) => mapper(claims);
    assert.notEqual(normalizeConfig({ ...input(), claimMapping: copy }), mapped, "another function, even doing the same");

    // More distinct configurations than the cache holds push the first one out.
    const again = normalizeConfig(input());
    assert.equal(again, first);
    for (let i = 0; i < CONFIG_CONTENT_CACHE_SIZE; i++) normalizeConfig({ ...input(), audience: [`filler-${i}`] });
    assert.notEqual(normalizeConfig(input()), first, "forgotten once more than CONFIG_CONTENT_CACHE_SIZE others were seen");
  });

  /** A config whose `audience` is a getter returning what `read` returns now. */
  const audienceGetter = (read: () => string) => ({
    issuer: ISS,
    jwksUri: jwks.jwksUri,
    get audience() {
      return read();
    },
  });

  it("an object with a getter is not a reference for content: a later plain object gets its own values, not what the getter now returns", () => {
    let current = "getter-api-a";
    const withGetter = audienceGetter(() => current);
    assert.deepEqual(normalizeConfig(withGetter).audience, ["getter-api-a"]);
    current = "getter-api-b";
    assert.deepEqual(normalizeConfig({ issuer: ISS, jwksUri: jwks.jwksUri, audience: "getter-api-b" }).audience, ["getter-api-b"]);
  });

  it("a property that is not enumerable is not passed over: the object is validated, and never a reference for content", () => {
    const plain = normalizeConfig({ issuer: ISS, jwksUri: jwks.jwksUri, appSlug: "hidden-app" });
    const hidden = Object.defineProperty({ issuer: ISS, jwksUri: jwks.jwksUri, appSlug: "hidden-app" }, "audience", { value: "hidden-api", enumerable: false });
    const config = normalizeConfig(hidden);
    assert.notEqual(config, plain, "not equal in content to the config without it");
    assert.deepEqual(config.audience, ["hidden-api"], "what validation read");
    assert.equal(normalizeConfig(hidden), config, "known by identity afterwards");
    const later = normalizeConfig({ issuer: ISS, jwksUri: jwks.jwksUri, appSlug: "hidden-app", audience: "hidden-api" });
    assert.notEqual(later, config, "not a reference for content either");
    assert.deepEqual(later.audience, ["hidden-api"]);
  });

  it("an object recognised by its content is compared again on every call: a getter that changes meanwhile is read again", () => {
    const plain = normalizeConfig({ issuer: ISS, jwksUri: jwks.jwksUri, audience: "content-api-a" });
    let current = "content-api-a";
    const withGetter = audienceGetter(() => current);
    assert.equal(normalizeConfig(withGetter), plain, "equal in content to the plain one");
    assert.equal(normalizeConfig(withGetter), plain, "asked again at once");
    current = "content-api-b";
    assert.deepEqual(normalizeConfig(withGetter).audience, ["content-api-b"], "the getter's new value, not the first answer");
  });
});
