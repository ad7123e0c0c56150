import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import {
  guardEvent,
  guarded,
  isOidcAuthError,
  requireClaims,
  requirePermissions,
  requireRoles,
  requireScopes,
} from "../../src/index.js";
import type { OidcAuthError, OidcGuard, OidcUserContext } from "../../src/index.js";

function ctx(overrides: Partial<OidcUserContext> = {}): OidcUserContext {
  return {
    sub: "alice",
    userId: "alice",
    email: null,
    name: null,
    userRole: "user",
    roles: [],
    permissions: [],
    features: {},
    scopes: [],
    expiresAt: Date.now() + 60_000,
    claims: { sub: "alice" },
    ...overrides,
  };
}

/** Assert `fn` throws ERR_FORBIDDEN and return the error. */
function refusal(fn: () => unknown, reason?: RegExp): OidcAuthError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(isOidcAuthError(caught), `expected an OidcAuthError, got ${String(caught)}`);
  assert.equal(caught.code, "ERR_FORBIDDEN");
  assert.equal(caught.statusCode, 403);
  if (reason !== undefined) assert.match(caught.reason, reason);
  return caught;
}

const CHALLENGE = 'Bearer error="insufficient_scope", error_description="Access is forbidden"';

describe("requireRoles", () => {
  it("all: passes only when every listed role is present", () => {
    const Guard = requireRoles("admin", "ops");
    Guard.check(ctx({ roles: ["ops", "admin", "extra"] }));
    const error = refusal(() => Guard.check(ctx({ roles: ["admin"] })), /RequireRoles\(admin, ops\) refused user "alice"/);
    assert.match(error.reason, /requires roles all of \["admin","ops"\], user has \["admin"\] \(missing \["ops"\]\)/);
    refusal(() => Guard.check(ctx({ roles: [] })));
  });

  it("any: passes when at least one listed role is present", () => {
    const Guard = requireRoles.any("admin", "mod");
    Guard.check(ctx({ roles: ["mod"] }));
    Guard.check(ctx({ roles: ["admin", "mod"] }));
    refusal(() => Guard.check(ctx({ roles: ["user"] })), /RequireRoles\.any\(admin, mod\) refused user "alice": requires roles one of \["admin","mod"\], user has \["user"\]$/);
  });

  it("a refusal's challenge has no scope parameter", () => {
    const error = refusal(() => requireRoles("admin").check(ctx()));
    assert.equal(error.headers["www-authenticate"], CHALLENGE);
    assert.equal(error.scope, undefined);
  });

  it("has readable names and a distinct class per call", () => {
    assert.equal(requireRoles("admin").name, "RequireRoles(admin)");
    assert.equal(requireRoles.any("admin", "mod").name, "RequireRoles.any(admin, mod)");
    assert.notEqual(requireRoles("admin"), requireRoles("admin"));
  });

  it("matches exactly (case-sensitive, no prefixes) and ignores non-string entries", () => {
    const Guard = requireRoles("admin");
    refusal(() => Guard.check(ctx({ roles: ["Admin", "admins"] })));
    refusal(() => Guard.check(ctx({ roles: [1, null, { admin: true }] as unknown as string[] })));
  });
});

describe("requirePermissions", () => {
  it("all and any against context.permissions (roles are not consulted)", () => {
    const All = requirePermissions("posts:read", "posts:write");
    All.check(ctx({ permissions: ["posts:write", "posts:read"] }));
    refusal(() => All.check(ctx({ permissions: ["posts:read"], roles: ["posts:write"] })), /requires permissions all of .* \(missing \["posts:write"\]\)/);
    const Any = requirePermissions.any("posts:read", "posts:write");
    Any.check(ctx({ permissions: ["posts:write"] }));
    refusal(() => Any.check(ctx({ permissions: [] })), /RequirePermissions\.any\(posts:read, posts:write\)/);
    assert.equal(All.name, "RequirePermissions(posts:read, posts:write)");
  });
});

