/**
 * A revoked session stays revoked: after a revocation, the same still-valid
 * token is refused on both transports (ERR_AUTH_REVOKED, 401 invalid_token)
 * until it could no longer be valid; a token issued after it is accepted.
 * Through a real IOServer and real socket.io-client connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import { OidcSessionManager } from "../../src/index.js";
import { DenyList } from "../../src/stores/denyList.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { bothTransports, call, connectedTo, next, startApp, type TestApp } from "../helpers/app.js";
import { nextSecond, sleep } from "../helpers/wait.js";

let issuer: TestIssuer;
let other: TestIssuer;

before(async () => {
  [issuer, other] = await Promise.all([createTestIssuer(), createTestIssuer()]);
});
after(async () => {
  await Promise.all([issuer.close(), other.close()]);
});

const nowS = () => Math.floor(Date.now() / 1000);



const REVOKED = {
  http: 401,
  challenge: 'Bearer error="invalid_token", error_description="The session was revoked"',
  code: "ERR_AUTH_REVOKED",
  socket: "ERR_AUTH_REVOKED",
};
const ACCEPTED = { http: 200, challenge: null, code: undefined, socket: "ok" };

/** A users manager whose local ids are `u-<sub>` and whose `disabled` set the test fills. */
function usersManager() {
  const disabled = new Set<string>();
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate(sub: string) {
      return { id: `u-${sub}`, isDisabled: disabled.has(sub) };
    }
  }
  return { disabled, Users };
}

describe("revocations are sticky (one node)", () => {
  let app: TestApp;
  let session: OidcSessionManager;
  const entry = (i: TestIssuer) => ({ issuer: i.issuer, audience: "test-app", jwksUri: i.config.jwksUri as string });
  before(async () => {
    app = await startApp({ config: { issuers: [entry(issuer), entry(other)] }, managers: { session: OidcSessionManager } });
    session = app.appHandle["session"] as OidcSessionManager;
  });
  after(async () => {
    await app.close();
  });

  it("disconnectSubject: the same token cannot reconnect, on HTTP or Socket.IO; the other issuer's equal sub can; a token issued later can", async () => {
    const token = await issuer.mint({ sub: "ann" });
    const theirs = await other.mint({ sub: "ann" });
    const socket = await connectedTo(app, "chat", token);
    const revoked = next(socket, "oidc:revoked");
    // At the start of a second, so that the token minted just after the revocation is issued in the same second.
    await nextSecond();
    assert.equal(await session.disconnectSubject("ann", { iss: issuer.issuer, reason: "bye" }), 1);
    await revoked;
    assert.deepEqual(await bothTransports(app, token), REVOKED);
    assert.deepEqual(await bothTransports(app, await issuer.mint({ sub: "ann" })), REVOKED, "issued in the same second: at or before the revocation");
    assert.deepEqual(await bothTransports(app, theirs), ACCEPTED);
    await nextSecond();
    assert.deepEqual(await bothTransports(app, await issuer.mint({ sub: "ann" })), ACCEPTED, "signed in again");
  });

  it("a token without iat counts as issued before", async () => {
    const token = await issuer.mint({ sub: "no-iat", iat: undefined });
    assert.deepEqual(await bothTransports(app, token), ACCEPTED);
    await session.disconnectSubject("no-iat", { iss: issuer.issuer });
    await nextSecond();
    assert.deepEqual(await bothTransports(app, await issuer.mint({ sub: "no-iat", iat: undefined })), REVOKED);
  });

  it("disconnectUser (derived id <iss>#<sub>) and disconnectSessionId are sticky too; another sid of the same subject is not touched", async () => {
    const userToken = await other.mint({ sub: "ben" });
    await session.disconnectUser(`${other.issuer}#ben`);
    assert.deepEqual(await bothTransports(app, userToken), REVOKED);

    const inSession = await issuer.mint({ sub: "cat", sid: "op-1" });
    const otherSession = await issuer.mint({ sub: "cat", sid: "op-2" });
    await session.disconnectSessionId("op-1", "logged out", issuer.issuer);
    assert.deepEqual(await bothTransports(app, inSession), REVOKED);
    assert.deepEqual(await bothTransports(app, otherSession), ACCEPTED);
  });

  it("disconnectSubject withoutSid: only the tokens without sid stay refused", async () => {
    const sidless = await issuer.mint({ sub: "dan" });
    const withSid = await issuer.mint({ sub: "dan", sid: "op-3" });
    await session.disconnectSubject("dan", { iss: issuer.issuer, withoutSid: true });
    assert.deepEqual(await bothTransports(app, sidless), REVOKED);
    assert.deepEqual(await bothTransports(app, withSid), ACCEPTED);
  });

  it("an in-band refresh with a revoked token is refused with ERR_AUTH_REVOKED", async () => {
    const old = await issuer.mint({ sub: "eve", sid: "s-eve" });
    await nextSecond();
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "eve" }));
    await session.disconnectSessionId("s-eve", undefined, issuer.issuer);
    assert.deepEqual(await call(socket, "oidc:refresh", { token: old }), { ok: false, code: "ERR_AUTH_REVOKED" });
    socket.disconnect();
  });
});

