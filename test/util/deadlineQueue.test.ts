/**
 * The deadline queue behind socket expiry: one timer for any
 * number of sockets. Real timers, short deadlines, every wait bounded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DeadlineQueue, SLOT, type Deadline } from "../../src/util/deadlineQueue.js";
import { sleep, waitFor } from "../helpers/wait.js";

interface Entry extends Deadline {
  name: string;
}

const entry = (name: string): Entry => ({ name, [SLOT]: -1 });

function timers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

describe("DeadlineQueue", () => {
  it("runs entries in deadline order, each once, with a single timer", async () => {
    const fired: string[] = [];
    const queue = new DeadlineQueue<Entry>((e) => fired.push(e.name));
    const before = timers();
    const now = Date.now();
    const names = ["e", "b", "d", "a", "c", "f", "g", "h"];
    // Deadlines a, b, c, ... 20 ms apart, inserted out of order.
    for (const name of names) queue.schedule(entry(name), now + 40 + 20 * (name.charCodeAt(0) - 97));
    assert.equal(queue.size, names.length);
    assert.equal(timers() - before, 1, "one timer, whatever the number of entries");
    await waitFor(() => fired.length === names.length, 5_000);
    assert.deepEqual(fired, [...names].sort());
    assert.equal(queue.size, 0);
    assert.equal(timers() - before, 0, "the timer is gone once the queue is empty");
  });

  it("cancel removes an entry from anywhere in the heap, and the last cancel clears the timer", async () => {
    const fired: string[] = [];
    const queue = new DeadlineQueue<Entry>((e) => fired.push(e.name));
    const before = timers();
    const entries = Array.from({ length: 50 }, (_, i) => entry(`e${i}`));
    const now = Date.now();
    entries.forEach((e, i) => queue.schedule(e, now + 60 + ((i * 37) % 50)));
    for (let i = 0; i < entries.length; i += 2) queue.cancel(entries[i]!);
    assert.equal(queue.size, 25);
    for (const e of entries.filter((_, i) => i % 2 === 0)) assert.equal(e[SLOT], -1);
    queue.cancel(entries[0]!); // not queued: nothing happens
    assert.equal(queue.size, 25);
    await waitFor(() => fired.length === 25, 5_000);
    assert.deepEqual(new Set(fired), new Set(entries.filter((_, i) => i % 2 === 1).map((e) => e.name)));
    const again = entries.slice(0, 3);
    for (const e of again) queue.schedule(e, Date.now() + 60_000);
    assert.equal(timers() - before, 1);
    for (const e of again) queue.cancel(e);
    assert.equal(timers() - before, 0, "cancelling every entry clears the timer");
    await sleep(100);
    assert.equal(fired.length, 25, "cancelled entries never run");
  });

  it("schedule moves a queued entry earlier or later", async () => {
    const fired: Array<[string, number]> = [];
    const queue = new DeadlineQueue<Entry>((e, now) => fired.push([e.name, now]));
    const late = entry("late");
    const early = entry("early");
    const start = Date.now();
    queue.schedule(late, start + 30);
    queue.schedule(early, start + 60);
    queue.schedule(late, start + 150); // later
    queue.schedule(early, start + 20); // earlier
    assert.equal(queue.size, 2);
    await waitFor(() => fired.length === 2, 5_000);
    assert.deepEqual(
      fired.map(([name]) => name),
      ["early", "late"],
    );
    assert.ok(fired[1]![1] >= start + 150, "the moved deadline is honoured, not the first one");
  });

  it("an entry may put itself back; a failing callback does not stop the others", async () => {
    const errors: unknown[] = [];
    const fired: string[] = [];
    const queue = new DeadlineQueue<Entry>(
      (e, now) => {
        fired.push(e.name);
        if (e.name === "boom") throw new Error("boom");
        if (e.name === "twice" && fired.filter((n) => n === "twice").length === 1) queue.schedule(e, now + 30);
        if (e.name === "now" && fired.filter((n) => n === "now").length < 3) queue.schedule(e, now); // due at once: waits for the next timer
      },
      (error) => errors.push(error),
    );
    const now = Date.now();
    for (const name of ["boom", "twice", "ok", "now"]) queue.schedule(entry(name), now + 20);
    await waitFor(() => fired.filter((n) => n === "twice").length === 2 && fired.filter((n) => n === "now").length === 3, 5_000);
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as Error).message, "boom");
    assert.ok(fired.includes("ok"));
    await waitFor(() => queue.size === 0, 5_000);
  });

  it("keeps every entry's own deadline through random schedules, moves and cancels, and runs them in order", async () => {
    const fired: Array<[string, number]> = [];
    const queue = new DeadlineQueue<Entry>((e) => fired.push([e.name, expected.get(e.name)!]));
    const expected = new Map<string, number>();
    const entries = Array.from({ length: 300 }, (_, i) => entry(`e${i}`));
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const start = Date.now() + 80;
    for (let step = 0; step < 2_000; step++) {
      const e = entries[random(entries.length)]!;
      if (random(4) === 0) {
        queue.cancel(e);
        expected.delete(e.name);
      } else {
        const due = start + random(120) + random(1000) / 1000; // fractional ms too: deadlines are doubles
        queue.schedule(e, due);
        expected.set(e.name, due);
      }
    }
    assert.equal(queue.size, expected.size);
    for (const e of entries) assert.equal(queue.dueOf(e), expected.get(e.name), `${e.name}'s deadline`);
    await waitFor(() => fired.length === expected.size, 5_000);
    assert.deepEqual(new Set(fired.map(([name]) => name)), new Set(expected.keys()));
    for (let i = 1; i < fired.length; i++) assert.ok(fired[i - 1]![1] <= fired[i]![1], "run in deadline order");
    for (const e of entries) assert.equal(e[SLOT], -1);
  });

  it("an entry of another queue is not taken for one of this queue's", () => {
    const a = new DeadlineQueue<Entry>(() => undefined);
    const b = new DeadlineQueue<Entry>(() => undefined);
    const first = entry("first");
    const other = entry("other");
    a.schedule(first, Date.now() + 60_000);
    b.schedule(other, Date.now() + 60_000);
    assert.equal(b.dueOf(first), undefined);
    b.cancel(first); // its slot (0) holds `other` in b: nothing happens
    assert.equal(b.size, 1);
    assert.ok(b.dueOf(other) !== undefined);
    a.clear();
    b.clear();
  });

  it("a deadline beyond setTimeout's range is reached in steps (no immediate firing)", async () => {
    const fired: string[] = [];
    const queue = new DeadlineQueue<Entry>((e) => fired.push(e.name));
    const far = entry("far");
    queue.schedule(far, Date.now() + 30 * 24 * 3600 * 1000); // 30 days: over 2^31-1 ms
    await sleep(50);
    assert.deepEqual(fired, []);
    assert.equal(queue.size, 1);
    queue.clear();
    assert.equal(far[SLOT], -1);
    assert.equal(queue.size, 0);
  });
});
