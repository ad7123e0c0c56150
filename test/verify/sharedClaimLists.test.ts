/**
 * Tokens of different users with the same roles, audiences or scopes share
 * one frozen array for each, in their verified claims and their contexts,
 * on verifyOidcToken and on live sockets alike.
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
