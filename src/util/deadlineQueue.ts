/**
 * Many deadlines, one timer: a binary min-heap of entries ordered by their
 * deadlines, with one `setTimeout` armed for the earliest. Used for socket
 * expiry, where a timer and a closure per socket would cost more memory than
 * the rest of the socket's authentication state.
 *
 * The heap is two arrays side by side: the entries, and their deadlines as
 * plain doubles (V8 stores an array of doubles unboxed, 8 bytes each, where a
 * deadline in a field of the entry itself would be a boxed number of its
 * own). Each entry carries only its position in the heap (`[SLOT]`, a small
 * integer), so moving or removing an entry is O(log n) without a search. The
 * field is symbol-keyed so that any object can be an entry (a socket is one)
 * without a wrapper object each. An entry is in at most one queue.
 */

/** The entry's position in the heap, -1 when not queued. */
export const SLOT = Symbol("ioserver-oidc.slot");

/** What the queue needs on each entry. */
export interface Deadline {
  [SLOT]: number;
}

/** `setTimeout` honours delays up to 2^31-1 ms; a later deadline is reached in steps. */
const MAX_DELAY = 2_147_483_647;

export class DeadlineQueue<T extends Deadline> {
  private readonly heap: T[] = [];
  /** `dues[i]` is the deadline (epoch ms) of `heap[i]`. */
  private readonly dues: number[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires (epoch ms), or Infinity when none is armed. */
  private armedFor = Infinity;

  /**
   * `onDue` runs for each entry whose deadline has passed, after it left the
   * queue; it may put the entry back (`schedule`) with a later deadline.
   * An exception in it is passed to `onError` and the others still run.
   */
  constructor(
    private readonly onDue: (entry: T, now: number) => void,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** The deadline `entry` is queued for, or undefined when it is not queued here. */
  dueOf(entry: T): number | undefined {
    const slot = entry[SLOT];
    return slot >= 0 && this.heap[slot] === entry ? this.dues[slot] : undefined;
  }

  /** Queue `entry` for `dueAt`, or move it there if it is queued already. */
  schedule(entry: T, dueAt: number): void {
    const slot = entry[SLOT];
    if (slot < 0 || this.heap[slot] !== entry) {
      this.heap.push(entry);
      this.dues.push(dueAt);
      this.up(this.heap.length - 1, entry, dueAt);
    } else if (dueAt < this.dues[slot]!) {
      this.up(slot, entry, dueAt);
    } else {
      this.down(slot, entry, dueAt);
    }
    this.arm();
  }

  /** Take `entry` out of the queue (nothing happens when it is not queued). */
  cancel(entry: T): void {
    const slot = entry[SLOT];
    if (slot < 0 || this.heap[slot] !== entry) return;
    entry[SLOT] = -1;
    const last = this.heap.pop()!;
    const lastDue = this.dues.pop()!;
    if (last !== entry) {
      this.down(slot, last, lastDue);
      this.up(last[SLOT], last, lastDue);
    }
    if (this.heap.length === 0) this.disarm();
  }

  /** Drop every entry and the timer. */
  clear(): void {
    for (const entry of this.heap) entry[SLOT] = -1;
    this.heap.length = 0;
    this.dues.length = 0;
    this.disarm();
  }

  private fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    const heap = this.heap;
    // Everything due leaves first, so an entry put back for "now" waits for the next timer instead of looping.
    const due: T[] = [];
    while (heap.length > 0 && this.dues[0]! <= now) {
      const entry = heap[0]!;
      this.cancel(entry);
      due.push(entry);
    }
    for (const entry of due) {
      try {
        this.onDue(entry, now);
      } catch (error) {
        this.onError(error);
      }
    }
    this.arm();
  };

  private arm(): void {
    if (this.heap.length === 0) return this.disarm();
    const first = this.dues[0]!;
    if (this.timer !== undefined && this.armedFor <= first) return;
    this.disarm();
    const delay = Math.min(Math.max(0, first - Date.now()), MAX_DELAY);
    this.armedFor = Date.now() + delay;
    this.timer = setTimeout(this.fire, delay);
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  /** Put `entry` (deadline `due`) at `slot`, or above it while its parent is due later. */
  private up(slot: number, entry: T, due: number): void {
    const heap = this.heap;
    const dues = this.dues;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parentDue = dues[parentSlot]!;
      if (parentDue <= due) break;
      const parent = heap[parentSlot]!;
      heap[slot] = parent;
      dues[slot] = parentDue;
      parent[SLOT] = slot;
      slot = parentSlot;
    }
    heap[slot] = entry;
    dues[slot] = due;
    entry[SLOT] = slot;
  }

  /** Put `entry` (deadline `due`) at `slot`, or below it while a child is due earlier. */
  private down(slot: number, entry: T, due: number): void {
    const heap = this.heap;
    const dues = this.dues;
    const length = heap.length;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && dues[right]! < dues[left]! ? right : left;
      const childDue = dues[child]!;
      if (childDue >= due) break;
      const next = heap[child]!;
      heap[slot] = next;
      dues[slot] = childDue;
      next[SLOT] = slot;
      slot = child;
    }
    heap[slot] = entry;
    dues[slot] = due;
    entry[SLOT] = slot;
  }
}
