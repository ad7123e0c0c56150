/**
 * No authenticated socket beyond the reach of revocation, through a real
 * IOServer and real socket.io-client connections:
 *
 * - the `oidc:` room prefix is reserved: a socket the app takes out of its
 *   own `oidc:` rooms is put back (still revoked, still listed), and a socket
 *   the app puts in another's `oidc:` room is taken out (never revoked with
 *   that user, never counted);
 * - room and key values are well-formed strings, checked before anything
 *   changes: a token whose `sid` holds a lone surrogate is refused at the
 *   handshake and on refresh (the socket's context and rooms untouched), and
 *   a users manager's id with one is `ERR_USER_PROVISION_FAILED`;
 * - an adapter that throws never leaves a registry entry behind.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Adapter } from "socket.io-adapter";
import type { Socket as ClientSocket } from "socket.io-client";
import type { AppHandle } from "ioserver";
import { OidcSessionManager, oidcRoom } from "../../src/index.js";
import { registryOf } from "../../src/sockets/registry.js";
import type { OidcAppHandle } from "../../src/types.js";
import { type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, next, outcome, startApp, type TestApp } from "../helpers/app.js";
import { sleep, waitFor } from "../helpers/wait.js";
import { useTestIssuer } from "../helpers/fixtures.js";

/** A UTF-16 code unit with no partner: not a whole character, so not encodable as UTF-8 or by encodeURIComponent. */
const LONE = "\uD800";

let issuer: TestIssuer;

useTestIssuer((created) => (issuer = created));


const roomsOfClient = async (socket: ClientSocket): Promise<string[]> => (await call<{ rooms: string[] }>(socket, "rooms")).rooms;
const oidcRoomsOf = async (socket: ClientSocket): Promise<string[]> => (await roomsOfClient(socket)).filter((room) => room.startsWith("oidc:")).sort();
/** The ids of the sockets this app's registry tracks. */
const trackedIds = (app: TestApp): string[] => registryOf(app.appHandle as OidcAppHandle).all().map((socket) => socket.id);
/** The sockets this app's registry tracks for the subject (`sub` from the test issuer). */
const trackedOf = (app: TestApp, sub: string) => registryOf(app.appHandle).ofSubject(issuer.issuer, sub);
const reservedWarnings = (app: TestApp) => app.logs.filter((line) => line.level === 4 && line.text.includes(`"oidc:" room prefix is reserved`));

/** Whether the client hears `event` within `ms` (a bounded wait for something that should not come). */
function hears(socket: ClientSocket, event: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const on = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      socket.off(event, on);
      resolve(false);
    }, ms);
    socket.once(event, on);
  });
}

