/**
 * Tokens of different users with the same roles, audiences or scopes share
 * one frozen array for each, in their verified claims and their contexts
 * (live sockets: test/e2e/socket.test.ts). The walk that shares and freezes
 * them keeps to the payload's own claims: an own `__proto__` claim stays an
 * own claim, and an enumerable property inherited from a polluted
 * Object.prototype is not turned into one.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

const ISS = "https://idp.example.test";
const AUD = "shared-lists-app";
const now = () => Math.floor(Date.now() / 1000);

let key: SigningKey;
let jwks: JwksServer;
let config: OidcConfigInput;

before(async () => {
  key = await makeKey("ES256");
  jwks = await startJwksServer([key.jwk]);
  config = { authServiceUrl: ISS, appSlug: AUD, jwksUri: jwks.jwksUri };
});
after(async () => {
  await jwks.close();
});

const tokenFor = (sub: string, extra: Record<string, unknown>) => sign(key, { iss: ISS, aud: AUD, sub, iat: now(), exp: now() + 300, ...extra });

describe("lists of strings shared between tokens", () => {
  it("two users with the same roles, audiences and scope share each list; different lists stay apart", async () => {
    const extra = { roles: ["editor", "viewer"], aud: [AUD, "other-api"], scope: "openid profile orders:read", groups: ["g1"], nested: { roles: ["deep"] } };
    const alice = await verifyOidcToken(await tokenFor("alice", extra), config);
    const bob = await verifyOidcToken(await tokenFor("bob", extra), config);
    const carol = await verifyOidcToken(await tokenFor("carol", { ...extra, roles: ["viewer", "editor"] }), config);

    assert.notEqual(alice.claims, bob.claims);
    assert.equal(bob.roles, alice.roles, "context roles");
    assert.equal(bob.claims["roles"], alice.claims["roles"], "claims roles");
    assert.equal(alice.roles, alice.claims["roles"], "the context's list is the claims' own");
    assert.equal(bob.claims["aud"], alice.claims["aud"]);
    assert.equal(bob.claims["groups"], alice.claims["groups"]);
    assert.equal((bob.claims["nested"] as { roles: unknown }).roles, (alice.claims["nested"] as { roles: unknown }).roles, "nested lists too");
    assert.equal(bob.scopes, alice.scopes, "scopes split from the same scope string");
    assert.deepEqual(alice.scopes, ["openid", "profile", "orders:read"]);

    assert.notEqual(carol.roles, alice.roles, "another order is another list");
    assert.deepEqual(carol.roles, ["viewer", "editor"]);
    assert.deepEqual(alice.roles, ["editor", "viewer"]);

    for (const list of [alice.roles, alice.scopes, alice.claims["aud"], alice.claims["groups"], carol.roles]) assert.ok(Object.isFrozen(list));
    assert.throws(() => (alice.roles).push("admin"), TypeError);
    assert.deepEqual(bob.roles, ["editor", "viewer"], "nothing one user's code does changes another's");
  });

  it("lists holding anything but strings are frozen, not shared", async () => {
    const extra = { mixed: ["a", 1, { b: ["c"] }] };
    const one = await verifyOidcToken(await tokenFor("dave", extra), config);
    const two = await verifyOidcToken(await tokenFor("erin", extra), config);
    assert.notEqual(one.claims["mixed"], two.claims["mixed"]);
    assert.deepEqual(one.claims["mixed"], ["a", 1, { b: ["c"] }]);
    assert.ok(Object.isFrozen(one.claims["mixed"]));
    const inner = (one.claims["mixed"] as unknown[])[2] as { b: string[] };
    assert.ok(Object.isFrozen(inner) && Object.isFrozen(inner.b));
    assert.equal(inner.b, ((two.claims["mixed"] as unknown[])[2] as { b: string[] }).b, "a list of strings inside is shared");
  });
});

describe("verified payloads: own claims only", () => {
  it("an own __proto__ claim holding a shared list stays an own claim; the prototype is untouched", async () => {
    await verifyOidcToken(await tokenFor("p1", { roles: ["editor"] }), config);
    const claims = JSON.parse('{"__proto__":["editor"]}') as Record<string, unknown>;
    const context = await verifyOidcToken(await tokenFor("p2", claims), config);
    assert.equal(Object.getPrototypeOf(context.claims), Object.prototype);
    assert.ok(Object.hasOwn(context.claims, "__proto__"));
    assert.deepEqual(Object.getOwnPropertyDescriptor(context.claims, "__proto__")?.value, ["editor"]);
    assert.ok(Object.isFrozen(context.claims));
  });

  it("a polluted Object.prototype neither gains frozen arrays nor becomes an own claim", async () => {
    await verifyOidcToken(await tokenFor("q1", { roles: ["polluted-value"] }), config);
    const pollution = ["polluted-value"];
    Object.defineProperty(Object.prototype, "pollutedClaim", { value: pollution, enumerable: true, configurable: true, writable: true });
    try {
      const context = await verifyOidcToken(await tokenFor("q2", {}), config);
      assert.ok(!Object.hasOwn(context.claims, "pollutedClaim"), "no own claim the token did not carry");
      assert.ok(!Object.isFrozen(pollution), "the library does not freeze what hangs on Object.prototype");
    } finally {
      delete (Object.prototype as Record<string, unknown>)["pollutedClaim"];
    }
  });
});
