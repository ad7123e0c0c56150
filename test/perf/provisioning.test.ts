/**
 * Provisioning: `users.findOrCreate` is called once for any number
 * of concurrent authentications of one `sub` (HTTP and Socket.IO alike), a
 * failure is shared by those callers and never remembered, and
 * `provisionCacheTtl` (default 0) decides whether a result is reused for the
 * next, sequential, authentications — with the documented trade-off that a
 * disabled flag is then seen only after the TTL.
 *
 * A real IOServer app, a users manager that counts its calls and answers
 * after a delay, real tokens from a JWKS server on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import type { OidcConfigInput, OidcConfigManager } from "../../src/index.js";
import { handshake, httpGet, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { sleep, sleepUntil, waitFor } from "../helpers/wait.js";

const ISSUER = "https://idp.provisioning.test";
const AUDIENCE = "provisioning-app";


/** A users manager under the test's control: counts calls per sub, answers after `delay`, can fail or report a user disabled. */
class UsersState {
  calls: string[] = [];
  /** Epoch ms at which each call settled. */
  settled: number[] = [];
  delay = 400;
  failing = new Set<string>();
  disabled = new Set<string>();
  callsFor(sub: string): number {
    return this.calls.filter((each) => each === sub).length;
  }
  manager() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the fake manager's state, read by the arrow functions below and by the test
    const state = this;
    return class Users {
      constructor(_appHandle: AppHandle) {}
      async findOrCreate(sub: string) {
        state.calls.push(sub);
        try {
          await sleep(state.delay);
          if (state.failing.has(sub)) throw new Error(`database down for ${sub}`);
          return { id: `local-${sub}`, isDisabled: state.disabled.has(sub) };
        } finally {
          state.settled.push(Date.now());
        }
      }
    };
  }
}

interface Fixture {
  app: TestApp;
  users: UsersState;
  key: SigningKey;
  server: JwksServer;
  close(): Promise<void>;
}

const fixtures = new Set<Fixture>();
after(async () => {
  for (const fixture of fixtures) await fixture.close();
});

