/**
 * The decoration mechanism both transports use (`prototypeDecorations`),
 * driven directly: where it may put its accessors, and where it copies.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prototypeDecorations } from "../../src/pipeline/decorations.js";
import type { OidcUserContext } from "../../src/types.js";
import { sampleContext } from "../helpers/userContext.js";

const context = sampleContext;

const SLOT = Symbol("test context");
type Target = Record<string | symbol, unknown>;
const contextOf = (target: object) => (target as Target)[SLOT] as OidcUserContext | undefined;

function decorator() {
  const decorate = prototypeDecorations(contextOf);
  return (target: object) => {
    (target as Target)[SLOT] = context;
    decorate(target, context);
  };
}

describe("prototype decorations", () => {
  it("a plain object (Object.prototype) gets copies: the shared prototypes are never touched", () => {
    const decorate = decorator();
    const plain: Target = { headers: {} };
    decorate(plain);
    assert.equal(plain.userId, "u-1");
    assert.equal(plain.auth, context);
    for (const name of ["sub", "userId", "userRole", "roles", "permissions", "features", "scopes", "auth"]) {
      assert.equal(Object.getOwnPropertyDescriptor(Object.prototype, name), undefined, `Object.prototype.${name}`);
    }
    assert.equal("roles" in {}, false);
    const list = Object.assign([], { [SLOT]: context });
    decorate(list);
    assert.equal(Object.getOwnPropertyDescriptor(Array.prototype, "userId"), undefined);
  });

  it("a prototype that inherits this decorator's accessors (a Fastify child context's request) reads them: nothing is copied", () => {
    const decorate = decorator();
    class Parent {}
    class Child extends Parent {}
    decorate(new Parent());
    const child = new Child() as unknown as Target;
    decorate(child);
    assert.deepEqual(Object.keys(child), []);
    assert.equal(child.userId, "u-1");
    assert.equal(Object.getOwnPropertyDescriptor(Child.prototype, "userId"), undefined, "nothing defined again on the child prototype");
  });

  it("a prototype that inherits someone else's accessor for one of the names gets copies", () => {
    const decorate = decorator();
    class Base {
      get roles() {
        return ["theirs"];
      }
    }
    class Derived extends Base {}
    const target = new Derived() as unknown as Target;
    decorate(target);
    assert.deepEqual(Object.getOwnPropertyDescriptor(target, "roles")?.value, ["admin"]);
    assert.equal(target.userId, "u-1");
  });

  it("another decorator's accessors (another transport's) are not taken for this one's", () => {
    const first = decorator();
    const second = decorator();
    class Shared {}
    first(new Shared());
    const target = new Shared() as unknown as Target;
    second(target);
    assert.equal(Object.getOwnPropertyDescriptor(target, "userId")?.value, "u-1", "copied");
  });

  it("a target whose own accessor for a name throws, or reads something else, gets the authenticated values", () => {
    const decorate = decorator();
    class Request {}
    decorate(new Request()); // the accessors are on the prototype now
    const target = new Request() as unknown as Target;
    Object.defineProperty(target, "userRole", {
      configurable: true,
      get() {
        throw new Error("not readable");
      },
    });
    Object.defineProperty(target, "scopes", { configurable: true, get: () => ["theirs"] });
    assert.doesNotThrow(() => decorate(target));
    assert.equal(target.userRole, "admin");
    assert.deepEqual(target.scopes, context.scopes);
    assert.equal(target.auth, context);
  });

  it("an own property or accessor that reads the authenticated value when decorating is replaced all the same", () => {
    const decorate = prototypeDecorations(contextOf);
    const set = (target: Target, each: OidcUserContext) => {
      target[SLOT] = each;
      decorate(target, each);
    };
    class Socket {}
    set(new Socket() as unknown as Target, context);
    const target = new Socket() as unknown as Target;
    Object.defineProperty(target, "userId", { value: context.userId, writable: true, enumerable: true, configurable: true });
    // Right while the package checks, wrong afterwards: its value must not survive.
    let reads = 0;
    Object.defineProperty(target, "userRole", { configurable: true, get: () => (++reads === 1 ? context.userRole : "superuser") });
    // Reads other names through the package's accessors, so they run for this target: it hides `permissions` all the same.
    Object.defineProperty(target, "permissions", { configurable: true, get: () => (target.sub === context.sub ? context.permissions : []) });
    set(target, context);
    assert.equal(Object.getOwnPropertyDescriptor(target, "userRole")?.value, "admin", "the own accessor is replaced");
    assert.equal(target.userRole, "admin");
    assert.equal(target.userRole, "admin");
    assert.equal(Object.getOwnPropertyDescriptor(target, "permissions")?.value, context.permissions);
    const refreshed: OidcUserContext = { ...context, userId: "u-2", roles: ["user"] };
    set(target, refreshed);
    assert.equal(target.userId, "u-2");
    assert.deepEqual(target.roles, ["user"]);
    assert.equal(target.auth, refreshed);
    const plain = new Socket() as unknown as Target;
    set(plain, context);
    assert.deepEqual(Object.keys(plain), [], "a target without such properties gets nothing copied");
  });

  it("a frozen prototype gets no accessors and its targets get copies", () => {
    const decorate = decorator();
    const prototype = Object.freeze({ kind: "frozen" });
    const target = Object.create(prototype) as Target;
    decorate(target);
    assert.equal(Object.getOwnPropertyDescriptor(target, "sub")?.value, "s-1");
  });
});
