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

  it("names the type of an array nested too deep to write out", () => {
    const depth = 20_000;
    const deep: unknown = JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);
    assert.equal(show(deep), "[object Array]");
    const record: unknown = JSON.parse(`{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    assert.equal(show(record), "[object Object]");
  });
});
