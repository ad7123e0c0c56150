/**
 * The introspection client against a real `oidc-provider` issuing opaque
 * access tokens: each client authentication method, active and inactive
 * tokens, the cache and single flight (counted at the provider), and an
 * endpoint that fails, times out or is gone.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isOidcAuthError } from "../../src/errors.js";
import { createIntrospector, type IntrospectorOptions } from "../../src/introspection/createIntrospector.js";
import { audienceOf, hasAudience } from "../../src/introspection/introspectionClaims.js";
import { startIntrospectionProvider, type IntrospectionProvider } from "../helpers/introspectionProvider.js";
import { sleep, sleepUntil, waitFor } from "../helpers/wait.js";

/** Assert that `promise` rejects with an OidcAuthError of this code. */
async function refusedWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isOidcAuthError(error), `expected an OidcAuthError, got ${String(error)}`);
    assert.equal(error.code, code, error.reason);
    return true;
  });
}

describe("introspection against oidc-provider", { timeout: 60_000 }, () => {
  let op: IntrospectionProvider;
  const lines: string[] = [];
  const tokens: string[] = [];

  before(async () => {
    op = await startIntrospectionProvider();
  });
  after(async () => {
    await op.close();
    // Whatever was logged during the whole file, no token ever appears.
    for (const token of tokens) for (const line of lines) assert.ok(!line.includes(token), `a log line contains a token: ${line}`);
  });

  async function token(): Promise<string> {
    const value = await op.token();
    tokens.push(value);
    return value;
  }

  function introspector(extra: Partial<IntrospectorOptions> = {}) {
    op.delayMs = 0;
    op.failWith = undefined;
    return createIntrospector({
      issuer: op.issuer,
      endpoint: op.introspectionEndpoint,
      ...op.basic,
      log: (_level, text) => lines.push(text),
      ...extra,
    });
  }

  it("accepts an active opaque token and returns its claims (client_secret_basic)", async () => {
    const opaque = await token();
    assert.ok(!opaque.includes("."), "the provider issues opaque tokens");
    const claims = await introspector().introspect(opaque);
    assert.equal(claims.active, true);
    assert.equal(claims.iss, op.issuer);
    assert.equal(claims.client_id, op.appClientId);
    assert.equal(claims.scope, "read:stats chat:write");
    assert.equal(claims.token_type, "Bearer");
    assert.deepEqual(claims["roles"], ["reader"]);
    assert.equal(typeof claims.exp, "number");
    assert.ok(claims.exp * 1000 > Date.now());
    assert.deepEqual(audienceOf(claims), [op.resource]);
    assert.ok(hasAudience(claims, ["other", op.resource]));
    assert.ok(!hasAudience(claims, ["other"]));
    assert.ok(Object.isFrozen(claims));
  });

  it("authenticates with client_secret_post", async () => {
    const claims = await introspector({ ...op.post, clientAuthMethod: "client_secret_post" }).introspect(await token());
    assert.equal(claims.client_id, op.appClientId);
  });

  it("authenticates with private_key_jwt (a fresh assertion per request)", async () => {
    const rs = introspector({ clientId: op.jwt.clientId, privateKey: op.jwt.privateKey, clientSecret: undefined });
    assert.equal((await rs.introspect(await token())).client_id, op.appClientId);
    // The provider refuses a replayed assertion: a second request proves the jti is new.
    assert.equal((await rs.introspect(await token())).client_id, op.appClientId);
    assert.equal(rs.health().requests, 2);
  });

  it("refuses a revoked token and an unknown one (active: false)", async () => {
    const rs = introspector();
    const revoked = await token();
    await op.revoke(revoked);
    await refusedWith(rs.introspect(revoked), "ERR_AUTH_TOKEN_INVALID");
    await refusedWith(rs.introspect("not-a-token-the-provider-issued"), "ERR_AUTH_TOKEN_INVALID");
    assert.equal(rs.health().circuit, "closed", "an inactive token is a valid answer, not a failure");
  });

  it("a wrong client secret is a misconfiguration (500), backed off, the token never accepted", async () => {
    const rs = introspector({ clientSecret: "not-the-secret" });
    const [first, second] = [await token(), await token()];
    const before = op.introspections;
    await refusedWith(rs.introspect(first), "ERR_AUTH_MISCONFIGURED");
    assert.equal(op.introspections, before + 1);
    await refusedWith(rs.introspect(second), "ERR_AUTH_MISCONFIGURED");
    assert.equal(op.introspections, before + 1, "no second request during the back-off");
    assert.equal(rs.health().circuit, "open");
    assert.match(rs.health().lastError ?? "", /HTTP 401 \("invalid_client"\)/);
  });

  it("a cached answer makes no second request", async () => {
    const rs = introspector();
    const opaque = await token();
    const first = await rs.introspect(opaque);
    const count = op.introspections;
    const second = await rs.introspect(opaque);
    assert.equal(op.introspections, count, "answered from the cache");
    assert.equal(second, first);
    assert.equal(rs.health().cache.hits, 1);
  });

  it("a revoked token is refused once its cached answer is older than cacheTtl", async () => {
    const rs = introspector({ cacheTtl: 300 });
    const opaque = await token();
    await rs.introspect(opaque);
    const cachedAt = Date.now();
    await op.revoke(opaque);
    await sleepUntil(cachedAt + 400);
    await refusedWith(rs.introspect(opaque), "ERR_AUTH_TOKEN_INVALID");
  });

  it("concurrent callers for one token share one request", async () => {
    const rs = introspector();
    const opaque = await token();
    const before = op.introspections;
    op.delayMs = 200;
    const answers = await Promise.all(Array.from({ length: 8 }, () => rs.introspect(opaque)));
    assert.equal(op.introspections, before + 1);
    for (const claims of answers) assert.equal(claims, answers[0]);
  });

  it("a failing endpoint (500) → ERR_AUTH_UNAVAILABLE, no request during the back-off, recovery after it", async () => {
    const rs = introspector();
    const [opaque, other] = [await token(), await token()];
    op.failWith = 500;
    const before = op.introspections;
    await refusedWith(rs.introspect(opaque), "ERR_AUTH_UNAVAILABLE");
    await refusedWith(rs.introspect(other), "ERR_AUTH_UNAVAILABLE");
    assert.equal(op.introspections, before + 1, "the second token failed fast");
    const { retryAt, circuit, failures } = rs.health();
    assert.equal(circuit, "open");
    assert.equal(failures, 1);
    assert.ok(retryAt !== undefined);
    op.failWith = undefined;
    await sleepUntil(retryAt + 10);
    assert.equal((await rs.introspect(opaque)).client_id, op.appClientId);
    assert.equal(rs.health().circuit, "closed");
    assert.ok(lines.some((line) => /recovered after 1 failed request/.test(line)));
  });

  it("a slow endpoint times out (ERR_AUTH_UNAVAILABLE); then one probe at a time", async () => {
    const rs = introspector({ timeout: 1_000 });
    const [opaque, other] = [await token(), await token()];
    op.delayMs = 3_000;
    await refusedWith(rs.introspect(opaque), "ERR_AUTH_UNAVAILABLE");
    assert.match(rs.health().lastError ?? "", /no answer within 1000 ms/);
    const retryAt = rs.health().retryAt!;
    await sleepUntil(retryAt + 10);
    op.delayMs = 300;
    const count = op.introspections;
    const probe = rs.introspect(opaque);
    await waitFor(() => op.introspections === count + 1);
    // Another token while the probe is in flight: refused at once, no request.
    await refusedWith(rs.introspect(other), "ERR_AUTH_UNAVAILABLE");
    assert.equal((await probe).client_id, op.appClientId);
    assert.equal(op.introspections, count + 1);
    assert.equal(rs.health().circuit, "closed");
  });

  it("staleIfError serves a cached active answer while the endpoint fails, never a fresh token", async () => {
    const rs = introspector({ cacheTtl: 100, staleIfError: 60_000 });
    const [known, fresh] = [await token(), await token()];
    await rs.introspect(known);
    await sleep(150);
    op.failWith = 503;
    const count = op.introspections;
    assert.equal((await rs.introspect(known)).client_id, op.appClientId, "stale answer while failing");
    assert.equal(op.introspections, count + 1, "the endpoint was asked first");
    await refusedWith(rs.introspect(fresh), "ERR_AUTH_UNAVAILABLE");
  });

  it("an endpoint that is gone → ERR_AUTH_UNAVAILABLE, and no retry before the back-off ends", async () => {
    const gone = await startIntrospectionProvider();
    const opaque = await gone.token();
    tokens.push(opaque);
    await gone.close();
    const rs = createIntrospector({ issuer: gone.issuer, endpoint: gone.introspectionEndpoint, ...gone.basic, log: (_l, text) => lines.push(text) });
    await refusedWith(rs.introspect(opaque), "ERR_AUTH_UNAVAILABLE");
    assert.equal(rs.health().requests, 1);
    await refusedWith(rs.introspect(opaque), "ERR_AUTH_UNAVAILABLE");
    assert.equal(rs.health().requests, 1, "failed fast");
    assert.equal(rs.health().failures, 1);
  });
});
