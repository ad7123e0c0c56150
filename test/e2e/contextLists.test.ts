/**
 * The lists and `features` of an authenticated socket's context are
 * read-only and shared: a verified claim's own array (or object) rather than
 * a copy, and one empty list (one empty `features`) for every socket whose
 * token has none, so an idle socket keeps no copies of its claims. Real
 * IOServer, real socket.io-client, tokens from the test issuer.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BaseService } from "ioserver";
import type { Socket as ServerSocket } from "socket.io";
import type { Socket as ClientSocket } from "socket.io-client";
import { OidcConfigManager, OidcSocketMiddleware } from "../../src/index.js";
import type { OidcUserContext } from "../../src/types.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, createServerBase, outcome, routesFolder, type ServerBase } from "../helpers/app.js";

/** The server-side sockets' contexts, by `sub`, as the handler saw them. */
const contexts = new Map<string, OidcUserContext>();

class ListsService extends BaseService {
  async inspect(socket: ServerSocket, _data: unknown, callback?: (value: unknown) => void) {
    const context = (socket.data as { auth: OidcUserContext }).auth;
    contexts.set(context.sub, context);
    let pushed: string;
    try {
      socket.roles.push("intruder");
      pushed = "pushed";
    } catch (error) {
      pushed = (error as Error).name;
    }
    callback?.({
      frozen: [context.roles, context.permissions, context.scopes, context.features].map((each) => Object.isFrozen(each)),
      rolesAreTheClaim: context.roles === context.claims["roles"],
      featuresAreTheClaim: context.features === context.claims["features"],
      decorations: socket.roles === context.roles && socket.permissions === context.permissions && socket.features === context.features,
      pushed,
      roles: [...context.roles],
    });
  }
}

let issuer: TestIssuer;
let app: ServerBase;

before(async () => {
  issuer = await createTestIssuer();
  app = await createServerBase(routesFolder("ioserver-oidc-lists-", {}));
  app.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(issuer.config) });
  app.server.addService({ name: "lists", service: ListsService, middlewares: [OidcSocketMiddleware] });
  await app.server.start();
});

after(async () => {
  await app?.close();
  await issuer?.close();
});

async function inspect(claims: Record<string, unknown>): Promise<Record<string, unknown>> {
  const client: ClientSocket = app.connect("lists", { auth: { token: await issuer.mint(claims) } });
  const result = await outcome(client);
  assert.ok(result.connected, "the socket connects");
  return call<Record<string, unknown>>(client, "inspect");
}

describe("an authenticated socket's context lists", () => {
  it("are read-only, and the token's own roles and features rather than copies", async () => {
    const view = await inspect({ sub: "lists-a", roles: ["editor", "viewer"], permissions: ["posts:write"], features: { beta: true }, scope: "openid chat" });
    assert.deepEqual(view, {
      frozen: [true, true, true, true],
      rolesAreTheClaim: true,
      featuresAreTheClaim: true,
      decorations: true,
      pushed: "TypeError",
      roles: ["editor", "viewer"],
    });
    const context = contexts.get("lists-a")!;
    assert.deepEqual(context.permissions, ["posts:write"]);
    assert.deepEqual(context.scopes, ["openid", "chat"]);
    assert.deepEqual(context.features, { beta: true });
  });

  it("keep only the strings of a claim (a frozen copy then), and are one shared empty list, one shared empty features, when the token has none", async () => {
    const mixed = await inspect({ sub: "lists-b", roles: ["admin", 7, null, "ops"] });
    assert.equal(mixed.rolesAreTheClaim, false, "a claim with other items is copied");
    assert.deepEqual(mixed.roles, ["admin", "ops"]);
    assert.deepEqual(mixed.frozen, [true, true, true, true]);
    await inspect({ sub: "lists-c" });
    await inspect({ sub: "lists-d", roles: [], permissions: "not a list", features: ["not", "an object"] });
    const [b, c, d] = ["lists-b", "lists-c", "lists-d"].map((sub) => contexts.get(sub)!);
    assert.deepEqual(c!.roles, []);
    assert.equal(c!.userRole, "user");
    assert.deepEqual(c!.features, {});
    assert.equal(c!.roles, d!.roles, "one empty list for every socket");
    assert.equal(b!.permissions, c!.permissions);
    assert.equal(c!.permissions, d!.permissions);
    assert.equal(c!.scopes, d!.scopes);
    assert.equal(b!.features, c!.features, "one empty features for every socket");
    assert.equal(c!.features, d!.features);
    assert.ok(Object.isFrozen(c!.roles) && Object.isFrozen(c!.features));
  });
});
