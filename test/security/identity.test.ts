/**
 * A user is the pair (issuer, subject): two trusted issuers that both have a
 * subject "1001" have two different users. Each case goes through a real
 * IOServer (HTTP and Socket.IO) with two real test issuers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import { OidcSessionManager, type OidcConfigInput } from "../../src/index.js";
import type { TestIssuer } from "../../src/testing/index.js";
import { startTwoIssuers, type TwoIssuers } from "../helpers/issuers.js";
import { call, connectedTo, httpGet, next, startApp, type TestApp } from "../helpers/app.js";
import { sleep } from "../helpers/wait.js";

let a: TestIssuer, b: TestIssuer, twoIssuers: OidcConfigInput, issuers: TwoIssuers;
before(async () => void ({ a, b, config: twoIssuers } = issuers = await startTwoIssuers()));
after(() => issuers.close());


type Whoami = { sub: string; userId: string; roles: string[] };

describe("without a users manager", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: twoIssuers, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("two issuers' equal sub never share a userId (HTTP and Socket.IO): userId is <iss>#<sub>", async () => {
    const [fromA, fromB] = await Promise.all([a.mint({ sub: "1001" }), b.mint({ sub: "1001" })]);
    const [httpA, httpB] = await Promise.all([httpGet(app, fromA), httpGet(app, fromB)]);
    assert.equal(httpA.status, 200);
    assert.equal(httpB.status, 200);
    assert.equal(httpA.body["userId"], `${a.issuer}#1001`);
    assert.equal(httpB.body["userId"], `${b.issuer}#1001`);
    assert.equal(httpA.body["sub"], "1001");

    const socketA = await connectedTo(app, "chat", fromA);
    const socketB = await connectedTo(app, "chat", fromB);
    assert.equal((await call<Whoami>(socketA, "whoami")).userId, `${a.issuer}#1001`);
    assert.equal((await call<Whoami>(socketB, "whoami")).userId, `${b.issuer}#1001`);

    const session = app.appHandle["session"] as OidcSessionManager;
    assert.deepEqual((await session.listByUser(`${a.issuer}#1001`)).map((record) => record.socketId), [socketA.id]);
    assert.deepEqual(await session.listByUser("1001"), [], "with two issuers the bare sub is nobody's user id");
    assert.deepEqual((await session.listBySubject("1001", { iss: b.issuer })).map((record) => record.socketId), [socketB.id]);

    const gone = next(socketA, "oidc:revoked");
    assert.equal(await session.disconnectUser(`${a.issuer}#1001`, "bye"), 1);
    await gone;
    await call(socketB, "whoami");
    assert.ok(socketB.connected, "the other issuer's 1001 is someone else");
    socketB.disconnect();
  });

  it("an in-band refresh with another issuer's token for the same sub is ERR_AUTH_SUBJECT_MISMATCH, and changes nothing", async () => {
    const socket = await connectedTo(app, "chat", await a.mint({ sub: "3003", roles: ["member"] }));
    const before = await call<Whoami>(socket, "whoami");
    const reply = await call<{ ok: boolean; code?: string }>(socket, "oidc:refresh", { token: await b.mint({ sub: "3003", roles: ["admin"] }) });
    assert.deepEqual(reply, { ok: false, code: "ERR_AUTH_SUBJECT_MISMATCH" });
    const afterRefusal = await call<Whoami>(socket, "whoami");
    assert.deepEqual(afterRefusal, before);
    assert.deepEqual(afterRefusal.roles, ["member"]);
    // The same issuer and sub refreshes.
    const same = await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await a.mint({ sub: "3003", roles: ["member", "editor"] }) });
    assert.equal(same.ok, true);
    assert.deepEqual((await call<Whoami>(socket, "whoami")).roles, ["member", "editor"]);
    socket.disconnect();
  });
});

describe("the derived <iss>#<sub> cannot be ambiguous", () => {
  it("with several issuers, an issuer containing # is refused by the configuration (naming the option)", async () => {
    const { verifyOidcToken } = await import("../../src/index.js");
    const config: OidcConfigInput = {
      issuers: [
        { issuer: `${a.issuer}#x`, audience: "test-app", jwksUri: a.config.jwksUri },
        { issuer: b.issuer, audience: "test-app", jwksUri: b.config.jwksUri },
      ],
    };
    await assert.rejects(verifyOidcToken(await a.mint({ sub: "y" }), config), (error: { code?: string; reason?: string }) =>
      error.code === "ERR_AUTH_MISCONFIGURED" && /"issuers\[0\]\.issuer" must not contain "#"/.test(String(error.reason)),
    );
  });
});

describe("with one issuer and no users manager, userId stays the sub", () => {
  it("HTTP and Socket.IO", async () => {
    const app = await startApp({ config: a.config });
    try {
      const token = await a.mint({ sub: "1001" });
      assert.equal((await httpGet(app, token)).body["userId"], "1001");
      const socket = await connectedTo(app, "chat", token);
      assert.equal((await call<Whoami>(socket, "whoami")).userId, "1001");
      socket.disconnect();
    } finally {
      await app.close();
    }
  });
});

describe("with a users manager", () => {
  const calls: Array<{ sub: string; iss: string }> = [];
  /** Records keyed by (iss, sub); issuer A's 1001 is an admin, issuer B's 1001 is not. Slow, to overlap logins. */
  class Users {
    constructor(_appHandle: AppHandle) {}
    async findOrCreate(sub: string, profile: { email: string | null; name: string | null; iss: string }) {
      calls.push({ sub, iss: profile.iss });
      await sleep(100);
      const local = profile.iss === a.issuer ? "a" : "b";
      return { id: `${local}-${sub}`, role: local === "a" ? "admin" : "guest" };
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...twoIssuers, provisionCacheTtl: 60_000 }, managers: { users: Users, session: OidcSessionManager } });
  });
  after(async () => {
    await app.close();
  });

  it("findOrCreate(sub, { email, name, iss }): concurrent logins of one sub at two issuers are two calls and two users", async () => {
    calls.length = 0;
    const [fromA, fromB] = await Promise.all([a.mint({ sub: "1001" }), b.mint({ sub: "1001" })]);
    const [httpA, httpB] = await Promise.all([httpGet(app, fromA), httpGet(app, fromB)]);
    assert.deepEqual(
      calls.map((each) => each.iss).sort(),
      [a.issuer, b.issuer].sort(),
      "one call per subject, never shared across issuers",
    );
    assert.ok(calls.every((each) => each.sub === "1001"));
    assert.deepEqual([httpA.body["userId"], httpA.body["roles"]], ["a-1001", ["admin"]]);
    assert.deepEqual([httpB.body["userId"], httpB.body["roles"]], ["b-1001", ["guest"]]);
  });

  it("the provisioning cache (provisionCacheTtl) is per subject: issuer B's 1001 never gets issuer A's cached record", async () => {
    calls.length = 0;
    assert.equal((await httpGet(app, await a.mint({ sub: "2002" }))).body["userId"], "a-2002");
    assert.equal((await httpGet(app, await a.mint({ sub: "2002" }))).body["userId"], "a-2002");
    assert.equal(calls.length, 1, "A's second login is served from the cache");
    const socket = await connectedTo(app, "chat", await b.mint({ sub: "2002" }));
    const seen = await call<Whoami>(socket, "whoami");
    assert.deepEqual([seen.userId, seen.roles], ["b-2002", ["guest"]]);
    assert.equal(calls.length, 2);
    socket.disconnect();
  });

  it("disconnectUser(localId) never reaches a socket whose sub equals that id; listByUser(sub) lists nothing", async () => {
    const session = app.appHandle["session"] as OidcSessionManager;
    // The victim's sub is "b-7" at issuer A; its local id is "a-b-7". Someone's local id is "b-7".
    const victim = await connectedTo(app, "chat", await a.mint({ sub: "b-7" }));
    const owner = await connectedTo(app, "chat", await b.mint({ sub: "7" }));
    const ownerGone = next(owner, "oidc:revoked");
    assert.equal(await session.disconnectUser("b-7", "policy"), 1);
    await ownerGone;
    await call(victim, "whoami");
    assert.ok(victim.connected, "a subject equal to the revoked local id is someone else");
    assert.deepEqual(await session.listByUser("b-7"), []);
    assert.deepEqual((await session.listByUser("a-b-7")).map((record) => record.socketId), [victim.id]);
    victim.disconnect();
  });
});
