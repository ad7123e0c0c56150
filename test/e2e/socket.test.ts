import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppHandle } from "ioserver";
import { type TestIssuer } from "../../src/testing/index.js";
import { call, outcome, startApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
useTestIssuer((created) => (issuer = created));

async function expectRefused(app: TestApp, namespace: string, options: Parameters<TestApp["connect"]>[1], code: string) {
  const result = await outcome(app.connect(namespace, options));
  assert.equal(result.connected, false, `expected ${code}, but the socket connected`);
  if (!result.connected) {
    assert.equal(result.message, code);
    assert.deepEqual(Object.keys(result.data as object).sort(), ["code", "message"]);
    assert.equal((result.data as { code: string }).code, code);
  }
}

describe("OidcSocketMiddleware: accepted handshakes", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config });
  });
  after(async () => {
    await app.close();
  });

  it("injects sub, userId, userRole, roles, permissions and features, socket.data.auth and socket.auth, as a service handler sees them", async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const token = await issuer.mint({
      exp,
      sub: "alice",
      email: "alice@example.test",
      name: "Alice",
      roles: ["editor", "viewer"],
      permissions: ["posts:write"],
      features: { beta: true, quota: 3 },
    });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(result.connected);
    const view = await call<Record<string, unknown>>(result.socket, "whoami");
    const expected = {
      sub: "alice",
      userId: "alice",
      email: "alice@example.test",
      name: "Alice",
      userRole: "editor",
      roles: ["editor", "viewer"],
      permissions: ["posts:write"],
      features: { beta: true, quota: 3 },
      scopes: [],
      expiresAt: exp * 1000,
    };
    const strip = (value: unknown) => {
      const { claims, ...rest } = value as Record<string, unknown>;
      assert.equal((claims as Record<string, unknown>).sub, "alice");
      return rest;
    };
    assert.equal(view.sub, "alice");
    assert.equal(view.userId, "alice");
    assert.equal(view.userRole, "editor");
    assert.deepEqual(view.roles, ["editor", "viewer"]);
    assert.deepEqual(view.permissions, ["posts:write"]);
    assert.deepEqual(view.features, { beta: true, quota: 3 });
    assert.deepEqual(strip(view.auth), expected);
    assert.deepEqual(strip(view.dataAuth), expected);
    result.socket.disconnect();
  });

  it("the decorations read the socket's own context (shared accessors, nothing copied per socket); an app that assigns one gets a plain property on that socket only", async () => {
    const a = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "deco-a", roles: ["a"] }) } }));
    const b = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "deco-b", roles: ["b"] }) } }));
    assert.ok(a.connected && b.connected);
    try {
      assert.deepEqual(await call(a.socket, "rename", { userId: "local-7" }), "local-7");
      const viewA = await call<Record<string, unknown>>(a.socket, "whoami");
      const viewB = await call<Record<string, unknown>>(b.socket, "whoami");
      assert.deepEqual({ userId: viewA.userId, sub: viewA.sub, roles: viewA.roles, authUserId: (viewA.auth as { userId: string }).userId }, { userId: "local-7", sub: "deco-a", roles: ["a"], authUserId: "deco-a" });
      assert.deepEqual({ userId: viewB.userId, sub: viewB.sub, roles: viewB.roles }, { userId: "deco-b", sub: "deco-b", roles: ["b"] }, "the other socket is untouched");
    } finally {
      a.socket.disconnect();
      b.socket.disconnect();
    }
  });

  it("two users with the same roles share one frozen roles list on their sockets (the claims' own)", async () => {
    const roles = ["shared-editor", "shared-viewer"];
    const a = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "list-a", roles }) } }));
    const b = await outcome(app.connect("chat", { auth: { token: await issuer.mint({ sub: "list-b", roles }) } }));
    assert.ok(a.connected && b.connected);
    try {
      await call(a.socket, "whoami");
      await call(b.socket, "whoami");
      const [viewA, viewB] = app.seen.slice(-2) as Array<{ sub: string; roles: string[]; dataAuth: { roles: string[]; claims: { roles: string[] } } }>;
      assert.deepEqual([viewA!.sub, viewB!.sub], ["list-a", "list-b"]);
      assert.deepEqual(viewA!.roles, roles);
      assert.equal(viewB!.roles, viewA!.roles, "one array for both sockets");
      assert.equal(viewA!.dataAuth.claims.roles, viewA!.roles);
      assert.equal(viewB!.dataAuth.claims.roles, viewA!.roles);
      assert.ok(Object.isFrozen(viewA!.roles));
    } finally {
      a.socket.disconnect();
      b.socket.disconnect();
    }
  });

  it("defaults: no roles → userRole 'user', roles/permissions [] and features {}", async () => {
    const token = await issuer.mint({ sub: "bob", roles: "admin", permissions: [1, "ok", null], features: ["x"] });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(result.connected);
    const view = await call<Record<string, unknown>>(result.socket, "whoami");
    assert.equal(view.userRole, "user");
    assert.deepEqual(view.roles, []);
    assert.deepEqual(view.permissions, ["ok"]);
    assert.deepEqual(view.features, {});
    assert.deepEqual((view.auth as Record<string, unknown>).email, null);
    result.socket.disconnect();
  });

  it("accepts the Authorization: Bearer header when auth.token is absent (scheme case-insensitive)", async () => {
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      const token = await issuer.mint({ sub: `hdr-${scheme}` });
      const result = await outcome(app.connect("chat", { extraHeaders: { Authorization: `${scheme} ${token}` } }));
      assert.ok(result.connected, scheme);
      const view = await call<Record<string, unknown>>(result.socket, "whoami");
      assert.equal(view.sub, `hdr-${scheme}`);
      result.socket.disconnect();
    }
  });

  it("prefers auth.token over the header", async () => {
    const fromAuth = await issuer.mint({ sub: "from-auth" });
    const fromHeader = await issuer.mint({ sub: "from-header" });
    const result = await outcome(
      app.connect("chat", { auth: { token: fromAuth }, extraHeaders: { Authorization: `Bearer ${fromHeader}` } }),
    );
    assert.ok(result.connected);
    const view = await call<Record<string, unknown>>(result.socket, "whoami");
    assert.equal(view.sub, "from-auth");
    result.socket.disconnect();
  });

  it("a non-string or empty auth.token counts as no token: the header is used instead", async () => {
    const token = await issuer.mint({ sub: "fallback" });
    for (const bad of [123, { token: "x" }, "", null]) {
      const result = await outcome(app.connect("chat", { auth: { token: bad as never }, extraHeaders: { Authorization: `Bearer ${token}` } }));
      assert.ok(result.connected, JSON.stringify(bad));
      result.socket.disconnect();
    }
  });

  it("accepts ES256 tokens as well as RS256", async () => {
    const token = await issuer.mint({ sub: "ec-user" }, { alg: "ES256" });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(result.connected);
    result.socket.disconnect();
  });

  it("admin namespace: an admin role passes the chained OidcSocketAdminMiddleware", async () => {
    const token = await issuer.mint({ sub: "root", roles: ["admin"] });
    const result = await outcome(app.connect("admin", { auth: { token } }));
    assert.ok(result.connected);
    assert.equal(await call(result.socket, "ping"), "pong");
    result.socket.disconnect();
  });
});

