/**
 * `request.sub`, `request.userId`, … on real IOServer routes: read by the
 * handler after `OidcHttpMiddleware`, absent on an unguarded route of the
 * same app, assignable by the app, and right when something gave the request
 * one of the names before the package (an earlier hook, or Fastify's
 * `decorateRequest`).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BaseController, BaseMiddleware } from "ioserver";
import type { FastifyReply, FastifyRequest } from "fastify";
import { OidcConfigManager, OidcHttpMiddleware } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { createServerBase, routesFolder, type ServerBase } from "../helpers/app.js";

const NAMES = ["sub", "userId", "userRole", "roles", "permissions", "features", "scopes", "auth"] as const;

class MeController extends BaseController {
  async me(request: FastifyRequest, reply: FastifyReply) {
    const own = NAMES.filter((name) => Object.prototype.hasOwnProperty.call(request, name));
    return reply.send({
      sub: request.sub ?? null,
      userId: request.userId ?? null,
      userRole: request.userRole ?? null,
      roles: request.roles ?? null,
      permissions: request.permissions ?? null,
      features: request.features ?? null,
      scopes: request.scopes ?? null,
      authSub: request.auth?.sub ?? null,
      authIsTheContext: request.auth == null ? null : request.auth.userId === request.userId && request.auth.roles === request.roles,
      own,
    });
  }

  /** The app sets a name itself, then reads it back. */
  async assign(request: FastifyRequest, reply: FastifyReply) {
    request.userId = `mine:${request.userId}`;
    return reply.send({ userId: request.userId, sub: request.sub, own: Object.prototype.hasOwnProperty.call(request, "userId") });
  }
}

/** A hook before the package's that sets two of the names. */
class PresetMiddleware extends BaseMiddleware {
  handle() {
    return (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      (request as { userId?: string }).userId = "set-before";
      (request as { roles?: string[] }).roles = ["set-before"];
      done();
    };
  }
}

const routes = [
  { method: "GET", url: "/me", handler: "me" },
  { method: "GET", url: "/assign", handler: "assign" },
];

async function get(app: ServerBase, path: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${app.url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

let issuer: TestIssuer;

before(async () => {
  issuer = await createTestIssuer();
});

after(async () => {
  await issuer?.close();
});

describe("request decorations", () => {
  let app: ServerBase;

  before(async () => {
    app = await createServerBase(routesFolder("ioserver-oidc-request-decorations-", { secure: routes, open: routes, preset: routes }));
    app.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(issuer.config) });
    app.server.addController({ name: "secure", controller: MeController, middlewares: [OidcHttpMiddleware] });
    app.server.addController({ name: "open", controller: MeController });
    app.server.addController({ name: "preset", controller: MeController, middlewares: [PresetMiddleware, OidcHttpMiddleware] });
    await app.server.start();
  });

  after(async () => {
    await app?.close();
  });

  it("a guarded route's handler reads the authenticated values; they are not copied onto the request", async () => {
    const token = await issuer.mint({ sub: "alice", roles: ["editor", "viewer"], permissions: ["posts:write"], features: { beta: true }, scope: "openid posts" });
    for (let i = 0; i < 2; i++) {
      const { status, body } = await get(app, "/secure/me", token); // the second time from the token cache
      assert.equal(status, 200);
      assert.deepEqual(body, {
        sub: "alice",
        userId: "alice",
        userRole: "editor",
        roles: ["editor", "viewer"],
        permissions: ["posts:write"],
        features: { beta: true },
        scopes: ["openid", "posts"],
        authSub: "alice",
        authIsTheContext: true,
        own: [],
      });
    }
  });

  it("each request reads its own user's values", async () => {
    const [bob, carol] = await Promise.all([issuer.mint({ sub: "bob", roles: ["a"] }), issuer.mint({ sub: "carol" })]);
    const answers = await Promise.all([get(app, "/secure/me", bob), get(app, "/secure/me", carol), get(app, "/secure/me", bob)]);
    assert.deepEqual(
      answers.map(({ body }) => [body.sub, body.userRole]),
      [
        ["bob", "a"],
        ["carol", "user"],
        ["bob", "a"],
      ],
    );
  });

  it("a route without the middleware reads nothing, also after guarded requests", async () => {
    const token = await issuer.mint({ sub: "dave", roles: ["admin"] });
    assert.equal((await get(app, "/secure/me", token)).status, 200);
    const { status, body } = await get(app, "/open/me", token);
    assert.equal(status, 200);
    assert.deepEqual(body, { sub: null, userId: null, userRole: null, roles: null, permissions: null, features: null, scopes: null, authSub: null, authIsTheContext: null, own: [] });
  });

  it("the app can assign a name: it becomes the request's own value, for that request only", async () => {
    const token = await issuer.mint({ sub: "erin" });
    assert.deepEqual((await get(app, "/secure/assign", token)).body, { userId: "mine:erin", sub: "erin", own: true });
    assert.equal((await get(app, "/secure/me", token)).body.userId, "erin", "the next request reads the package's value again");
  });

  it("names an earlier hook set on the request are replaced by the authenticated values", async () => {
    const token = await issuer.mint({ sub: "frank", roles: ["owner"] });
    const { status, body } = await get(app, "/preset/me", token);
    assert.equal(status, 200);
    assert.equal(body.userId, "frank");
    assert.deepEqual(body.roles, ["owner"]);
    assert.equal(body.userRole, "owner");
    assert.equal(body.authIsTheContext, true);
  });
});

describe("request decorations declared with Fastify's decorateRequest", () => {
  let app: ServerBase;

  before(async () => {
    app = await createServerBase(routesFolder("ioserver-oidc-request-decorate-", { secure: routes, open: routes }));
    // Declared by the app (to keep Fastify's request shape stable): every request starts with own properties of these names.
    const fastify = app.server.getApp() as unknown as { decorateRequest(name: string, value: unknown): void };
    fastify.decorateRequest("userId", null);
    fastify.decorateRequest("auth", null);
    app.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(issuer.config) });
    app.server.addController({ name: "secure", controller: MeController, middlewares: [OidcHttpMiddleware] });
    app.server.addController({ name: "open", controller: MeController });
    await app.server.start();
  });

  after(async () => {
    await app?.close();
  });

  it("the authenticated values replace the declared ones on guarded routes; unguarded routes keep the declared values", async () => {
    const token = await issuer.mint({ sub: "grace", roles: ["reviewer"] });
    for (let i = 0; i < 2; i++) {
      const { status, body } = await get(app, "/secure/me", token);
      assert.equal(status, 200);
      assert.equal(body.userId, "grace");
      assert.equal(body.sub, "grace");
      assert.deepEqual(body.roles, ["reviewer"]);
      assert.equal(body.authSub, "grace");
      assert.equal(body.authIsTheContext, true);
    }
    const open = await get(app, "/open/me", token);
    assert.equal(open.status, 200);
    assert.equal(open.body.userId, null);
    assert.equal(open.body.authSub, null);
  });
});