async function fixture(extra: Partial<OidcConfigInput> = {}): Promise<Fixture> {
  const key = await makeKey("ES256");
  const server = await startJwksServer([key.jwk]);
  const users = new UsersState();
  let app: TestApp;
  try {
    app = await startApp({ config: { issuer: ISSUER, audience: AUDIENCE, jwksUri: server.jwksUri, ...extra }, managers: { users: users.manager() } });
  } catch (error) {
    await server.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const created: Fixture = {
    app,
    users,
    key,
    server,
    close: () => (closing ??= app.close().then(() => server.close())),
  };
  fixtures.add(created);
  // Keys prefetched at start: the requests below only wait for the users manager.
  await waitFor(() => (app.appHandle.oidcConfig as OidcConfigManager).getHealth().status === "ok");
  return created;
}

let serial = 0;
/** A distinct token string each call (so the verified-token cache plays no part), for `sub`. */
function token(key: SigningKey, sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign(key, { iss: ISSUER, aud: AUDIENCE, sub, iat: now, exp: now + 300, jti: `p-${++serial}` });
}

async function viaHttp(app: TestApp, value: string): Promise<{ status: number; code: string | undefined; userId: string | undefined }> {
  const { status, body } = await httpGet<{ code?: string; userId?: string }>(app, value, { timeoutMs: 10_000 });
  return { status, code: body.code, userId: body.userId };
}

const viaSocket = async (app: TestApp, value: string): Promise<string> => (await handshake(app, value)).code;

// ---------------------------------------------------------------------------

describe("provisioning: concurrent authentications share one findOrCreate", () => {
  it("20 concurrent HTTP requests of the same sub (distinct tokens) → 1 findOrCreate call, all 20 accepted with the provisioned userId", async () => {
    const { app, users, key, close } = await fixture();
    try {
      const tokens = await Promise.all(Array.from({ length: 20 }, () => token(key, "alice")));
      const results = await Promise.all(tokens.map((each) => viaHttp(app, each)));
      for (const result of results) assert.deepEqual(result, { status: 200, code: undefined, userId: "local-alice" });
      assert.equal(users.callsFor("alice"), 1);
    } finally {
      await close();
    }
  });

  it("20 concurrent Socket.IO handshakes of the same sub → 1 call; then 10 HTTP requests and 10 handshakes at once → 1 more call (shared across transports)", async () => {
    const { app, users, key, close } = await fixture();
    try {
      const tokens = await Promise.all(Array.from({ length: 20 }, () => token(key, "bob")));
      const results = await Promise.all(tokens.map((each) => viaSocket(app, each)));
      assert.deepEqual(results, Array.from({ length: 20 }, () => "ok"));
      assert.equal(users.callsFor("bob"), 1);

      const mixed = await Promise.all(Array.from({ length: 20 }, () => token(key, "bob")));
      const answers = await Promise.all(mixed.map((each, i) => (i % 2 === 0 ? viaHttp(app, each).then((r) => (r.status === 200 ? "ok" : String(r.code))) : viaSocket(app, each))));
      assert.deepEqual(answers, Array.from({ length: 20 }, () => "ok"));
      assert.equal(users.callsFor("bob"), 2, "provisionCacheTtl 0: the second burst calls again, once");
    } finally {
      await close();
    }
  });

  it("different subs at once (5 subs × 4 requests, HTTP and Socket.IO) → exactly one call per sub, each caller gets its own user", async () => {
    const { app, users, key, close } = await fixture();
    try {
      const subs = ["s1", "s2", "s3", "s4", "s5"];
      const work = subs.flatMap((sub) =>
        Array.from({ length: 4 }, async (_, i) => {
          const value = await token(key, sub);
          if (i % 2 === 0) {
            const result = await viaHttp(app, value);
            assert.equal(result.userId, `local-${sub}`);
            return result.status === 200 ? "ok" : String(result.code);
          }
          return viaSocket(app, value);
        }),
      );
      assert.deepEqual(await Promise.all(work), Array.from({ length: 20 }, () => "ok"));
      assert.deepEqual([...users.calls].sort(), subs);
    } finally {
      await close();
    }
  });
});

describe("provisioning: failures", () => {
  for (const ttl of [0, 1_000]) {
    it(`a findOrCreate rejection is shared by the 10 concurrent callers (1 call, all ERR_USER_PROVISION_FAILED) and not remembered: the next request calls again (provisionCacheTtl ${ttl})`, async () => {
      const { app, users, key, close } = await fixture({ provisionCacheTtl: ttl });
      try {
        users.failing.add("carol");
        const tokens = await Promise.all(Array.from({ length: 10 }, () => token(key, "carol")));
        const results = await Promise.all(tokens.map((each, i) => (i < 7 ? viaHttp(app, each).then((r) => `${r.status} ${String(r.code)}`) : viaSocket(app, each))));
        assert.deepEqual(results, [...Array.from({ length: 7 }, () => "500 ERR_USER_PROVISION_FAILED"), ...Array.from({ length: 3 }, () => "ERR_USER_PROVISION_FAILED")]);
        assert.equal(users.callsFor("carol"), 1);
        assert.equal(app.logs.filter((line) => /ERR_USER_PROVISION_FAILED.*database down for/.test(line.text)).length, 10, "each caller logs the shared failure");

        // Not remembered: the next request asks again (still failing), and succeeds once the users manager does.
        assert.equal((await viaHttp(app, await token(key, "carol"))).status, 500);
        assert.equal(users.callsFor("carol"), 2);
        users.failing.delete("carol");
        assert.equal((await viaHttp(app, await token(key, "carol"))).userId, "local-carol");
        assert.equal(users.callsFor("carol"), 3);
      } finally {
        await close();
      }
    });
  }
});

describe("provisioning: provisionCacheTtl", () => {
  it("provisionCacheTtl 0 (default): sequential requests call findOrCreate every time; a user disabled between two requests is refused at once (HTTP 403 and Socket.IO ERR_USER_DISABLED)", async () => {
    const { app, users, key, close } = await fixture();
    try {
      users.delay = 10;
      for (let i = 1; i <= 3; i++) {
        assert.equal((await viaHttp(app, await token(key, "dave"))).status, 200);
        assert.equal(users.callsFor("dave"), i);
      }
      assert.equal(await viaSocket(app, await token(key, "dave")), "ok");
      assert.equal(users.callsFor("dave"), 4);

      users.disabled.add("dave");
      assert.deepEqual(await viaHttp(app, await token(key, "dave")), { status: 403, code: "ERR_USER_DISABLED", userId: undefined });
      assert.equal(await viaSocket(app, await token(key, "dave")), "ERR_USER_DISABLED");
      assert.equal(users.callsFor("dave"), 6);
    } finally {
      await close();
    }
  });

  it("provisionCacheTtl 1000: sequential requests within 1 s make one call (a disable meanwhile is not seen yet: the documented trade-off); after the TTL a new call, and the disabled user is refused", { timeout: 15_000 }, async () => {
    const ttl = 1_000;
    const { app, users, key, close } = await fixture({ provisionCacheTtl: ttl });
    try {
      users.delay = 10;
      assert.equal((await viaHttp(app, await token(key, "erin"))).status, 200);
      const settledAt = users.settled[0]!;
      for (let i = 0; i < 3; i++) assert.equal((await viaHttp(app, await token(key, "erin"))).userId, "local-erin");
      assert.equal(await viaSocket(app, await token(key, "erin")), "ok");
      assert.equal(users.callsFor("erin"), 1, "one call for every request within the TTL");

      users.disabled.add("erin");
      assert.equal((await viaHttp(app, await token(key, "erin"))).status, 200, "within the TTL the remembered (enabled) record is used");
      assert.ok(Date.now() < settledAt + ttl, "precondition: still within the TTL");
      assert.equal(users.callsFor("erin"), 1);
      // Another sub is not served from erin's entry.
      assert.equal((await viaHttp(app, await token(key, "frank"))).userId, "local-frank");
      assert.equal(users.callsFor("frank"), 1);

      await sleepUntil(settledAt + ttl + 100);
      assert.deepEqual(await viaHttp(app, await token(key, "erin")), { status: 403, code: "ERR_USER_DISABLED", userId: undefined });
      assert.equal(users.callsFor("erin"), 2, "after the TTL: a new call, which sees the disable");
    } finally {
      await close();
    }
  });
});