describe("a revocation during a handshake reaches the socket when the handshake completes", () => {
  let release: (() => void) | undefined;
  /** A session tracker whose registerSocket is slow, like a store write under load. */
  class SlowSession extends OidcSessionManager {
    override async registerSocket(userId: string, socketId: string, sub: string): Promise<void> {
      await super.registerSocket(userId, socketId, sub);
      await new Promise<void>((resolve) => {
        release = resolve;
        setTimeout(resolve, 3_000);
      });
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { session: SlowSession } });
  });
  after(async () => {
    await app.close();
  });

  it("disconnectUser while registerSocket runs: the client gets oidc:revoked and is disconnected, not served", async () => {
    const client = app.connect("chat", { auth: { token: await issuer.mint({ sub: "slow" }) } });
    const revoked = next<{ code: string }>(client, "oidc:revoked", 8_000);
    const gone = next<string>(client, "disconnect", 8_000);
    for (let i = 0; i < 100 && release === undefined; i++) await sleep(20);
    assert.ok(release, "the handshake reached registerSocket");
    await (app.appHandle["session"] as OidcSessionManager).disconnectUser("slow", "during the handshake");
    release();
    assert.equal((await revoked).code, "ERR_AUTH_REVOKED");
    assert.equal(await gone, "io server disconnect");
  });
});

describe("a disabled user", () => {
  const { disabled, Users } = usersManager();
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("is revoked once, not once per request; re-enabled, the tokens issued before stay refused, a new one is accepted", async () => {
    const token = await issuer.mint({ sub: "fay" });
    const socket = await connectedTo(app, "chat", token);
    disabled.add("fay");
    const revoked = next(socket, "oidc:revoked");
    const requests = await Promise.all(Array.from({ length: 20 }, () => bothTransports(app, token)));
    await revoked;
    assert.ok(requests.every((r) => r.http === 403 && r.code === "ERR_USER_DISABLED" && r.socket === "ERR_USER_DISABLED"), JSON.stringify(requests[0]));
    const revocations = app.logs.filter((line) => /disconnected \d+ socket\(s\) of user "u-fay"/.test(line.text));
    assert.equal(revocations.length, 1, JSON.stringify(revocations));

    disabled.delete("fay");
    assert.deepEqual(await bothTransports(app, token), REVOKED);
    await nextSecond();
    assert.deepEqual(await bothTransports(app, await issuer.mint({ sub: "fay" })), ACCEPTED);
  });
});

