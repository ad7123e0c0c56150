/**
 * With nobody subscribed, the package publishes nothing: every channel
 * method (`publish`, `runStores`) is counted on the package's channels
 * whatever their state, and the same real traffic is run twice: with
 * subscribers (every channel counts, so the counter sees them) and without
 * (nothing counted). A cached verification is also timed for its calls to
 * `performance.now()`: none without a subscriber.
 */
import assert from "node:assert/strict";
import { Channel, channel, subscribe, tracingChannel, unsubscribe } from "node:diagnostics_channel";
import { describe, it } from "node:test";
import { OIDC_CHANNELS, OidcSessionManager, verifyOidcToken, type OidcAuthTraceContext, type OidcSessionManager as SessionManager } from "../../src/index.js";
import { createTestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, httpGet, next, startApp } from "../helpers/app.js";
import { startLogoutApp } from "../helpers/logoutApp.js";

const counts = new Map<string, number>();
const ours = (name: unknown): name is string => typeof name === "string" && (name.startsWith("ioserver-oidc:") || name.startsWith("tracing:ioserver-oidc:"));

/** Count the package's channels' calls of `publish` and `runStores` on this prototype. */
function count(prototype: object): void {
  for (const method of ["publish", "runStores"] as const) {
    const target = prototype as Record<string, (...args: unknown[]) => unknown>;
    assert.ok(Object.hasOwn(target, method), `${method} is the prototype's own`);
    const original = target[method]!;
    target[method] = function (this: { name: unknown }, ...args: unknown[]) {
      if (ours(this.name)) counts.set(this.name, (counts.get(this.name) ?? 0) + 1);
      return original.apply(this, args);
    };
  }
}
// A channel without subscribers has Channel's methods; with one, those of Node's internal ActiveChannel.
count(Channel.prototype);
const probe = channel("ioserver-oidc-test:probe");
const nothing = () => undefined;
probe.subscribe(nothing);
count(Object.getPrototypeOf(probe) as object);
probe.unsubscribe(nothing);

const PLAIN = ["auth", "jwks", "discovery", "socket", "revocation", "logout"] as const;
const nowS = () => Math.floor(Date.now() / 1000);

/** Traffic through every channel but `backend` (Redis has a file of its own): fresh issuers, so keys are fetched and discovered each time. */
async function traffic(): Promise<void> {
  const issuer = await createTestIssuer();
  const discovered = await createTestIssuer();
  const app = await startApp({ config: { ...issuer.config, clockTolerance: 1 }, managers: { session: OidcSessionManager } });
  const logout = await startLogoutApp({ config: issuer.config });
  try {
    assert.equal((await httpGet(app, await issuer.mint({ sub: "idle-http" }))).status, 200);
    assert.equal((await httpGet(app, undefined)).status, 401);
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "idle-socket" }));
    assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await issuer.mint({ sub: "idle-socket" }) })).ok, true);
    assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: "garbage" })).ok, false);
    const expiring = await connectedTo(app, "chat", await issuer.mint({ sub: "idle-expiring", exp: nowS() + 2 }));
    await next(expiring, "oidc:expired", 10_000);
    assert.equal(await (app.appHandle["session"] as SessionManager).disconnectUser("idle-socket"), 1);
    await verifyOidcToken(await discovered.mint(), { issuer: discovered.issuer, audience: discovered.appSlug });
    assert.equal((await logout.post("nothing=here", { "content-type": "application/x-www-form-urlencoded" })).status, 400);
  } finally {
    await logout.close();
    await app.close();
    await discovered.close();
    await issuer.close();
  }
}

describe("nobody subscribed: nothing published", { timeout: 120_000 }, () => {
  it("with subscribers every channel publishes (the counter sees them); without, the same traffic publishes nothing", async () => {
    const listener = () => undefined;
    const tracing = tracingChannel<unknown, OidcAuthTraceContext>(OIDC_CHANNELS.authenticate);
    const handlers = { start: listener, end: listener, asyncStart: listener, asyncEnd: listener, error: listener };
    for (const name of PLAIN) subscribe(OIDC_CHANNELS[name], listener);
    tracing.subscribe(handlers);
    counts.clear();
    try {
      await traffic();
    } finally {
      for (const name of PLAIN) unsubscribe(OIDC_CHANNELS[name], listener);
      tracing.unsubscribe(handlers);
    }
    for (const name of [...PLAIN.map((each) => OIDC_CHANNELS[each]), tracing.start.name, tracing.end.name]) {
      assert.ok((counts.get(String(name)) ?? 0) > 0, `${String(name)} was published with a subscriber: ${JSON.stringify([...counts])}`);
    }

    counts.clear();
    await traffic();
    assert.deepEqual([...counts], [], "nothing published without subscribers");
  });

  it("a cached verification without a subscriber never reads performance.now(); with one it does", async () => {
    const issuer = await createTestIssuer();
    try {
      const token = await issuer.mint({ sub: "idle-timing" });
      await verifyOidcToken(token, issuer.config); // cached from now on: the next ones decide synchronously
      const reads = (): number => {
        let calls = 0;
        const original = performance.now;
        performance.now = function (this: Performance) {
          calls++;
          return original.call(this);
        };
        try {
          void verifyOidcToken(token, issuer.config);
        } finally {
          performance.now = original;
        }
        return calls;
      };
      assert.equal(reads(), 0, "nobody listens");
      const listener = () => undefined;
      subscribe(OIDC_CHANNELS.auth, listener);
      try {
        assert.ok(reads() >= 2, "timed when listened to");
      } finally {
        unsubscribe(OIDC_CHANNELS.auth, listener);
      }
      assert.equal(reads(), 0, "and not once the listener left");
    } finally {
      await issuer.close();
    }
  });
});
