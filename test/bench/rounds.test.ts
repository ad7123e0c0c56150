/**
 * The bench's alternating rounds: which side a slice's CPU goes to, and the
 * sides given back baseline first whichever was loaded first.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { baselineFirst, splitCpu } from "../../bench/lib/common.js";

describe("bench rounds", () => {
  it("splitCpu gives each trace interval to the slice its midpoint falls in, and ignores time outside the round", () => {
    const schedule = { start: 1_000, end: 1_400, sliceMs: 100 };
    // Samples every 50 ms, 10 µs of CPU per interval but 1,000 µs in the intervals before and after the round.
    const trace: Array<[number, number]> = [];
    let cpu = 0;
    for (let t = 900; t <= 1_500; t += 50) {
      trace.push([t, cpu]);
      cpu += t < 1_000 || t >= 1_400 ? 1_000 : 10;
    }
    // Slices: [1000,1100) A, [1100,1200) B, [1200,1300) A, [1300,1400) B; four intervals of 10 µs each per side.
    assert.deepEqual(splitCpu(trace, schedule), [40, 40]);
    // One interval heavier, in the second slice: side B's.
    const heavier = trace.map(([t, c]): [number, number] => [t, t > 1_100 ? c + 500 : c]);
    assert.deepEqual(splitCpu(heavier, schedule), [40, 540]);
  });

  it("baselineFirst loads the other side first in odd rounds and always gives the baseline back first", () => {
    assert.deepEqual(baselineFirst(0, ["/open", "/secure"]), ["/open", "/secure"]);
    const loaded = baselineFirst(1, ["/open", "/secure"]);
    assert.deepEqual(loaded, ["/secure", "/open"]);
    // What each loaded side measured comes back in baseline order.
    const measured = loaded.map((side) => `${side} measured`) as [string, string];
    assert.deepEqual(baselineFirst(1, measured), ["/open measured", "/secure measured"]);
  });
});