describe("connection-state recovery cannot bypass a revocation", () => {
  const { disabled, Users } = usersManager();
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager }, recovery: true });
  });
  after(async () => {
    await app.close();
  });

  /** Drop the connection; revoke (or whatever `meanwhile` does) while it is away; reconnect with the same session. */
  async function awayThenBack(sub: string, meanwhile: () => Promise<unknown>): Promise<{ code: string }> {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub }), { reconnection: false });
    const joined = next(socket, "chat:joined");
    await call(socket, "join", { room: "r" });
    await joined;
    const dropped = next(socket, "disconnect");
    (socket.io as unknown as { engine: { close(): void } }).engine.close();
    await dropped;
    // The server has seen the socket go (its session is kept for recovery): nothing is connected to revoke.
    const session = app.appHandle["session"] as OidcSessionManager;
    for (let i = 0; i < 200 && (await session.listBySubject(sub)).length > 0; i++) await sleep(10);
    assert.deepEqual(await session.listBySubject(sub), []);
    await meanwhile();
    const revoked = next<{ code: string }>(socket, "oidc:revoked", 8_000);
    const gone = next(socket, "disconnect", 8_000);
    socket.connect();
    const payload = await revoked;
    await gone;
    return payload;
  }

  it("a revocation issued while the socket was away reaches it when it comes back", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    // (Recovery may also replay the revocation broadcast the socket missed: either way it is revoked.)
    const payload = await awayThenBack("gus", async () => assert.equal(await session.disconnectUser("u-gus", "while away"), 0));
    assert.equal(payload.code, "ERR_AUTH_REVOKED");
    assert.ok(app.logs.some((line) => /recovered socket \/chat .*ERR_AUTH_REVOKED/.test(line.text)), "refused by the restore check");
  });

  it("a user disabled while the socket was away is refused on restore", async () => {
    // The restore check refuses it; the disabled user's revocation, broadcast at the same time, may reach the socket first.
    const payload = await awayThenBack("hal", async () => disabled.add("hal"));
    assert.ok(["ERR_USER_DISABLED", "ERR_AUTH_REVOKED"].includes(payload.code), JSON.stringify(payload));
    assert.ok(app.logs.some((line) => /recovered socket \/chat .*ERR_USER_DISABLED/.test(line.text)), "refused by the restore check");
  });

  it("without a revocation the socket is restored with its identity", async () => {
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub: "ivy" }), { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    const joined = next(socket, "chat:joined");
    await call(socket, "join", { room: "kept" });
    await joined;
    const back = next(socket, "connect", 8_000);
    (socket.io as unknown as { engine: { close(): void } }).engine.close();
    await back;
    assert.equal(socket.recovered, true);
    assert.equal((await call<{ userId: string }>(socket, "whoami")).userId, "u-ivy");
    socket.disconnect();
  });
});

