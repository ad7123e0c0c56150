/**
 * 2,000 authenticated sockets, each with its expiry armed, connect and
 * disconnect; afterwards the process's timers and the session registry are
 * back where they started. And a client that leaves while its handshake is
 * still being authenticated leaves nothing behind either.
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
    const token = await issuer.mint({ sub: "many" }); // expires in 5 minutes: every socket's expiry is queued
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
    // Each connection has its own Engine.IO and client timers; the package adds one expiry timer for all of them.
    assert.ok(timers() > baseline, "the connections' timers are live");

    for (const socket of sockets) socket.disconnect();
    assert.ok(await settle(async () => (await session.list()).length === 0, 20_000), "every session unregistered");
    const back = await settle(() => timers() <= baseline, 20_000);
    assert.ok(back, `timers: baseline ${baseline}, now ${timers()}`);
  });
});

describe("a client that leaves during its handshake", () => {
  let issuer: TestIssuer;
  let app: TestApp;
  const calls: string[] = [];
  /** A session tracker that takes its time to register, so the client can leave meanwhile. */
  class SlowSessions {
    registered = new Set<string>();
    async registerSocket(_userId: string, socketId: string): Promise<void> {
      calls.push(`register ${socketId}`);
      await new Promise((resolve) => setTimeout(resolve, 400));
      this.registered.add(socketId);
    }
    unregisterSocket(socketId: string): void {
      calls.push(`unregister ${socketId}`);
      this.registered.delete(socketId);
    }
  }
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: issuer.config, managers: { session: SlowSessions } });
  });
  after(async () => {
    await app.close();
    await issuer.close();
  });

  it("is released: the session tracker is told, and the socket is not kept", { timeout: 30_000 }, async () => {
    const sessions = app.appHandle.session as SlowSessions;
    const client = app.connect("chat", { auth: { token: await issuer.mint({ sub: "leaver" }) } });
    assert.ok(await settle(() => calls.length === 1, 5_000), "registerSocket was called");
    const socketId = calls[0]!.slice("register ".length);
    client.disconnect(); // while registerSocket is still running: Socket.IO drops the socket without a disconnect event
    assert.ok(await settle(() => calls.includes(`unregister ${socketId}`), 10_000), `calls: ${calls.join(", ")}`);
    assert.equal(sessions.registered.has(socketId), false);
    // The one sweep timer of pending handshakes stops once none is left.
    const baseline = timers();
    const ok = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "stayer" }) } }));
    assert.ok(ok.connected);
    ok.socket.disconnect();
    assert.ok(await settle(() => timers() <= baseline, 10_000), `timers: baseline ${baseline}, now ${timers()}`);
  });
});