describe("OidcSocketMiddleware: refused handshakes (client sees the code only)", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config });
  });
  after(async () => {
    await app.close();
  });

  it("ERR_AUTH_TOKEN_REQUIRED without any token", async () => {
    await expectRefused(app, "chat", {}, "ERR_AUTH_TOKEN_REQUIRED");
  });

  it("ERR_AUTH_TOKEN_REQUIRED for a non-string auth.token and no header", async () => {
    await expectRefused(app, "chat", { auth: { token: 42 as never } }, "ERR_AUTH_TOKEN_REQUIRED");
    await expectRefused(app, "chat", { auth: { token: { nested: "x" } as never } }, "ERR_AUTH_TOKEN_REQUIRED");
  });

  it("ERR_AUTH_TOKEN_REQUIRED for a header without the Bearer scheme", async () => {
    const token = await issuer.mint();
    await expectRefused(app, "chat", { extraHeaders: { Authorization: token } }, "ERR_AUTH_TOKEN_REQUIRED");
    await expectRefused(app, "chat", { extraHeaders: { Authorization: `Basic ${token}` } }, "ERR_AUTH_TOKEN_REQUIRED");
    await expectRefused(app, "chat", { extraHeaders: { Authorization: "Bearer " } }, "ERR_AUTH_TOKEN_REQUIRED");
  });

  it("ERR_AUTH_TOKEN_INVALID for an expired token, and the log says by how much but not the token", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.mint({ iat: now - 600, exp: now - 42 });
    await expectRefused(app, "chat", { auth: { token } }, "ERR_AUTH_TOKEN_INVALID");
    const line = app.logs.find((l) => l.text.includes("expired"));
    assert.ok(line, "the log explains the expiry");
    assert.match(line.text, /expired 4[2-4] s ago/);
    assert.equal(line.level, 4);
    assert.ok(app.logs.every((l) => !l.text.includes(token) && !l.text.includes(token.split(".")[2]!)), "the token never reaches the log");
  });

  it("ERR_AUTH_TOKEN_INVALID for the wrong audience; the client message does not say why", async () => {
    const token = await issuer.mint({ aud: "someone-else" });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(!result.connected);
    assert.equal(result.message, "ERR_AUTH_TOKEN_INVALID");
    assert.doesNotMatch(JSON.stringify(result.data), /aud|someone-else|expected/);
    assert.ok(app.logs.some((l) => l.text.includes('aud was "someone-else"')));
  });

  it("every malformed or forged token is ERR_AUTH_TOKEN_INVALID over a real handshake", async () => {
    const good = await issuer.mint();
    const [h, p] = good.split(".");
    const forged: Record<string, string> = {
      "a.b.c": "a.b.c",
      "random bytes": Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256)).toString("latin1"),
      "20 KiB string": "x".repeat(20 * 1024),
      "unicode garbage": "Ω≈ç√.∫˜µ.≤≥÷🙂",
      "alg none": `${Buffer.from('{"alg":"none"}').toString("base64url")}.${p}.`,
      "signature stripped": `${h}.${p}.AAAA`,
      "missing exp": await issuer.mint({ exp: undefined }),
      "missing sub": await issuer.mint({ sub: undefined }),
      "nbf in the future": await issuer.mint({ nbf: Math.floor(Date.now() / 1000) + 600 }),
      "unknown kid": await issuer.mint({}, { kid: "no-such-kid" }),
    };
    for (const [name, token] of Object.entries(forged)) {
      const result = await outcome(app.connect("chat", { auth: { token } }));
      assert.equal(result.connected, false, name);
      if (!result.connected) assert.equal(result.message, "ERR_AUTH_TOKEN_INVALID", name);
    }
  });

  it("ERR_FORBIDDEN on the admin namespace for a user without the admin role", async () => {
    const token = await issuer.mint({ sub: "pleb", roles: ["user"] });
    await expectRefused(app, "admin", { auth: { token } }, "ERR_FORBIDDEN");
  });

  it("ERR_FORBIDDEN on the admin namespace when the userRole default would be the only 'role'", async () => {
    const token = await issuer.mint({ sub: "norole" });
    await expectRefused(app, "admin", { auth: { token } }, "ERR_FORBIDDEN");
  });
});