describe("requireScopes", () => {
  it("all and any against context.scopes", () => {
    const All = requireScopes("read:stats", "write:stats");
    All.check(ctx({ scopes: ["openid", "read:stats", "write:stats"] }));
    refusal(() => All.check(ctx({ scopes: ["read:stats"] })), /requires scopes all of/);
    const Any = requireScopes.any("read:stats", "write:stats");
    Any.check(ctx({ scopes: ["write:stats"] }));
    refusal(() => Any.check(ctx({ scopes: ["openid"] })));
  });

  it("a refusal carries scope=\"…\" (the required scopes, space-separated) in its challenge", () => {
    const error = refusal(() => requireScopes("read:stats", "write:stats").check(ctx({ scopes: ["read:stats"] })));
    assert.equal(error.scope, "read:stats write:stats");
    assert.equal(error.headers["www-authenticate"], `${CHALLENGE}, scope="read:stats write:stats"`);
    const any = refusal(() => requireScopes.any("a", "b").check(ctx()));
    assert.equal(any.headers["www-authenticate"], `${CHALLENGE}, scope="a b"`);
    // The realm the HTTP adapter adds keeps the scope.
    assert.equal(any.withRealm("api").headers["www-authenticate"], `Bearer realm="api", ${CHALLENGE.slice("Bearer ".length)}, scope="a b"`);
  });

  it("a missing context also carries no scope (nothing was checked yet)", () => {
    const error = refusal(() => requireScopes("a").check(undefined));
    assert.equal(error.headers["www-authenticate"], CHALLENGE);
  });
});

describe("requireClaims", () => {
  it("passes only when the predicate returns true; the predicate receives the context", () => {
    const seen: OidcUserContext[] = [];
    const Guard = requireClaims((context) => {
      seen.push(context);
      return context.claims.tenant === "acme";
    }, "tenant acme");
    const good = ctx({ claims: { sub: "alice", tenant: "acme" } });
    Guard.check(good);
    assert.equal(seen[0], good);
    refusal(() => Guard.check(ctx({ claims: { tenant: "other" } })), /RequireClaims\(tenant acme\) refused user "alice": the predicate returned false/);
  });

  it("a truthy non-true result or a Promise refuses (fail closed)", () => {
    refusal(() => requireClaims((() => 1) as unknown as () => boolean).check(ctx()), /returned 1/);
    refusal(() => requireClaims((async () => true) as unknown as () => boolean).check(ctx()), /returned a Promise/);
  });

  it("a predicate that throws counts as a refusal, with the reason saying it threw", () => {
    const boom = new Error("claims.org is undefined");
    const error = refusal(
      () =>
        requireClaims(() => {
          throw boom;
        }, "org check").check(ctx()),
      /RequireClaims\(org check\) refused user "alice": the predicate threw: claims.org is undefined/,
    );
    assert.equal(error.cause, boom);
    refusal(() =>
      requireClaims(() => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- the test is about a guard that throws a non-Error
        throw "a string";
      }).check(ctx()),
    /the predicate threw: "a string"/);
  });

  it("names: description, else the predicate's name, else 'predicate'", () => {
    function isStaff(context: OidcUserContext) {
      return context.claims.staff === true;
    }
    assert.equal(requireClaims(isStaff).name, "RequireClaims(isStaff)");
    assert.equal(requireClaims(isStaff, "staff only").name, "RequireClaims(staff only)");
    assert.equal(requireClaims([() => true][0]!).name, "RequireClaims(predicate)");
  });
});

