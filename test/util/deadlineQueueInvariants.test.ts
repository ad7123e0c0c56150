/**
 * The expiry heap with deadlines beside the entries: its invariants hold
 * through random schedules, moves, cancels, clears, entries carrying stale
 * slots, entries moved from one queue to another, and runs whose callbacks
 * schedule and cancel other entries.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { DeadlineQueue, SLOT, type Deadline } from "../../src/util/deadlineQueue.js";

interface Entry extends Deadline {
  name: number;
}

/** Every queue a test makes, cleared after it even when it fails (a queued entry keeps a timer armed). */
const made: Array<DeadlineQueue<Entry>> = [];
afterEach(() => {
  for (const queue of made.splice(0)) queue.clear();
});
const track = (queue: DeadlineQueue<Entry>) => (made.push(queue), queue);

type Inner = { heap: Entry[]; dues: number[]; fire: () => void };
const inner = (queue: DeadlineQueue<Entry>) => queue as unknown as Inner;

function check(queue: DeadlineQueue<Entry>, expected: Map<Entry, number>, label: string): void {
  const { heap, dues } = inner(queue);
  assert.equal(heap.length, dues.length, `${label}: arrays side by side`);
  assert.equal(heap.length, expected.size, `${label}: size`);
  for (let i = 0; i < heap.length; i++) {
    assert.equal(heap[i]![SLOT], i, `${label}: slot of ${i}`);
    assert.equal(dues[i], expected.get(heap[i]!), `${label}: deadline of ${heap[i]!.name}`);
    if (i > 0) assert.ok(dues[(i - 1) >> 1]! <= dues[i]!, `${label}: heap order at ${i}`);
  }
  for (const [entry, due] of expected) assert.equal(queue.dueOf(entry), due);
}

function rng(seed: number) {
  return (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed % n;
  };
}

describe("DeadlineQueue invariants", () => {
  it("random schedule / cancel / clear / stale slots keep the heap and each deadline", () => {
    const random = rng(7);
    const queue = track(new DeadlineQueue<Entry>(() => undefined));
    const expected = new Map<Entry, number>();
    const entries = Array.from({ length: 64 }, (_, name) => ({ name, [SLOT]: -1 }));
    const far = Date.now() + 3_600_000;
    for (let step = 0; step < 20_000; step++) {
      const e = entries[random(entries.length)]!;
      const op = random(100);
      if (op < 55) {
        const due = far + random(50) + (random(2) ? 0.5 : 0);
        queue.schedule(e, due);
        expected.set(e, due);
      } else if (op < 90) {
        queue.cancel(e);
        expected.delete(e);
      } else if (op < 95) {
        // a stale slot on an entry not in this queue (e.g. copied from elsewhere)
        if (!expected.has(e)) e[SLOT] = random(Math.max(1, queue.size));
      } else if (op === 99) {
        queue.clear();
        expected.clear();
        for (const x of entries) assert.equal(x[SLOT] === -1 || !expected.has(x), true);
      }
      check(queue, expected, `step ${step}`);
    }
    queue.clear();
  });

  it("an entry cancelled from one queue and scheduled on another is in that one only", () => {
    const a = track(new DeadlineQueue<Entry>(() => undefined));
    const b = track(new DeadlineQueue<Entry>(() => undefined));
    const ea = new Map<Entry, number>();
    const eb = new Map<Entry, number>();
    const entries = Array.from({ length: 20 }, (_, name) => ({ name, [SLOT]: -1 }));
    const far = Date.now() + 3_600_000;
    entries.forEach((e, i) => {
      a.schedule(e, far + i);
      ea.set(e, far + i);
    });
    for (let i = 0; i < 20; i += 3) {
      const e = entries[i]!;
      a.cancel(e);
      ea.delete(e);
      b.schedule(e, far - i);
      eb.set(e, far - i);
    }
    check(a, ea, "a");
    check(b, eb, "b");
    a.clear();
    b.clear();
  });

  it("a run whose callbacks schedule, move and cancel other entries keeps the heap sound and runs each due entry once", () => {
    const random = rng(99);
    const now = Date.now();
    const expected = new Map<Entry, number>();
    const ran: number[] = [];
    const entries = Array.from({ length: 200 }, (_, name) => ({ name, [SLOT]: -1 }));
    const queue: DeadlineQueue<Entry> = track(new DeadlineQueue<Entry>((e) => {
      ran.push(e.name);
      for (let k = 0; k < 3; k++) {
        const other = entries[random(entries.length)]!;
        if (random(2) === 0) {
          queue.cancel(other);
          expected.delete(other);
        } else {
          const due = now + 3_600_000 + random(100);
          queue.schedule(other, due);
          expected.set(other, due);
        }
      }
    }));
    entries.forEach((e, i) => {
      const due = i < 100 ? now - 1000 + i : now + 3_600_000 + i;
      queue.schedule(e, due);
      expected.set(e, due);
    });
    // Run the due ones now (the timer's own callback), not after a wait.
    const dueNow = [...expected].filter(([, d]) => d <= Date.now()).map(([e]) => e);
    for (const e of dueNow) expected.delete(e);
    inner(queue).fire();
    assert.deepEqual(new Set(ran), new Set(dueNow.map((e) => e.name)));
    assert.equal(ran.length, dueNow.length, "each once");
    check(queue, expected, "after the run");
    queue.clear();
  });
});