describe("the oidc: room prefix is reserved", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("a socket that leaves its own oidc: rooms through an app event is put back, and stays revocable and listed", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "leaver", sid: "op-session-1" }));
    const own = await oidcRoomsOf(socket);
    assert.deepEqual(own, [oidcRoom.issuerSid(issuer.issuer, "op-session-1"), oidcRoom.issuerSub(issuer.issuer, "leaver"), oidcRoom.withSid].sort());
    const warned = reservedWarnings(app).length;
    for (const room of own) await call(socket, "leave", { room });
    assert.deepEqual(await oidcRoomsOf(socket), own, "back in every one of its rooms");
    assert.equal(reservedWarnings(app).length, warned + own.length, "one warning per room left");
    assert.deepEqual(
      (await call<Record<string, number>>(socket, "listeners", { events: ["disconnect"] })).disconnect,
      0,
      "still no listener of its own: the rooms keep telling when it goes",
    );
    assert.deepEqual((await session.listBySubject("leaver", { iss: issuer.issuer })).map((record) => record.socketId), [socket.id]);
    const revoked = next(socket, "oidc:revoked");
    assert.equal(await session.disconnectUser("leaver", "reach"), 1);
    await revoked;
    await waitFor(() => !trackedIds(app).includes(socket.id as string));
    assert.deepEqual(await session.listBySubject("leaver", { iss: issuer.issuer }), []);
  });

  it("put back by a session-id revocation too (oidc:iss-sid left alone)", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "sid-leaver", sid: "op-session-2" }));
    await call(socket, "leave", { room: oidcRoom.issuerSid(issuer.issuer, "op-session-2") });
    const revoked = next(socket, "oidc:revoked");
    assert.equal(await session.disconnectSessionId("op-session-2", "logout", issuer.issuer), 1);
    await revoked;
  });

  it("a socket that joins another user's oidc:iss-sub room is taken out: not revoked with that user, not counted", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const victim = await connectedTo(app, "chat", await issuer.mint({ sub: "victim" }));
    const intruder = await connectedTo(app, "chat", await issuer.mint({ sub: "intruder" }));
    const victimRoom = oidcRoom.issuerSub(issuer.issuer, "victim");
    const warned = reservedWarnings(app).length;
    const afterJoin = await call<string[]>(intruder, "join", { room: victimRoom });
    assert.ok(!afterJoin.includes(victimRoom), "taken out at once, before anything can be sent there");
    assert.ok(!(await roomsOfClient(intruder)).includes(victimRoom));
    assert.equal(reservedWarnings(app).length, warned + 1);
    const intruderRevoked = hears(intruder, "oidc:revoked", 500);
    const victimRevoked = next(victim, "oidc:revoked");
    assert.equal(await session.disconnectUser("victim", "reach"), 1, "the victim only");
    await victimRevoked;
    assert.equal(await intruderRevoked, false, "the intruder heard nothing sent to the victim's room");
    assert.ok(intruder.connected);
    assert.deepEqual(await oidcRoomsOf(intruder), [oidcRoom.issuerSub(issuer.issuer, "intruder")], "its own room untouched");
    intruder.disconnect();
  });

  it("a socket without sid that joins oidc:with-sid is taken out, so a 'without sid' revocation still reaches it", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "no-sid" }));
    await call(socket, "join", { room: oidcRoom.withSid });
    assert.ok(!(await roomsOfClient(socket)).includes(oidcRoom.withSid));
    const revoked = next(socket, "oidc:revoked");
    assert.equal(await session.disconnectSubject("no-sid", { iss: issuer.issuer, withoutSid: true }), 1);
    await revoked;
  });

  it("only what the app does to oidc: rooms is undone: its own rooms are untouched, and the package's own moves (a refresh dropping the sid) stay", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "mover", sid: "op-session-3" }));
    await call(socket, "join", { room: "lobby" });
    assert.ok((await roomsOfClient(socket)).includes("lobby"));
    await call(socket, "leave", { room: "lobby" });
    assert.ok(!(await roomsOfClient(socket)).includes("lobby"), "the app's rooms are the app's");
    await call(socket, "leave", { room: oidcRoom.withSid });
    assert.ok((await roomsOfClient(socket)).includes(oidcRoom.withSid), "taken out by the app: put back");
    const warned = reservedWarnings(app).length;
    const reply = await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await issuer.mint({ sub: "mover" }) });
    assert.equal(reply.ok, true);
    await sleep(20);
    assert.deepEqual(await oidcRoomsOf(socket), [oidcRoom.issuerSub(issuer.issuer, "mover")], "the sid rooms are gone for good");
    assert.equal(reservedWarnings(app).length, warned, "nothing to warn about");
    socket.disconnect();
  });

  it("a socket that left its rooms and was put back is still released when it disconnects (not put back then)", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "goner" }));
    const id = socket.id as string;
    await call(socket, "leave", { room: oidcRoom.issuerSub(issuer.issuer, "goner") });
    assert.deepEqual(await oidcRoomsOf(socket), [oidcRoom.issuerSub(issuer.issuer, "goner")], "put back");
    assert.ok(trackedIds(app).includes(id));
    const warned = reservedWarnings(app).length;
    socket.disconnect();
    await waitFor(() => !trackedIds(app).includes(id));
    await sleep(50);
    assert.deepEqual(await session.listBySubject("goner", { iss: issuer.issuer }), []);
    assert.equal(reservedWarnings(app).length, warned, "leaving on disconnect is not the app's doing");
  });
});

describe("with a users manager: the oidc:user room", () => {
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate(sub: string) {
      return { id: `local-${sub}` };
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("leaving oidc:user:<id> is undone, joining another user's oidc:user room is undone", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const alice = await connectedTo(app, "chat", await issuer.mint({ sub: "alice" }));
    const mallory = await connectedTo(app, "chat", await issuer.mint({ sub: "mallory" }));
    await call(alice, "leave", { room: oidcRoom.user("local-alice") });
    await call(mallory, "join", { room: oidcRoom.user("local-alice") });
    assert.ok((await roomsOfClient(alice)).includes(oidcRoom.user("local-alice")));
    assert.ok(!(await roomsOfClient(mallory)).includes(oidcRoom.user("local-alice")));
    const revoked = next(alice, "oidc:revoked");
    assert.equal(await session.disconnectUser("local-alice"), 1);
    await revoked;
    await call(mallory, "whoami");
    assert.ok(mallory.connected);
    mallory.disconnect();
  });
});