describe("missing or malformed context", () => {
  const guards: OidcGuard[] = [
    requireRoles("admin"),
    requireRoles.any("admin"),
    requirePermissions("p"),
    requireScopes("s"),
    requireClaims(() => true, "always"),
  ];
  it("ERR_FORBIDDEN telling the developer to list the auth middleware first", () => {
    for (const Guard of guards) {
      for (const context of [undefined, null, "alice", 42]) {
        refusal(
          () => Guard.check(context as unknown as OidcUserContext),
          new RegExp(`^${Guard.name.replace(/[().]/g, "\\$&")} found no authenticated user: list OidcHttpMiddleware \\(controllers\\) or OidcSocketMiddleware \\(services\\) before it$`),
        );
      }
    }
  });

  it("a context without the list counts as an empty list", () => {
    const context = ctx();
    delete (context as Partial<OidcUserContext>).roles;
    (context as unknown as Record<string, unknown>).permissions = "p";
    refusal(() => requireRoles("admin").check(context), /user has \[\]/);
    refusal(() => requirePermissions("p").check(context), /user has \[\]/);
  });

  it("user values in the reason are quoted and shortened with show()", () => {
    const error = refusal(() => requireRoles("admin").check(ctx({ userId: 'eve" injected', roles: ["x".repeat(200)] })));
    assert.match(error.reason, /refused user "eve\\" injected"/);
    assert.match(error.reason, /user has \["x+\.\.\./);
    assert.ok(error.reason.length < 300);
  });
});

describe("argument validation (eager TypeError naming the factory)", () => {
  const bad: unknown[][] = [[], [""], ["ok", ""], [1], [null], [["admin"]], [undefined]];
  for (const [factory, fn] of [
    ["requireRoles", requireRoles],
    ["requireRoles.any", requireRoles.any],
    ["requirePermissions", requirePermissions],
    ["requirePermissions.any", requirePermissions.any],
    ["requireScopes", requireScopes],
    ["requireScopes.any", requireScopes.any],
  ] as const) {
    it(`${factory}: at least one non-empty string each`, () => {
      for (const args of bad) {
        assert.throws(
          () => (fn as (...values: unknown[]) => unknown)(...args),
          (error: unknown) => error instanceof TypeError && error.message.startsWith(`${factory}()`),
          `${factory}(${JSON.stringify(args)})`,
        );
      }
    });
  }

  it("requireScopes: one scope per argument (no whitespace)", () => {
    assert.throws(() => requireScopes("read write"), /requireScopes\(\): a scope cannot contain whitespace/);
    assert.throws(() => requireScopes.any("read\twrite"), /requireScopes\.any\(\)/);
    // roles and permissions may contain spaces
    requireRoles("team lead").check(ctx({ roles: ["team lead"] }));
  });

  it("requireClaims: predicate must be a function, description a non-empty string", () => {
    for (const predicate of [undefined, null, "claims.admin", {}, true]) {
      assert.throws(() => requireClaims(predicate as never), /^TypeError: requireClaims\(\): predicate must be a function/);
    }
    assert.throws(() => requireClaims(() => true, ""), /requireClaims\(\): description/);
    assert.throws(() => requireClaims(() => true, 5 as never), /requireClaims\(\): description/);
  });
});

describe("guard classes as IOServer middlewares", () => {
  const appHandle = () => {
    const logs: Array<{ level: number; text: string }> = [];
    return { logs, handle: { log: (level: number, text: string) => logs.push({ level, text }) } as unknown as AppHandle };
  };
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it("are BaseMiddleware subclasses IOServer can instantiate without arguments", () => {
    const Guard = requireRoles("admin");
    const instance = new Guard();
    assert.ok(instance instanceof BaseMiddleware);
    assert.equal(typeof instance.handle(appHandle().handle), "function");
  });

  it("handle() returns one function: (socket, next) is treated as Socket.IO", async () => {
    const { logs, handle } = appHandle();
    const hook = new (requireRoles.any("admin", "mod"))().handle(handle);
    const socket = (auth: unknown) => ({ id: "s1", nsp: { name: "/rooms" }, data: { auth } });

    const passed: unknown[][] = [];
    hook(socket(ctx({ roles: ["mod"] })) as never, (...args: unknown[]) => passed.push(args));
    await tick();
    assert.deepEqual(passed, [[]]);

    const refused: unknown[][] = [];
    hook(socket(ctx({ roles: ["user"] })) as never, (...args: unknown[]) => refused.push(args));
    await tick();
    assert.equal(refused.length, 1);
    const error = refused[0]![0] as Error & { data: unknown };
    assert.equal(error.message, "ERR_FORBIDDEN");
    assert.deepEqual(error.data, { code: "ERR_FORBIDDEN", message: "Access is forbidden" });
    assert.equal(logs.length, 1);
    assert.match(logs[0]!.text, /socket \/rooms s1: ERR_FORBIDDEN: RequireRoles\.any\(admin, mod\) refused user "alice"/);

    const missing: unknown[][] = [];
    hook({ id: "s2", nsp: { name: "/rooms" }, data: {} } as never, (...args: unknown[]) => missing.push(args));
    await tick();
    assert.equal((missing[0]![0] as Error).message, "ERR_FORBIDDEN");
    assert.match(logs[1]!.text, /found no authenticated user: list OidcSocketMiddleware before it/);
  });

  it("handle() returns one function: (request, reply, done) is treated as Fastify", async () => {
    const { logs, handle } = appHandle();
    const hook = new (requireScopes("read:stats"))().handle(handle);
    const fakeReply = () => {
      const sent: Record<string, unknown> = {};
      const reply = {
        code(status: number) {
          sent.status = status;
          return reply;
        },
        headers(headers: Record<string, string>) {
          sent.headers = headers;
          return reply;
        },
        send(body: unknown) {
          sent.body = body;
          return reply;
        },
      };
      return { reply, sent };
    };
    const request = (auth: unknown) => ({ method: "GET", routeOptions: { url: "/stats" }, auth });

    let done = 0;
    const ok = fakeReply();
    hook(request(ctx({ scopes: ["read:stats"] })) as never, ok.reply as never, (() => done++) as never);
    await tick();
    assert.equal(done, 1);
    assert.deepEqual(ok.sent, {});

    const no = fakeReply();
    hook(request(ctx()) as never, no.reply as never, (() => done++) as never);
    await tick();
    assert.equal(done, 1);
    assert.equal(no.sent.status, 403);
    assert.deepEqual(no.sent.headers, { "www-authenticate": `${CHALLENGE}, scope="read:stats"` });
    assert.deepEqual(no.sent.body, { statusCode: 403, error: "Forbidden", code: "ERR_FORBIDDEN", message: "Access is forbidden" });
    assert.match(logs[0]!.text, /HTTP GET \/stats: ERR_FORBIDDEN: RequireScopes\(read:stats\) refused/);

    const missing = fakeReply();
    hook(request(undefined) as never, missing.reply as never, (() => done++) as never);
    await tick();
    assert.equal(missing.sent.status, 403);
    assert.match(logs[1]!.text, /list OidcHttpMiddleware before it/);
  });
});

describe("guardEvent", () => {
  type Ack = (value: unknown) => void;
  const socket = (auth: unknown) => ({ id: "s1", nsp: { name: "/rooms" }, data: { auth } });

  it("runs the handler with `this`, socket, data and callback when every guard passes; returns its result", async () => {
    const service = { appHandle: {}, name: "svc" };
    const calls: unknown[] = [];
    const method = guardEvent(requirePermissions("rooms:delete"), async function (this: typeof service, s: unknown, data: unknown, cb?: Ack) {
      calls.push([this, s, data]);
      cb?.({ status: "ok" });
      return "done";
    });
    const acks: unknown[] = [];
    const s = socket(ctx({ permissions: ["rooms:delete"] }));
    assert.equal(await method.call(service, s, { room: "r" }, (v: unknown) => acks.push(v)), "done");
    assert.deepEqual(calls, [[service, s, { room: "r" }]]);
    assert.deepEqual(acks, [{ status: "ok" }]);
  });

  it("on refusal never runs the handler, answers the ack with the code and logs through this.appHandle.log", async () => {
    const logs: string[] = [];
    const service = { appHandle: { log: (_level: number, text: string) => logs.push(text) } };
    let ran = 0;
    const method = guardEvent(requirePermissions("rooms:delete"), function deleteRoom() {
      ran++;
    });
    const acks: unknown[] = [];
    const pending = method.call(service, socket(ctx({ permissions: ["rooms:read"] })), {}, (v: unknown) => acks.push(v));
    assert.ok(pending instanceof Promise);
    assert.equal(await pending, undefined);
    assert.equal(ran, 0);
    assert.deepEqual(acks, [{ status: "error", code: "ERR_FORBIDDEN" }]);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /socket \/rooms s1 event "deleteRoom": ERR_FORBIDDEN: RequirePermissions\(rooms:delete\) refused user "alice"/);

    // no ack, no appHandle, no auth: still refused quietly
    await method.call(undefined, socket(undefined), {});
    await method.call({}, { data: undefined }, {}, "not a function");
    assert.equal(ran, 0);
  });

  it("several guards: all must pass, in order", async () => {
    let ran = 0;
    const method = guardEvent([requireRoles("mod"), requireScopes("chat")], () => {
      ran++;
    });
    const acks: unknown[] = [];
    await method(socket(ctx({ roles: ["mod"] })), {}, (v: unknown) => acks.push(v));
    await method(socket(ctx({ scopes: ["chat"] })), {}, (v: unknown) => acks.push(v));
    assert.equal(ran, 0);
    await method(socket(ctx({ roles: ["mod"], scopes: ["chat"] })), {}, (v: unknown) => acks.push(v));
    assert.equal(ran, 1);
    assert.equal(acks.length, 2);
  });

  it("a guard whose check throws something unexpected still refuses (ERR_AUTH_MISCONFIGURED)", async () => {
    const Broken = Object.assign(class {}, {
      check() {
        throw new Error("bug");
      },
    }) as unknown as OidcGuard;
    let ran = 0;
    const acks: unknown[] = [];
    await guardEvent(Broken, () => ran++)(socket(ctx()), {}, (v: unknown) => acks.push(v));
    assert.equal(ran, 0);
    assert.deepEqual(acks, [{ status: "error", code: "ERR_AUTH_MISCONFIGURED" }]);
  });

  it("validates its arguments eagerly", () => {
    const handler = () => undefined;
    assert.throws(() => guardEvent([], handler), /^TypeError: guardEvent\(\): needs at least one guard/);
    assert.throws(() => guardEvent(undefined as never, handler), /^TypeError: guardEvent\(\): each guard must be/);
    assert.throws(() => guardEvent("admin" as never, handler), /guardEvent\(\): each guard must be/);
    assert.throws(() => guardEvent(BaseMiddleware as never, handler), /guardEvent\(\): each guard must be/);
    assert.throws(() => guardEvent(requireRoles("a"), "handler" as never), /^TypeError: guardEvent\(\): handler must be a function/);
    assert.throws(() => guarded(), /^TypeError: @guarded\(\): needs at least one guard/);
  });
});

describe("@guarded (standard method decorator)", () => {
  const socket = (auth: unknown) => ({ id: "s1", nsp: { name: "/rooms" }, data: { auth } });
  it("replaces the method on the prototype with a guarded one (now async)", async () => {
    class Service {
      appHandle = {};
      count = 0;
      @guarded(requireRoles("mod"), requirePermissions("rooms:kick"))
      kick(_socket: unknown, _data: unknown, callback?: (value: unknown) => void) {
        this.count++;
        callback?.({ status: "ok" });
      }
    }
    assert.ok(Object.getOwnPropertyNames(Service.prototype).includes("kick"));
    const service = new Service();
    const acks: unknown[] = [];
    // eslint-disable-next-line @typescript-eslint/await-thenable -- guarded() keeps the method's declared type, but the decorated method is the async wrapper: awaiting it is required
    await service.kick(socket(ctx({ roles: ["mod"] })), {}, (v) => acks.push(v));
    // eslint-disable-next-line @typescript-eslint/await-thenable -- guarded() keeps the method's declared type, but the decorated method is the async wrapper: awaiting it is required
    await service.kick(socket(ctx({ roles: ["mod"], permissions: ["rooms:kick"] })), {}, (v) => acks.push(v));
    assert.equal(service.count, 1);
    assert.deepEqual(acks, [{ status: "error", code: "ERR_FORBIDDEN" }, { status: "ok" }]);
  });
});