describe("OidcSocketMiddleware: users manager and session tracker", () => {
  const calls: string[] = [];
  let disabled = new Set<string>();
  let throwOnFind = false;
  let throwOnRegister = false;

  class Users {
    constructor(_appHandle: AppHandle) {}
    async findOrCreate(sub: string, profile: { email: string | null; name: string | null }) {
      calls.push(`findOrCreate:${sub}:${profile.email}:${profile.name}`);
      if (throwOnFind) throw new Error("database is down");
      return { id: sub === "numeric" ? 1234 : `local-${sub}`, role: "member", isDisabled: disabled.has(sub) };
    }
  }
  class Session {
    constructor(_appHandle: AppHandle) {}
    registerSocket(userId: string, socketId: string, sub: string) {
      calls.push(`register:${userId}:${typeof socketId}:${sub}`);
      if (throwOnRegister) throw new Error("tracker full");
    }
    unregisterSocket(socketId: string) {
      calls.push(`unregister:${typeof socketId}`);
    }
  }

  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { users: Users, session: Session } });
  });
  after(async () => {
    await app.close();
  });

  it("runs findOrCreate, then registerSocket, injects the local id and role, and unregisters on disconnect", async () => {
    calls.length = 0;
    const token = await issuer.mint({ sub: "carol", email: "carol@example.test", name: "Carol" });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(result.connected);
    const view = await call<Record<string, unknown>>(result.socket, "whoami");
    assert.equal(view.userId, "local-carol");
    assert.equal(view.sub, "carol");
    assert.equal(view.userRole, "member");
    assert.deepEqual(view.roles, ["member"]);
    assert.deepEqual(calls, ["findOrCreate:carol:carol@example.test:Carol", "register:local-carol:string:carol"]);
    result.socket.disconnect();
    await waitFor(() => calls.includes("unregister:string"));
  });

  it("token roles win over the users manager's role; numeric ids become strings", async () => {
    const token = await issuer.mint({ sub: "numeric", roles: ["owner"] });
    const result = await outcome(app.connect("chat", { auth: { token } }));
    assert.ok(result.connected);
    const view = await call<Record<string, unknown>>(result.socket, "whoami");
    assert.equal(view.userId, "1234");
    assert.deepEqual(view.roles, ["owner"]);
    calls.length = 0;
    result.socket.disconnect();
    await waitFor(() => calls.includes("unregister:string"));
  });

  it("ERR_USER_DISABLED for a disabled user, and the session is never registered", async () => {
    calls.length = 0;
    disabled = new Set(["dave"]);
    const token = await issuer.mint({ sub: "dave" });
    await expectRefused(app, "chat", { auth: { token } }, "ERR_USER_DISABLED");
    assert.deepEqual(calls, ["findOrCreate:dave:null:null"]);
    disabled = new Set();
  });

  it("ERR_USER_PROVISION_FAILED when findOrCreate throws; the log says why", async () => {
    throwOnFind = true;
    try {
      const token = await issuer.mint({ sub: "erin" });
      await expectRefused(app, "chat", { auth: { token } }, "ERR_USER_PROVISION_FAILED");
      assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("database is down")));
    } finally {
      throwOnFind = false;
    }
  });

  it("ERR_USER_PROVISION_FAILED when registerSocket throws (fail closed: an untracked socket cannot be revoked)", async () => {
    throwOnRegister = true;
    try {
      const token = await issuer.mint({ sub: "frank" });
      await expectRefused(app, "chat", { auth: { token } }, "ERR_USER_PROVISION_FAILED");
    } finally {
      throwOnRegister = false;
    }
  });

  it("a session registered before a later guard refuses is released at once", async () => {
    calls.length = 0;
    const token = await issuer.mint({ sub: "gina", roles: ["user"] });
    await expectRefused(app, "admin", { auth: { token } }, "ERR_FORBIDDEN");
    await waitFor(() => calls.includes("unregister:string"));
    assert.deepEqual(calls, ["findOrCreate:gina:null:null", "register:local-gina:string:gina", "unregister:string"]);
  });
});