describe("values named in rooms and keys are well-formed strings, checked before anything changes", () => {
  /** findOrCreate returns an id with a lone surrogate for the sub "broken". */
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate(sub: string) {
      return { id: sub === "broken" ? `user-${LONE}` : `user-${sub}` };
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("a handshake whose token's sid has a lone surrogate is refused (ERR_AUTH_TOKEN_INVALID), and nothing is left in the registry", async () => {
    const result = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "surrogate-sid", sid: `sid-${LONE}` }) } }));
    assert.equal(result.connected, false);
    assert.equal(result.connected ? undefined : result.message, "ERR_AUTH_TOKEN_INVALID");
    assert.deepEqual(trackedOf(app, "surrogate-sid"), []);
    const session = app.appHandle["session"] as OidcSessionManager;
    assert.deepEqual(await session.listBySubject("surrogate-sid", { iss: issuer.issuer }), []);
  });

  it("over HTTP too: 401 ERR_AUTH_TOKEN_INVALID", async () => {
    const response = await fetch(`${app.url}/api/me`, {
      headers: { authorization: `Bearer ${await issuer.mint({ sub: "surrogate-sid", sid: `sid-${LONE}` })}` },
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { code: string }).code, "ERR_AUTH_TOKEN_INVALID");
  });

  it("a refresh with such a token is refused and changes nothing: socket.data.auth, decorations and rooms stay", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "refresher", sid: "good-sid", roles: ["member"] }));
    const before = await call<Record<string, unknown>>(socket, "whoami");
    const roomsBefore = await oidcRoomsOf(socket);
    const reply = await call<{ ok: boolean; code?: string }>(socket, "oidc:refresh", {
      token: await issuer.mint({ sub: "refresher", sid: `bad-${LONE}`, roles: ["member", "admin"] }),
    });
    assert.deepEqual(reply, { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    assert.deepEqual(await call<Record<string, unknown>>(socket, "whoami"), before);
    assert.deepEqual(await oidcRoomsOf(socket), roomsBefore);
    assert.ok(trackedIds(app).includes(socket.id as string));
    socket.disconnect();
  });

  it("a users manager id with a lone surrogate is ERR_USER_PROVISION_FAILED (Socket.IO and HTTP), and nothing is left in the registry", async () => {
    const token = await issuer.mint({ sub: "broken" });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.equal(result.connected ? undefined : result.message, "ERR_USER_PROVISION_FAILED");
    assert.deepEqual(trackedOf(app, "broken"), []);
    assert.deepEqual(registryOf(app.appHandle as OidcAppHandle).ofUserId(`user-${LONE}`), []);
    const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
    assert.equal(response.status, 500);
    assert.equal(((await response.json()) as { code: string }).code, "ERR_USER_PROVISION_FAILED");
  });
});

/** An adapter that throws whenever a socket is taken out of a room by name (Socket.IO's own cleanup, `delAll`, still works). */
class ThrowingAdapter extends Adapter {
  override del(id: string, room: string): void {
    if (room.startsWith("oidc:")) throw new Error("adapter failure");
    void super.del(id, room); // the in-memory adapter's del() is synchronous
  }
}

describe("an adapter that throws leaves no registry entry behind", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager }, adapter: ThrowingAdapter });
  });
  after(async () => {
    await app.close();
  });

  it("a socket refused by a later guard (leaving its rooms throws) is released: not tracked, not listed", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const result = await outcome(app.connect("admin", { auth: { token: await issuer.mint({ sub: "not-admin", roles: ["user"] }) } }));
    assert.equal(result.connected ? undefined : result.message, "ERR_FORBIDDEN");
    await sleep(50);
    assert.deepEqual(trackedIds(app), []);
    assert.deepEqual(await session.listBySubject("not-admin", { iss: issuer.issuer }), []);
  });

  it("a socket revoked while its adapter throws is released: not tracked, not listed", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "thrower" }));
    assert.deepEqual(trackedIds(app), [socket.id]);
    const revoked = next(socket, "oidc:revoked");
    assert.equal(await session.disconnectUser("thrower"), 1);
    await revoked;
    await waitFor(() => trackedIds(app).length === 0);
    assert.deepEqual(await session.listBySubject("thrower", { iss: issuer.issuer }), []);
  });
});