describe("the deny-list (unit)", () => {
  const context = (claims: Record<string, unknown>, userId = "u") =>
    ({ sub: String(claims["sub"]), userId, claims, email: null, name: null, userRole: "user", roles: [], permissions: [], features: {}, scopes: [], expiresAt: 0 }) as never;

  it("costs a size read when empty; entries end at `until`; the later revocation wins", () => {
    const list = new DenyList();
    const now = Date.now();
    assert.equal(list.check(context({ sub: "s", iss: "i", iat: 1 })), undefined);
    list.add({ kind: "subject", iss: "i", value: "s", at: 100, until: now + 1_000 }, now);
    assert.ok(list.check(context({ sub: "s", iss: "i", iat: 100 }), { now }));
    assert.equal(list.check(context({ sub: "s", iss: "i", iat: 101 }), { now }), undefined);
    assert.equal(list.check(context({ sub: "s", iss: "j", iat: 1 }), { now }), undefined, "another issuer's subject");
    list.add({ kind: "subject", iss: "i", value: "s", at: 200, until: now + 1_000 }, now);
    assert.ok(list.check(context({ sub: "s", iss: "i", iat: 150 }), { now }));
    assert.equal(list.check(context({ sub: "s", iss: "i", iat: 1 }), { now: now + 1_000 }), undefined, "expired");
    assert.equal(list.size, 0, "an expired entry is dropped when met");
  });

  it("a token whose iat lies beyond the clock tolerance counts as issued before (a provider clock running ahead)", () => {
    const list = new DenyList();
    const now = Date.now();
    list.add({ kind: "subject", iss: "i", value: "s", at: nowS(), until: now + 60_000 }, now);
    assert.ok(list.check(context({ sub: "s", iss: "i", iat: nowS() + 3_600 }), { now, clockTolerance: 5 }));
    assert.equal(list.check(context({ sub: "s", iss: "i", iat: nowS() + 3 }), { now, clockTolerance: 5 }), undefined, "issued after it, within the tolerance");
  });

  it("while it holds entries for others, a context is still checked afresh after every revocation, per kind of check and clock tolerance", () => {
    const list = new DenyList();
    list.add({ kind: "subject", iss: "i", value: "someone-else", at: nowS(), until: Date.now() + 60_000 });
    const alice = context({ sub: "alice", iss: "i", iat: nowS() - 10 }, "u-alice");
    assert.equal(list.check(alice), undefined);
    list.add({ kind: "subject", iss: "i", value: "alice", at: nowS(), until: Date.now() + 60_000 });
    assert.equal(list.check(alice)?.value, "alice", "a revocation after the first check reaches the same context");

    // Checks that leave user entries out (before provisioning) do not match them; those that match them do.
    const bob = context({ sub: "bob", iss: "i", iat: nowS() - 10 }, "u-bob");
    list.add({ kind: "user", iss: "", value: "u-bob", at: nowS(), until: Date.now() + 60_000 });
    assert.equal(list.check(bob, { userIds: false }), undefined);
    assert.equal(list.check(bob, { userIds: true })?.value, "u-bob");

    // A token issued a minute ahead is clear under a two-minute tolerance, and issued before (refused) under none.
    const carol = context({ sub: "carol", iss: "i", iat: nowS() + 60 });
    list.add({ kind: "subject", iss: "i", value: "carol", at: nowS(), until: Date.now() + 60_000 });
    assert.equal(list.check(carol, { clockTolerance: 120 }), undefined);
    assert.equal(list.check(carol, { clockTolerance: 0 })?.value, "carol");
  });

  it("a value named by several entries (a sub that is also a sid, another issuer's) stays covered while one of them holds", () => {
    const list = new DenyList();
    const now = Date.now();
    list.add({ kind: "subject", iss: "i", value: "x", at: nowS(), until: now + 1_000 }, now);
    list.add({ kind: "session", iss: "i", value: "x", at: nowS(), until: now + 60_000 }, now);
    list.add({ kind: "subject", iss: "j", value: "x", at: nowS(), until: now + 60_000 }, now);
    const later = now + 2_000;
    // The first entry has ended: met and dropped here.
    assert.equal(list.check(context({ sub: "x", iss: "i", iat: 1 }), { now: later }), undefined);
    assert.equal(list.size, 2);
    assert.equal(list.check(context({ sub: "y", sid: "x", iss: "i", iat: 1 }), { now: later })?.kind, "session");
    assert.equal(list.check(context({ sub: "x", iss: "j", iat: 1 }), { now: later })?.iss, "j");
    assert.equal(list.check(context({ sub: "y", iss: "i", iat: 1 }), { now: later }), undefined);
  });

  it("a user entry matches the local user id, never a sub", () => {
    const list = new DenyList();
    const now = Date.now();
    list.add({ kind: "user", iss: "", value: "1042", at: nowS(), until: now + 60_000 }, now);
    assert.equal(list.check(context({ sub: "1042", iss: "i", iat: 1 }, "7"), { now }), undefined);
    assert.ok(list.check(context({ sub: "x", iss: "i", iat: 1 }, "1042"), { now }));
  });
});

describe("a revoked local user id never refuses the user whose sub equals it", () => {
  /** Local ids crossed over subs: sub "42" is local user 17, sub "17" is local user 42. */
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate(sub: string) {
      return { id: sub === "42" ? "17" : sub === "17" ? "42" : `u-${sub}` };
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("disconnectUser(\"17\") refuses local user 17 (sub 42), not sub 17 (local user 42)", async () => {
    const local17 = await issuer.mint({ sub: "42" });
    const sub17 = await issuer.mint({ sub: "17" });
    await (app.appHandle["session"] as OidcSessionManager).disconnectUser("17", "locked");
    assert.deepEqual(await bothTransports(app, local17), REVOKED);
    assert.deepEqual(await bothTransports(app, sub17), ACCEPTED);
  });
});
