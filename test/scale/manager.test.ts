/**
 * OidcSessionManager on one node: the rooms revocations go through (and how
 * they follow an in-band refresh), and the store failing and coming back.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import type { Socket as ClientSocket } from "socket.io-client";
import { MemorySessionStore, OidcSessionManager, oidcRoom, type OidcSessionRecord, type OidcSessionStore } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, startApp, type TestApp } from "../helpers/app.js";
import { next, revokedThenGone } from "./harness.js";
import { nextSecond, waitFor } from "../helpers/wait.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
useTestIssuer((created) => (issuer = created));

class Users {
  constructor(_appHandle: AppHandle) {}
  findOrCreate(sub: string) {
    return { id: `id-${sub}` };
  }
}


const oidcRooms = async (socket: ClientSocket) => (await call<{ rooms: string[] }>(socket, "rooms")).rooms.filter((room) => room.startsWith("oidc:")).sort();

describe("rooms", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("an authenticated socket is in oidc:iss-sub, oidc:user (user id ≠ sub) and oidc:iss-sid + oidc:with-sid (with a sid claim) rooms, values escaped", async () => {
    const iss = encodeURIComponent(issuer.issuer);
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "a:b#c/d", sid: "s 1:x" }));
    assert.deepEqual(await oidcRooms(socket), [
      `oidc:iss-sid:${iss}:s%201%3Ax`,
      `oidc:iss-sub:${iss}:a%3Ab%23c%2Fd`,
      "oidc:user:id-a%3Ab%23c%2Fd",
      "oidc:with-sid",
    ]);
    assert.equal(oidcRoom.user("a:b#c/d"), "oidc:user:a%3Ab%23c%2Fd");
    assert.equal(oidcRoom.withSid, "oidc:with-sid");
    const plain = await connectedTo(app, "chat", await issuer.mint({ sub: "nosid" }));
    assert.deepEqual(await oidcRooms(plain), [`oidc:iss-sub:${iss}:nosid`, "oidc:user:id-nosid"]);
    socket.disconnect();
    plain.disconnect();
  });

  it("room names cannot be confused across kinds or values (a ':' in an issuer or sub is escaped)", () => {
    assert.notEqual(oidcRoom.issuerSub("https://op:8443", "x"), oidcRoom.issuerSub("https://op", "8443:x"));
    assert.equal(oidcRoom.issuerSub("https://op:8443", "a:b"), "oidc:iss-sub:https%3A%2F%2Fop%3A8443:a%3Ab");
    assert.equal(oidcRoom.issuerSid("https://op", "a b"), "oidc:iss-sid:https%3A%2F%2Fop:a%20b");
    // An encoded value contains no ':' — so the kind is everything up to the second ':'.
    const names = [oidcRoom.issuerSub("i", "s"), oidcRoom.issuerSid("i", "s"), oidcRoom.user("i:s"), oidcRoom.user("with-sid"), oidcRoom.withSid];
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(names.map((name) => name.split(":").length), [4, 4, 3, 3, 2]);
  });

  it("an in-band refresh moves the socket to the new sid's rooms; revocation by the old sid no longer reaches it", async () => {
    const session = app.appHandle.session as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "mover", sid: "old-sid" }));
    await call(socket, "join", { room: "lobby" });
    const ack = await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await issuer.mint({ sub: "mover", sid: "new-sid" }) });
    assert.equal(ack.ok, true);
    const rooms = await oidcRooms(socket);
    const iss = encodeURIComponent(issuer.issuer);
    assert.ok(rooms.includes(`oidc:iss-sid:${iss}:new-sid`) && !rooms.includes(`oidc:iss-sid:${iss}:old-sid`), JSON.stringify(rooms));
    assert.ok(rooms.includes("oidc:with-sid"), JSON.stringify(rooms));
    assert.ok((await call<{ rooms: string[] }>(socket, "rooms")).rooms.includes("lobby"), "the app's own rooms are untouched");
    assert.equal((await session.listBySubject("mover"))[0]?.sid, "new-sid", "list() shows the live sid");

    assert.equal(await session.disconnectSessionId("old-sid", "logout"), 0);
    assert.ok(socket.connected);
    const gone = revokedThenGone(socket);
    assert.equal(await session.disconnectSessionId("new-sid", "logout"), 1);
    assert.deepEqual((await gone).revoked, { code: "ERR_AUTH_REVOKED", reason: "logout" });
  });

  it("a refresh to a token without sid leaves the sid rooms (oidc:iss-sid and oidc:with-sid)", async () => {
    const iss = encodeURIComponent(issuer.issuer);
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "dropper", sid: "gone-sid" }));
    assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await issuer.mint({ sub: "dropper" }) })).ok, true);
    assert.deepEqual(await oidcRooms(socket), [`oidc:iss-sub:${iss}:dropper`, "oidc:user:id-dropper"]);
    socket.disconnect();
  });

  it("disconnectSubject: by (iss, sub), or only the sockets without sid; follows a refresh that brings a sid", async () => {
    const session = app.appHandle.session as OidcSessionManager;
    const withSid = await connectedTo(app, "chat", await issuer.mint({ sub: "subj", sid: "subj-sid" }));
    const sidless = await connectedTo(app, "chat", await issuer.mint({ sub: "subj" }));
    const gainer = await connectedTo(app, "chat", await issuer.mint({ sub: "subj" }));
    const other = await connectedTo(app, "chat", await issuer.mint({ sub: "subj-2" }));
    assert.equal((await call<{ ok: boolean }>(gainer, "oidc:refresh", { token: await issuer.mint({ sub: "subj", sid: "gained" }) })).ok, true);

    assert.equal(await session.disconnectSubject("subj", { iss: "https://another-issuer.example" }), 0, "another issuer's subject");
    assert.equal(await session.disconnectSubject("id-subj", { iss: issuer.issuer }), 0, "the local user id is not a sub");
    const goneSidless = revokedThenGone(sidless);
    assert.equal(await session.disconnectSubject("subj", { iss: issuer.issuer, reason: "bye", withoutSid: true }), 1);
    assert.deepEqual((await goneSidless).revoked, { code: "ERR_AUTH_REVOKED", reason: "bye" });
    assert.ok(withSid.connected && gainer.connected, "the sockets whose token has a sid stay");

    const goneWithSid = revokedThenGone(withSid);
    const goneGainer = revokedThenGone(gainer);
    assert.equal(await session.disconnectSubject("subj", { iss: issuer.issuer }), 2);
    await goneWithSid;
    await goneGainer;
    await call(other, "whoami");
    assert.ok(other.connected, "another subject is untouched");

    const goneOther = revokedThenGone(other);
    assert.equal(await session.disconnectSubject("subj-2"), 1, "without iss: any issuer");
    await goneOther;
    assert.ok(app.logs.some((line) => line.level === 6 && line.text.includes(`disconnected 1 socket(s) of subject "subj" ("${issuer.issuer}") without sid: "bye"`)));
  });

  it("disconnectSessionId and disconnectSubject validate their arguments", async () => {
    const session = app.appHandle.session as OidcSessionManager;
    await assert.rejects(session.disconnectSessionId(""), TypeError);
    await assert.rejects(session.disconnectSessionId("x", undefined, ""), TypeError);
    await assert.rejects(session.disconnectSubject(""), TypeError);
    await assert.rejects(session.disconnectSubject("x", { iss: "" }), TypeError);
    await assert.rejects(session.disconnectSubject("x", { withoutSid: true }), /withoutSid needs iss/);
    await assert.rejects(session.disconnectSubject("x", null as never), TypeError);
    await assert.rejects(session.disconnectSubject("x", { iss: "i", withoutSid: "yes" as never }), TypeError);
  });
});

describe("rooms per socket (memory: each room is a name, an adapter Set and a socket.rooms entry)", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  const roomsBesidesOwn = async (socket: ClientSocket) => (await call<{ rooms: string[] }>(socket, "rooms")).rooms.filter((room) => room !== socket.id);

  it("a plain authenticated socket (no sid, user id = sub) joins exactly one room besides its own id room", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "plain" }));
    assert.deepEqual(await roomsBesidesOwn(socket), [oidcRoom.issuerSub(issuer.issuer, "plain")]);
    socket.disconnect();
  });

  it("with a sid: two more, one of them the shared oidc:with-sid", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "plain-sid", sid: "p-sid" }));
    assert.deepEqual((await roomsBesidesOwn(socket)).sort(), [oidcRoom.issuerSid(issuer.issuer, "p-sid"), oidcRoom.issuerSub(issuer.issuer, "plain-sid"), oidcRoom.withSid].sort());
    socket.disconnect();
  });

  it("without a users manager, disconnectUser(sub) reaches the sockets whose user id is their sub; withoutSid skips the sockets with a sid", async () => {
    const session = app.appHandle.session as OidcSessionManager;
    const a = await connectedTo(app, "chat", await issuer.mint({ sub: "same" }));
    const b = await connectedTo(app, "chat", await issuer.mint({ sub: "same", sid: "same-sid" }));
    const goneA = revokedThenGone(a);
    assert.equal(await session.disconnectSubject("same", { iss: issuer.issuer, withoutSid: true }), 1);
    await goneA;
    assert.ok(b.connected);
    await nextSecond(); // a sid-less token issued after the revocation
    const c = await connectedTo(app, "lenient", await issuer.mint({ sub: "same" }));
    const goneB = revokedThenGone(b);
    const goneC = revokedThenGone(c);
    assert.equal(await session.disconnectUser("same", "bye"), 2);
    await goneB;
    await goneC;
  });
});

describe("two issuers: queries by sub or sid alone cover every configured issuer", () => {
  let other: TestIssuer;
  let app: TestApp;
  before(async () => {
    other = await createTestIssuer();
    const entry = (i: TestIssuer) => ({ issuer: i.issuer, audience: i.config.audience as string, jwksUri: i.config.jwksUri as string });
    app = await startApp({ config: { issuers: [entry(issuer), entry(other)] }, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
    await other.close();
  });

  it("disconnectUser by user id only (a sub is not a user id), disconnectSubject per issuer or without iss, disconnectSessionId without iss", async () => {
    const session = app.appHandle.session as OidcSessionManager;
    const connectBoth = async (claims: Record<string, unknown>) => [
      await connectedTo(app, "chat", await issuer.mint(claims)),
      await connectedTo(app, "chat", await other.mint(claims)),
    ];
    const bySub = await connectBoth({ sub: "twin" });
    assert.equal(await session.disconnectUser("twin"), 0);
    assert.ok(bySub.every((socket) => socket.connected));
    let gone = [revokedThenGone(bySub[0]!)];
    assert.equal(await session.disconnectSubject("twin", { iss: issuer.issuer }), 1);
    await Promise.all(gone);
    assert.ok(bySub[1]!.connected, "the other issuer's twin is another subject");
    gone = [revokedThenGone(bySub[1]!)];
    assert.equal(await session.disconnectSubject("twin", { iss: other.issuer }), 1);
    await Promise.all(gone);

    await nextSecond(); // tokens issued after the revocations
    const byId = await connectBoth({ sub: "twin" });
    gone = byId.map((socket) => revokedThenGone(socket));
    assert.equal(await session.disconnectUser("id-twin"), 2);
    await Promise.all(gone);

    await nextSecond();
    const bySubject = await connectBoth({ sub: "twin", sid: "t-sid" });
    gone = bySubject.map((socket) => revokedThenGone(socket));
    assert.equal(await session.disconnectSubject("twin"), 2);
    await Promise.all(gone);

    await nextSecond();
    const bySid = await connectBoth({ sub: "twin", sid: "t-sid" });
    const bystander = await connectedTo(app, "chat", await other.mint({ sub: "twin", sid: "other-sid" }));
    gone = bySid.map((socket) => revokedThenGone(socket));
    assert.equal(await session.disconnectSessionId("t-sid"), 2);
    await Promise.all(gone);
    assert.equal(await session.disconnectSessionId("t-sid", undefined, other.issuer), 0);
    await call(bystander, "whoami");
    assert.ok(bystander.connected);
    bystander.disconnect();
  });

  it("when the configuration cannot be read: oidc:user is still addressed, and it is logged", async () => {
    const session = app.appHandle.session as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await other.mint({ sub: "cfg" }));
    const manager = app.appHandle.oidcConfig as { getConfig: () => unknown };
    const original = manager.getConfig;
    manager.getConfig = () => {
      throw new Error("config store down");
    };
    try {
      const gone = revokedThenGone(socket);
      assert.equal(await session.disconnectUser("id-cfg"), 1);
      await gone;
    } finally {
      manager.getConfig = original;
    }
    assert.ok(app.logs.some((line) => line.level === 4 && line.text.includes("disconnectUser: the configuration could not be read")));
  });
});

describe("revocation before any socket connected", () => {
  it("disconnectUser, disconnectSessionId and disconnectSubject resolve to 0", async () => {
    const app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager } });
    try {
      const session = app.appHandle.session as OidcSessionManager;
      assert.equal(await session.disconnectUser("nobody"), 0);
      assert.equal(await session.disconnectSessionId("nothing"), 0);
      assert.equal(await session.disconnectSubject("nobody", { iss: issuer.issuer, withoutSid: true }), 0);
    } finally {
      await app.close();
    }
  });
});

/** A store whose backend can be switched off, with a heartbeat like redisSessionStore's. */
class FlakyStore implements OidcSessionStore {
  readonly inner = new MemorySessionStore();
  readonly heartbeatInterval = 100;
  readonly nodeId = "flaky-node";
  down = false;
  hang = false;
  touches = 0;
  /** touch() calls, failed ones included. */
  probes = 0;
  closed = 0;
  private check(): Promise<void> {
    if (this.hang) return new Promise(() => undefined);
    return this.down ? Promise.reject(new Error("backend down")) : Promise.resolve();
  }
  async add(record: OidcSessionRecord) {
    await this.check();
    this.inner.add(record);
  }
  async remove(socketId: string) {
    await this.check();
    this.inner.remove(socketId);
  }
  async list() {
    await this.check();
    return this.inner.list();
  }
  async touch(records: OidcSessionRecord[]) {
    this.probes++;
    await this.check();
    this.touches++;
    for (const record of records) this.inner.add(record);
  }
  close() {
    this.closed++;
  }
}

