/**
 * One state record per app handle: the same part for the same handle, a
 * separate one for another handle, and the same for a handle that cannot
 * take a property (frozen).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { appPart } from "../../src/util/appState.js";
import type { OidcAppHandle } from "../../src/types.js";

describe("app state", () => {
  it("a part is created once per handle, on first use, and handles do not share it", () => {
    let created = 0;
    const counter = appPart("counter", () => ({ serial: ++created }));
    const other = appPart("other", () => ({ name: "other" }));
    const first = { log: () => undefined } as unknown as OidcAppHandle;
    const second = { log: () => undefined } as unknown as OidcAppHandle;
    assert.equal(created, 0);
    const a = counter.of(first);
    assert.equal(counter.of(first), a);
    assert.equal(created, 1);
    const b = counter.of(second);
    assert.notEqual(b, a);
    assert.equal(counter.of(first), a, "asking for another handle in between changes nothing");
    assert.deepEqual(other.of(first), { name: "other" });
    assert.equal(counter.of(first), a, "parts of one record are separate");
    assert.deepEqual(Object.keys(first), ["log"], "nothing enumerable is added to the handle");
    assert.equal(JSON.stringify(first), "{}");
  });

  it("a frozen handle keeps its record elsewhere, with the same answers", () => {
    const part = appPart("frozen", () => ({}));
    const handle = Object.freeze({ log: () => undefined }) as unknown as OidcAppHandle;
    const value = part.of(handle);
    assert.equal(part.of(handle), value);
    assert.notEqual(part.of(Object.freeze({ log: () => undefined })), value);
  });
});

describe("app state, unusual handles", () => {
  it("a handle made from another with Object.create has a record of its own", () => {
    const part = appPart("inherited", () => ({}));
    const parent = { log: () => undefined } as unknown as OidcAppHandle;
    const child = Object.create(parent) as OidcAppHandle;
    const fromParent = part.of(parent);
    const fromChild = part.of(child);
    assert.notEqual(fromChild, fromParent);
    assert.equal(part.of(child), fromChild);
    assert.equal(part.of(parent), fromParent);
  });

  it("a proxy that refuses new properties, or throws on keys it does not know, still gets one record", () => {
    const part = appPart("proxied", () => ({}));
    const refusing = new Proxy({ log: () => undefined }, { defineProperty: () => false });
    assert.equal(part.of(refusing), part.of(refusing));
    const strict = new Proxy<Record<string | symbol, unknown>>({ log: () => undefined }, {
      get(target, key) {
        if (!(key in target)) throw new Error(`unknown key ${String(key)}`);
        return target[key];
      },
    }) as unknown as OidcAppHandle;
    assert.equal(part.of(strict), part.of(strict));
  });
});
