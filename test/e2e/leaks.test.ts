/**
 * 2,000 authenticated sockets, each with an armed expiry timer, connect and
 * disconnect; afterwards the process's timers and the session registry are
 * back where they started.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { OidcSessionManager } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { outcome, startApp, type TestApp } from "../helpers/app.js";

const SOCKETS = 2_000;
const BATCH = 100;

const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

async function settle(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

describe(`${SOCKETS} sockets connect and disconnect`, () => {
  let issuer: TestIssuer;
  let app: TestApp;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
    await issuer.close();
  });

  it("leaves no timer and no registry entry behind", { timeout: 120_000 }, async () => {
    const session = app.appHandle.session as OidcSessionManager;
    const token = await issuer.mint({ sub: "many" }); // expires in 5 minutes: every socket arms a timer
    // Warm-up, so lazily created long-lived timers (if any) are in the baseline.
    const warm = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(warm.connected);
    warm.socket.disconnect();
    assert.ok(await settle(async () => (await session.list()).length === 0, 5_000));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const baseline = timers();

    const sockets: ClientSocket[] = [];
    for (let i = 0; i < SOCKETS; i += BATCH) {
      const results = await Promise.all(Array.from({ length: BATCH }, () => outcome(app.connect("chat", { auth: { token } }), 20_000)));
      for (const result of results) {
        assert.ok(result.connected, result.connected ? "" : result.message);
        sockets.push(result.socket);
      }
    }
    assert.equal((await session.list()).length, SOCKETS);
    assert.ok(timers() >= baseline + SOCKETS, "one expiry timer per socket while connected");

    for (const socket of sockets) socket.disconnect();
    assert.ok(await settle(async () => (await session.list()).length === 0, 20_000), "every session unregistered");
    const back = await settle(() => timers() <= baseline, 20_000);
    assert.ok(back, `timers: baseline ${baseline}, now ${timers()}`);
  });
});
