/**
 * The socket decorations' two modes, driven directly: accessors on a
 * prototype that has none of the names (the real sockets' case, exercised end
 * to end in test/e2e/socket.test.ts), and a copy onto the socket when its
 * prototype already uses one of them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Socket } from "socket.io";
import { decorateSocket } from "../../src/sockets/decorations.js";
import { setContext } from "../../src/sockets/socketState.js";
import { sampleContext } from "../helpers/userContext.js";

const context = sampleContext;

describe("socket decorations", () => {
  it("a prototype free of the names gets accessors (not own properties); a socket this package does not track reads undefined; assigning makes an own property", () => {
    class FakeSocket {}
    const untracked = new FakeSocket() as unknown as Socket & Record<string, unknown>;
    const socket = new FakeSocket() as unknown as Socket & Record<string, unknown>;
    setContext(socket, context);
    decorateSocket(socket, context);
    assert.equal(typeof Object.getOwnPropertyDescriptor(FakeSocket.prototype, "userId")?.get, "function");
    assert.deepEqual(Object.keys(socket), ["data"], "nothing copied onto the socket (data is socket.data.auth's)");
    assert.equal(untracked.userId, undefined, "no context set: undefined");
    assert.equal(socket.userId, "u-1", "the accessors read the context setContext keeps");
    assert.equal(socket.auth, context);
    assert.equal((socket as unknown as { data: { auth: unknown } }).data.auth, context, "published as socket.data.auth");
    (socket as unknown as { data: unknown }).data = { room: "lobby" };
    assert.equal(socket.userId, "u-1", "an app that replaces socket.data does not take the context away");
    socket.userId = "mine";
    assert.equal(socket.userId, "mine");
    assert.deepEqual(Object.keys(socket), ["data", "userId"]);
    assert.equal((new FakeSocket() as Record<string, unknown>).userId, undefined, "other sockets unaffected");
  });

  it("a prototype that already has one of the names (another library's) is left alone: the values are copied onto each socket", () => {
    const prototype = { roles: "someone else's" };
    const socket = Object.create(prototype) as Socket & Record<string, unknown>;
    decorateSocket(socket, context);
    assert.equal(prototype.roles, "someone else's");
    assert.equal(Object.getOwnPropertyDescriptor(prototype, "userId"), undefined);
    assert.deepEqual(
      { sub: socket.sub, userId: socket.userId, userRole: socket.userRole, roles: socket.roles, permissions: socket.permissions, features: socket.features, scopes: socket.scopes, auth: socket.auth },
      { sub: "s-1", userId: "u-1", userRole: "admin", roles: ["admin"], permissions: ["p"], features: { f: true }, scopes: ["openid"], auth: context },
    );
  });

  it("a socket on which something set a decoration before (an earlier middleware) gets the authenticated values, as own properties", () => {
    class OtherSocket {}
    const socket = new OtherSocket() as unknown as Socket & Record<string, unknown>;
    socket.userId = "set-before";
    setContext(socket, context);
    decorateSocket(socket, context);
    assert.equal(socket.userId, "u-1");
    assert.deepEqual(socket.roles, ["admin"]);
    assert.equal(socket.auth, context);
    const plain = new OtherSocket() as unknown as Socket & Record<string, unknown>;
    setContext(plain, context);
    decorateSocket(plain, context);
    assert.deepEqual(Object.keys(plain), ["data"], "a socket without such a property gets nothing copied");
    const later = new OtherSocket() as unknown as Socket & Record<string, unknown>;
    later.userId = "set-before";
    setContext(later, context);
    decorateSocket(later, context);
    assert.equal(later.userId, "u-1", "also once the prototype has the accessors (the assignment made an own property)");
  });
});
