/**
 * What the payload walk does with unusual keys: an own `__proto__` claim
 * stays an own claim, and an enumerable property inherited from a polluted
 * Object.prototype is not turned into an own claim of the payload.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

const ISS = "https://idp.example.test";
const AUD = "keys-app";
let key: SigningKey;
let jwks: JwksServer;
let config: OidcConfigInput;
before(async () => {
  key = await makeKey("ES256");
  jwks = await startJwksServer([key.jwk]);
  config = { authServiceUrl: ISS, appSlug: AUD, jwksUri: jwks.jwksUri };
});
after(async () => {
  await jwks?.close();
});
const now = () => Math.floor(Date.now() / 1000);
const base = (sub: string) => ({ iss: ISS, aud: AUD, sub, iat: now(), exp: now() + 300 });

describe("verified payloads: own claims only", () => {
  it("an own __proto__ claim holding a shared list stays an own claim; the prototype is untouched", async () => {
    await verifyOidcToken(await sign(key, { ...base("p1"), roles: ["editor"] }), config);
    const claims = JSON.parse('{"__proto__":["editor"]}') as Record<string, unknown>;
    const context = await verifyOidcToken(await sign(key, { ...base("p2"), ...claims }), config);
    assert.equal(Object.getPrototypeOf(context.claims), Object.prototype);
    assert.ok(Object.hasOwn(context.claims, "__proto__"));
    assert.deepEqual(Object.getOwnPropertyDescriptor(context.claims, "__proto__")?.value, ["editor"]);
    assert.ok(Object.isFrozen(context.claims));
  });

  it("a polluted Object.prototype neither gains frozen arrays nor becomes an own claim", async () => {
    await verifyOidcToken(await sign(key, { ...base("q1"), roles: ["polluted-value"] }), config);
    const pollution = ["polluted-value"];
    Object.defineProperty(Object.prototype, "pollutedClaim", { value: pollution, enumerable: true, configurable: true, writable: true });
    try {
      const context = await verifyOidcToken(await sign(key, { ...base("q2") }), config);
      assert.ok(!Object.hasOwn(context.claims, "pollutedClaim"), "no own claim the token did not carry");
      assert.ok(!Object.isFrozen(pollution), "the library does not freeze what hangs on Object.prototype");
    } finally {
      delete (Object.prototype as Record<string, unknown>)["pollutedClaim"];
    }
  });
});
