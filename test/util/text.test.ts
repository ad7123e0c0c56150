/**
 * `show` quotes any value for a log line or a refusal's reason, and never
 * throws: values from tokens can be nested deeper than JSON.stringify (or
 * String's join) can recurse.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { show } from "../../src/util/text.js";

describe("show", () => {
  it("quotes ordinary values as JSON", () => {
    assert.equal(show("a\nb"), '"a\\nb"');
    assert.equal(show(["x", 1]), '["x",1]');
    assert.equal(show(undefined), "undefined");
    assert.equal(show(10n), "10");
  });

  it("writes out, shortened, or names the type of, an array nested deeper than the stack allows", () => {
    // Whether JSON.stringify and String's join overflow at this depth depends on the engine's stack; show() must not throw either way.
    const depth = 20_000;
    const deep: unknown = JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);
    const shown = show(deep);
    assert.ok(shown === "[object Array]" || (shown.startsWith("[[[[") && shown.length <= 80), shown);
    const record: unknown = JSON.parse(`{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    const shownRecord = show(record);
    assert.ok(shownRecord === "[object Object]" || (shownRecord.startsWith('{"a":[[[') && shownRecord.length <= 80), shownRecord);
  });

  it("names the type of a value that neither JSON.stringify nor String can write", () => {
    const hostile = {
      toJSON(): never {
        throw new Error("no JSON");
      },
      toString(): never {
        throw new Error("no string");
      },
    };
    assert.equal(show(hostile), "[object Object]");
  });
});
