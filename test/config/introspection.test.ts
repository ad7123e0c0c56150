/**
 * The `introspection` block and the `introspect` mode of an issuer:
 * defaults, and each mistake refused at validation with an error that names
 * the option and never echoes a credential.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateKeyPairSync } from "node:crypto";
import { OidcConfigError, OidcConfigManager, type OidcConfigInput, type OidcIssuerInput } from "../../src/index.js";
import { normalizeConfig } from "../../src/config/normalize.js";

const SECRET = "s3cr3t-value-never-echoed";
const base = { issuer: "https://idp.introspection-config.test", audience: "api" };
const privateJwk = { kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", d: "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI" };

/** Assert that the config is refused with an OidcConfigError naming `option` (and not the secret). */
function refused(config: OidcConfigInput, option: string, message?: RegExp): void {
  assert.throws(
    () => normalizeConfig(config),
    (error: unknown) => {
      assert.ok(error instanceof OidcConfigError, String(error));
      assert.equal(error.optionName, option, error.message);
      if (message !== undefined) assert.match(error.message, message);
      assert.ok(!error.message.includes(SECRET), "the error echoes the secret");
      return true;
    },
  );
}

describe("introspection options", () => {
  it("defaults: introspect \"opaque\", the endpoint from discovery, the documented durations", () => {
    const config = normalizeConfig({ ...base, introspection: { clientId: "rs", clientSecret: SECRET } });
    const issuer = config.issuers[0]!;
    assert.equal(issuer.introspect, "opaque");
    assert.deepEqual(issuer.introspection, {
      endpoint: undefined,
      clientId: "rs",
      clientAuthMethod: "client_secret_basic",
      clientSecret: SECRET,
      privateKey: undefined,
      signingAlg: undefined,
      timeout: 5_000,
      cacheTtl: 60_000,
      negativeCacheTtl: 10_000,
      maxEntries: 10_000,
      maxTokenLength: 2048,
      maxConcurrent: 64,
    });
    assert.ok(Object.isFrozen(issuer.introspection));
  });

  it("an issuer without a block introspects nothing", () => {
    const issuer = normalizeConfig({ ...base, jwksUri: "https://idp.introspection-config.test/jwks" }).issuers[0]!;
    assert.equal(issuer.introspection, undefined);
    assert.equal(issuer.introspect, undefined);
  });

  it("private_key_jwt is the default with a privateKey; a KeyObject needs a signingAlg", () => {
    const issuer = normalizeConfig({ ...base, introspection: { clientId: "rs", privateKey: privateJwk } }).issuers[0]!;
    assert.equal(issuer.introspection?.clientAuthMethod, "private_key_jwt");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    refused({ ...base, introspection: { clientId: "rs", privateKey } }, '"introspection.signingAlg"');
    const withAlg = normalizeConfig({ ...base, introspection: { clientId: "rs", privateKey, signingAlg: "ES256" } }).issuers[0]!;
    assert.equal(withAlg.introspection?.privateKey, privateKey);
  });

  it('"always" is kept; "introspect" without a block is refused', () => {
    const issuer = normalizeConfig({ ...base, introspection: { clientId: "rs", clientSecret: SECRET }, introspect: "always" }).issuers[0]!;
    assert.equal(issuer.introspect, "always");
    refused({ ...base, introspect: "always" }, '"introspect"', /needs an introspection block/);
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET }, introspect: "sometimes" as "always" }, '"introspect"');
  });

  it("at most one issuer may introspect (an opaque token names no issuer)", () => {
    const issuers: OidcIssuerInput[] = [
      { issuer: "https://a.test", audience: "api", introspection: { clientId: "rs", clientSecret: SECRET } },
      { issuer: "https://b.test", audience: "api", introspection: { clientId: "rs", clientSecret: SECRET } },
    ];
    refused({ issuers }, '"issuers[1].introspection"', /at most one issuer/);
    const one = normalizeConfig({ issuers: [issuers[0]!, { issuer: "https://b.test", audience: "api" }] });
    assert.equal(one.issuers[0]!.introspect, "opaque");
    assert.equal(one.issuers[1]!.introspection, undefined);
  });

  it("with issuers, the block goes inside each issuer", () => {
    refused({ issuers: [{ ...base }], introspection: { clientId: "rs", clientSecret: SECRET } }, '"introspection"', /inside each issuer/);
    refused({ issuers: [{ ...base }], introspect: "opaque" }, '"introspect"', /inside each issuer/);
  });

  it("the endpoint is required when the keys are not found by discovery, and must be an http(s) URL without credentials", () => {
    refused({ ...base, jwksUri: "https://idp.introspection-config.test/jwks", introspection: { clientId: "rs", clientSecret: SECRET } }, '"introspection.endpoint"', /required/);
    refused({ authServiceUrl: "https://idp.introspection-config.test", appSlug: "api", introspection: { clientId: "rs", clientSecret: SECRET } }, '"introspection.endpoint"');
    refused({ ...base, introspection: { endpoint: "ftp://idp.test/introspect", clientId: "rs", clientSecret: SECRET } }, '"introspection.endpoint"');
    refused({ ...base, introspection: { endpoint: "not a url", clientId: "rs", clientSecret: SECRET } }, '"introspection.endpoint"');
    refused({ ...base, introspection: { endpoint: `https://rs:${SECRET}@idp.test/introspect`, clientId: "rs", clientSecret: SECRET } }, '"introspection.endpoint"');
    const issuer = normalizeConfig({ ...base, jwksUri: "https://idp.introspection-config.test/jwks", introspection: { endpoint: "https://idp.introspection-config.test/introspect", clientId: "rs", clientSecret: SECRET } }).issuers[0]!;
    assert.equal(issuer.introspection?.endpoint, "https://idp.introspection-config.test/introspect");
  });

  it("refuses missing or contradictory client authentication, naming the option only", () => {
    refused({ ...base, introspection: {} as { clientId: string } }, '"introspection.clientId"');
    refused({ ...base, introspection: { clientId: "rs" } }, '"introspection.clientSecret"');
    refused({ ...base, introspection: { clientId: "rs", clientAuthMethod: "client_secret_post" } }, '"introspection.clientSecret"');
    refused({ ...base, introspection: { clientId: "rs", clientAuthMethod: "private_key_jwt", clientSecret: SECRET } }, '"introspection.privateKey"');
    refused({ ...base, introspection: { clientId: "rs", privateKey: privateJwk, clientSecret: SECRET } }, '"introspection.clientSecret"');
    refused({ ...base, introspection: { clientId: "rs", clientAuthMethod: "client_secret_basic", clientSecret: SECRET, privateKey: privateJwk } }, '"introspection.privateKey"');
    refused({ ...base, introspection: { clientId: "rs", clientAuthMethod: "tls_client_auth" as "private_key_jwt", clientSecret: SECRET } }, '"introspection.clientAuthMethod"');
    const { d: _d, ...publicJwk } = privateJwk;
    refused({ ...base, introspection: { clientId: "rs", privateKey: publicJwk } }, '"introspection.privateKey"', /private key/);
    refused({ ...base, introspection: { clientId: "rs", privateKey: privateJwk, signingAlg: "HS256" } }, '"introspection.signingAlg"');
  });

  it("refuses unknown options and bad durations", () => {
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, cacheTTL: 5 } as { clientId: string } }, '"introspection"', /no option "cacheTTL"/);
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, timeout: 0 } }, '"introspection.timeout"');
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, cacheTtl: -1 } }, '"introspection.cacheTtl"');
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, negativeCacheTtl: 1.5 } }, '"introspection.negativeCacheTtl"');
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, maxEntries: Number.NaN } }, '"introspection.maxEntries"');
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, maxTokenLength: 0 } }, '"introspection.maxTokenLength"');
    refused({ ...base, introspection: { clientId: "rs", clientSecret: SECRET, maxConcurrent: 1.5 } }, '"introspection.maxConcurrent"');
    refused({ ...base, introspection: "rs" as unknown as { clientId: string } }, '"introspection"');
    refused({ issuers: [{ ...base, introspection: { clientId: "rs" } }] }, '"issuers[0].introspection.clientSecret"');
  });

  it("OidcConfigManager.configure refuses a bad block at once; getConfig() returns the options as given, secret included", () => {
    assert.throws(() => OidcConfigManager.configure({ ...base, introspection: { clientId: "rs" } }), OidcConfigError);
    const options = { ...base, introspection: { clientId: "rs", clientSecret: SECRET } };
    const manager = new (OidcConfigManager.configure(options))({} as never);
    assert.equal(manager.getConfig(), options);
    assert.equal(manager.getResolvedConfig().issuers[0]!.introspection?.clientSecret, SECRET);
  });
});
