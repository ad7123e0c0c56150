/**
 * Equal lists of strings from different tokens share one frozen array.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { sharedList, sharedListCount } from "../../src/util/sharedLists.js";

describe("sharedList", () => {
  it("answers an equal list with the first one, frozen", () => {
    const first = sharedList(["admin", "user"]);
    const second = sharedList(["admin", "user"]);
    assert.equal(second, first);
    assert.ok(Object.isFrozen(first));
    assert.deepEqual(first, ["admin", "user"]);
  });

  it("keeps lists apart that differ in order, length or an item", () => {
    const base = sharedList(["a", "b"]);
    for (const other of [["b", "a"], ["a"], ["a", "b", "c"], ["a", "B"], []]) {
      const kept = sharedList(other);
      assert.notEqual(kept, base);
      assert.deepEqual(kept, other);
      assert.ok(Object.isFrozen(kept));
    }
  });

  it("is not fooled by items that contain the separator", () => {
    const joined = sharedList(["x\u0000y"]);
    const split = sharedList(["x", "y"]);
    assert.deepEqual(joined, ["x\u0000y"]);
    assert.deepEqual(split, ["x", "y"]);
    assert.equal(sharedList(["x", "y"]), split);
    const empty = sharedList([]);
    const oneEmpty = sharedList([""]);
    assert.deepEqual(empty, []);
    assert.deepEqual(oneEmpty, [""]);
  });

  it("freezes long lists without keeping them", () => {
    const many = Array.from({ length: 33 }, (_, i) => `r${i}`);
    const kept = sharedList(many);
    assert.equal(kept, many);
    assert.ok(Object.isFrozen(kept));
    assert.notEqual(sharedList(Array.from({ length: 33 }, (_, i) => `r${i}`)), kept, "not shared");
    const wide = ["x".repeat(2000)];
    assert.notEqual(sharedList([...wide]), sharedList([...wide]), "over the character bound: not shared");
  });

  it("stays bounded: a flood of distinct lists never stops equal ones from being answered correctly", () => {
    const probe = sharedList(["probe-role"]);
    for (let i = 0; i < 10_000; i++) sharedList([`flood-${i}`]);
    const again = sharedList(["probe-role"]);
    assert.deepEqual(again, ["probe-role"], "the same items, whether or not the table was cleared meanwhile");
    assert.ok(Object.isFrozen(again));
    assert.equal(sharedList(["probe-role"]), again);
    assert.deepEqual(probe, ["probe-role"]);
  });
});

describe("sharedList: no claim value outlives its lists", () => {
  it("a list nobody holds any more leaves the table once collected", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const before = sharedListCount();
    (() => {
      for (let i = 0; i < 50; i++) sharedList([`departed-${i}@example.test`]);
    })();
    assert.equal(sharedListCount(), before + 50);
    const deadline = Date.now() + 10_000;
    while (sharedListCount() > before && Date.now() < deadline) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // (Lists left by the tests above are collected too: the table may end below where it started.)
    assert.ok(sharedListCount() <= before, `the 50 entries went with their lists (${sharedListCount()} left, ${before} before)`);
  });

  it("a list still held stays shared", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const held = sharedList(["still-here"]);
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
    assert.equal(sharedList(["still-here"]), held);
  });
});