describe("OidcSocketMiddleware when the provider's keys cannot be obtained", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...issuer.config, jwksUri: "http://127.0.0.1:9/jwks" } });
  });
  after(async () => {
    await app.close();
  });

  it("connect_error ERR_AUTH_UNAVAILABLE", async () => {
    await expectRefused(app, "chat", { auth: { token: await issuer.mint() } }, "ERR_AUTH_UNAVAILABLE");
  });
});

describe("a hanging users manager or session tracker is bounded by provisionTimeout", () => {
  let hangFind = false;
  let hangRegister = false;
  class Users {
    constructor(_appHandle: AppHandle) {}
    findOrCreate(sub: string) {
      return hangFind ? new Promise(() => undefined) : { id: sub };
    }
  }
  class Session {
    constructor(_appHandle: AppHandle) {}
    registerSocket() {
      return hangRegister ? new Promise(() => undefined) : undefined;
    }
  }
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: { ...issuer.config, provisionTimeout: 300 }, managers: { users: Users, session: Session } });
  });
  after(async () => {
    await app.close();
  });

  it("findOrCreate never answering: ERR_USER_PROVISION_FAILED after the timeout, on both transports", async () => {
    hangFind = true;
    try {
      const token = await issuer.mint({ sub: "slow" });
      const started = Date.now();
      await expectRefused(app, "chat", { auth: { token } }, "ERR_USER_PROVISION_FAILED");
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 5_000, `took ${elapsed} ms`);
      const res = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
      assert.equal(res.status, 500);
      assert.equal(((await res.json()) as { code: string }).code, "ERR_USER_PROVISION_FAILED");
      assert.ok(app.logs.some((l) => l.text.includes("did not answer within 300 ms")));
    } finally {
      hangFind = false;
    }
  });

  it("registerSocket never answering: the handshake is refused after the timeout", async () => {
    hangRegister = true;
    try {
      await expectRefused(app, "chat", { auth: { token: await issuer.mint({ sub: "slow2" }) } }, "ERR_USER_PROVISION_FAILED");
    } finally {
      hangRegister = false;
    }
  });
});
