/**
 * The adapters' own series tables (shared by both adapters): an event finds
 * its series by its label values, the same series every time, whatever came
 * in between.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HistogramTally, Tally } from "../../src/metrics/channels.js";

const totals = (tally: Tally) => Object.fromEntries(tally.values().map(({ labels, value }) => [Object.values(labels).join("/"), value]));

describe("series tables", () => {
  it("the same label values find the same series, before and after other values", () => {
    const tally = new Tally(["transport", "outcome", "path"]);
    tally.add(1, "http", "success", "cache");
    tally.add(1, "http", "success", "cache");
    tally.add(1, "http", "success", "fast");
    tally.add(1, "http", "ERR_AUTH_EXPIRED");
    tally.add(1, "http", "success", "cache");
    // Equal strings that are not the same string object.
    tally.add(2, ["ht", "tp"].join(""), "success", `${"ca"}${"che"}`);
    assert.deepEqual(totals(tally), { "http/success/cache": 5, "http/success/fast": 1, "http/ERR_AUTH_EXPIRED/": 1 });
  });

  it("five labels: a series differing from the last in its fifth value alone is another series", () => {
    const tally = new Tally(["a", "b", "c", "d", "e"]);
    tally.add(1, "1", "2", "3", "4", "x");
    tally.add(1, "1", "2", "3", "4", "y");
    tally.add(1, "1", "2", "3", "4", "y");
    tally.add(1, "1", "2", "3", "4", "x");
    assert.deepEqual(totals(tally), { "1/2/3/4/x": 2, "1/2/3/4/y": 2 });
  });

  it("after clear(), the values asked for last start a new series", () => {
    const histogram = new HistogramTally(["outcome"]);
    histogram.observe(0.001, "success");
    histogram.clear();
    histogram.observe(0.002, "success");
    histogram.observe(0.003, "success");
    const series = histogram.values();
    assert.equal(series.length, 1);
    assert.equal(series[0]!.count, 2);
    assert.ok(Math.abs(series[0]!.sum - 0.005) < 1e-12, `sum ${series[0]!.sum}`);
  });
});