describe("the store failing and coming back", () => {
  const OUTAGE = /Redis unavailable \(session store/;
  const RECOVERY = /available again/;

  it("handshakes go on, one outage line, node-local list(); on return: sessions written back, removals flushed, one recovery line", async () => {
    const store = new FlakyStore();
    const app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ store, storeTimeout: 300 }) } });
    const session = app.appHandle.session as OidcSessionManager;
    const lines = (pattern: RegExp) => app.logs.filter((line) => pattern.test(line.text));
    try {
      const before = await connectedTo(app, "chat", await issuer.mint({ sub: "before" }));
      await waitFor("heartbeats run", () => store.touches >= 2, 5_000, 20);
      assert.deepEqual(store.inner.list().map((r) => [r.sub, r.node]), [["before", "flaky-node"]]);

      store.down = true;
      const during = await connectedTo(app, "chat", await issuer.mint({ sub: "during" }));
      const also = await connectedTo(app, "chat", await issuer.mint({ sub: "during-too" }));
      assert.equal(session.degraded, true);
      assert.deepEqual((await session.list()).map((r) => r.sub).sort(), ["before", "during", "during-too"]);
      assert.deepEqual((await session.listByUser("during")).map((r) => r.socketId), [during.id]);
      // Revocation needs no store.
      const gone = revokedThenGone(also);
      assert.equal(await session.disconnectUser("during-too", "x"), 1);
      await gone;
      // A socket that ends during the outage.
      const left = next(before, "disconnect");
      before.disconnect();
      await left;
      const probes = store.probes;
      await waitFor("three more probes failed", () => store.probes >= probes + 3, 10_000, 20);
      assert.equal(lines(OUTAGE).length, 1, JSON.stringify(lines(OUTAGE)));
      assert.equal(lines(OUTAGE)[0]!.level, 4);

      store.down = false;
      await waitFor("healed", () => !session.degraded, 5_000, 20);
      assert.deepEqual(store.inner.list().map((r) => r.sub), ["during"], "written back; the sockets that left are removed");
      assert.equal(lines(RECOVERY).length, 1, JSON.stringify(lines(RECOVERY)));
      assert.equal(lines(RECOVERY)[0]!.level, 6);
      assert.equal(lines(OUTAGE).length, 1);
      during.disconnect();
    } finally {
      await app.close();
    }
  });

  it("a store that hangs delays a handshake by storeTimeout at most once, then sessions are node-local", async () => {
    const store = new FlakyStore();
    store.hang = true;
    const app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager.configure({ store, storeTimeout: 200 }) } });
    const session = app.appHandle.session as OidcSessionManager;
    try {
      const first = await connectedTo(app, "chat", await issuer.mint({ sub: "h1" }));
      assert.equal(session.degraded, true);
      const second = await connectedTo(app, "chat", await issuer.mint({ sub: "h2" }));
      assert.deepEqual((await session.list()).map((r) => r.sub).sort(), ["h1", "h2"]);
      first.disconnect();
      second.disconnect();
      await session.stop();
      assert.equal(store.closed, 1);
      await session.stop();
      assert.equal(store.closed, 1, "stop() is idempotent");
    } finally {
      await app.close();
    }
  });

  it("configure() validates the timeouts", () => {
    assert.throws(() => OidcSessionManager.configure({ storeTimeout: 0 }), /storeTimeout/);
    assert.throws(() => OidcSessionManager.configure({ clusterTimeout: -1 }), /clusterTimeout/);
    assert.throws(() => OidcSessionManager.configure({ store: { add() {} } as unknown as OidcSessionStore }), /must implement remove/);
  });
});
