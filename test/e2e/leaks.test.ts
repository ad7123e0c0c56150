/**
 * 2,000 authenticated sockets, each with its expiry armed, connect and
 * disconnect; afterwards the process's timers and the session registry are
 * back where they started. And a client that leaves while its handshake is
 * still being authenticated leaves nothing behind either. Sockets are
 * released without a `disconnect` listener each (when they leave their
 * `oidc:*` rooms), and still when the app took them out of those rooms
 * (they are put back).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { Adapter } from "socket.io-adapter";
import { OidcSessionManager } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, outcome, startApp, type TestApp } from "../helpers/app.js";

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

/** An issuer and an app with `OidcSessionManager` for the enclosing describe block. */
function sessionApp(adapter?: unknown): { issuer: TestIssuer; app: TestApp } {
  const opened = {} as { issuer: TestIssuer; app: TestApp };
  before(async () => {
    opened.issuer = await createTestIssuer();
    opened.app = await startApp({ config: opened.issuer.config, managers: { session: OidcSessionManager }, adapter });
  });
  after(async () => {
    await opened.app.close();
    await opened.issuer.close();
  });
  return opened;
}

describe(`${SOCKETS} sockets connect and disconnect`, () => {
  const opened = sessionApp();

  it("leaves no timer and no registry entry behind", { timeout: 120_000 }, async () => {
    const { issuer, app } = opened;
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
  let delayMs = 400;
  /** A session tracker that takes its time to register, so the client can leave meanwhile. */
  class SlowSessions {
    registered = new Set<string>();
    async registerSocket(_userId: string, socketId: string): Promise<void> {
      calls.push(`register ${socketId}`);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
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

  it("is unregistered when the sweep of abandoned handshakes released it before its registration finished", { timeout: 30_000 }, async () => {
    // The sweep runs once a second: a registration that takes longer is always overtaken by it.
    delayMs = 1_500;
    try {
      const sessions = app.appHandle.session as SlowSessions;
      calls.length = 0;
      const client = app.connect("chat", { auth: { token: await issuer.mint({ sub: "slow-leaver" }) } });
      assert.ok(await settle(() => calls.length === 1, 5_000), "registerSocket was called");
      const socketId = calls[0]!.slice("register ".length);
      client.disconnect();
      assert.ok(await settle(() => calls.includes(`unregister ${socketId}`), 10_000), `calls: ${calls.join(", ")}`);
      assert.equal(calls.indexOf(`unregister ${socketId}`), 1, "unregistered after its registration, once");
      assert.ok(await settle(() => !sessions.registered.has(socketId), 5_000), "not kept by the tracker");
    } finally {
      delayMs = 400;
    }
  });

  it("is released: the session tracker is told, and the socket is not kept", { timeout: 30_000 }, async () => {
    calls.length = 0;
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

describe("release without a disconnect listener per socket", () => {
  const opened = sessionApp();
  const events = ["disconnect", "disconnecting", "oidc:refresh"];
  const registered = async (socketId: string | undefined) => (await (opened.app.appHandle.session as OidcSessionManager).list()).some((record) => record.socketId === socketId);

  it("an authenticated socket gets only the shared oidc:refresh listener, and is released (session unregistered) when it disconnects", { timeout: 20_000 }, async () => {
    const { issuer, app } = opened;
    const result = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "plain" }) } }));
    assert.ok(result.connected);
    assert.deepEqual(await call(result.socket, "listeners", { events }), { disconnect: 0, disconnecting: 0, "oidc:refresh": 1 });
    const id = result.socket.id;
    assert.ok(await registered(id));
    result.socket.disconnect();
    assert.ok(await settle(async () => !(await registered(id)), 5_000), "released when it left its rooms");
  });

  it("a socket the app took out of its oidc:* room is put back (still no listener), and is still released when it disconnects", { timeout: 20_000 }, async () => {
    const { issuer, app } = opened;
    const result = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "moved" }) } }));
    assert.ok(result.connected);
    const { rooms } = await call<{ rooms: string[] }>(result.socket, "rooms");
    const ours = rooms.filter((room) => room.startsWith("oidc:"));
    assert.equal(ours.length, 1, `rooms: ${rooms.join(", ")}`);
    await call<string[]>(result.socket, "leave", { room: ours[0] });
    assert.ok((await call<{ rooms: string[] }>(result.socket, "rooms")).rooms.includes(ours[0]!), "put back");
    assert.equal((await call<Record<string, number>>(result.socket, "listeners", { events })).disconnect, 0, "no listener of its own");
    const id = result.socket.id;
    assert.ok(await registered(id), "still tracked while connected");
    result.socket.disconnect();
    assert.ok(await settle(async () => !(await registered(id)), 5_000), "released when it left its rooms");
  });
});

/** An adapter that cannot be listened to (no `on`): Socket.IO itself does not need it. */
class SilentAdapter extends Adapter {
  constructor(nsp: ConstructorParameters<typeof Adapter>[0]) {
    super(nsp);
    Object.defineProperty(this, "on", { value: undefined });
  }
}

describe("on an adapter that cannot be listened to", () => {
  const opened = sessionApp(SilentAdapter);
  const registered = async (socketId: string | undefined) => (await (opened.app.appHandle.session as OidcSessionManager).list()).some((record) => record.socketId === socketId);

  it("each authenticated socket gets the disconnect listener, and is released when it disconnects", { timeout: 20_000 }, async () => {
    const { issuer, app } = opened;
    const result = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "silent" }) } }));
    assert.ok(result.connected);
    assert.equal((await call<Record<string, number>>(result.socket, "listeners", { events: ["disconnect"] })).disconnect, 1);
    const id = result.socket.id;
    assert.ok(await registered(id));
    result.socket.disconnect();
    assert.ok(await settle(async () => !(await registered(id)), 5_000), "released by the listener");
  });
});
