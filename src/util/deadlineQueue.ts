/**
 * Many deadlines, one timer: a binary min-heap of entries ordered by
 * `dueAt`, with one `setTimeout` armed for the earliest. Used for socket
 * expiry, where a timer and a closure per socket would cost more memory than
 * the rest of the socket's authentication state.
 *
 * Each entry carries its own deadline (`[DUE]`) and its position in the heap
 * (`[SLOT]`), so moving or removing an entry is O(log n) and the queue holds
 * no other per-entry data. The fields are symbol-keyed so that any object
 * can be an entry (a socket is one) without a wrapper object each. An entry
 * is in at most one queue.
 */

/** The entry's deadline (epoch ms). */
export const DUE = Symbol("ioserver-oidc.due");
/** The entry's position in the heap, -1 when not queued. */
export const SLOT = Symbol("ioserver-oidc.slot");

/** What the queue needs on each entry. */
export interface Deadline {
  [DUE]: number;
  [SLOT]: number;
}

/** `setTimeout` honours delays up to 2^31-1 ms; a later deadline is reached in steps. */
const MAX_DELAY = 2_147_483_647;

export class DeadlineQueue<T extends Deadline> {
  private readonly heap: T[] = [];
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

  /** Queue `entry` for `dueAt`, or move it there if it is queued already. */
  schedule(entry: T, dueAt: number): void {
    const previous = entry[DUE];
    entry[DUE] = dueAt;
    if (entry[SLOT] < 0) {
      entry[SLOT] = this.heap.length;
      this.heap.push(entry);
      this.up(entry[SLOT]);
    } else if (dueAt < previous) {
      this.up(entry[SLOT]);
    } else {
      this.down(entry[SLOT]);
    }
    this.arm();
  }

  /** Take `entry` out of the queue (nothing happens when it is not queued). */
  cancel(entry: T): void {
    const slot = entry[SLOT];
    if (slot < 0 || this.heap[slot] !== entry) return;
    entry[SLOT] = -1;
    const last = this.heap.pop()!;
    if (last !== entry) {
      this.heap[slot] = last;
      last[SLOT] = slot;
      this.down(slot);
      this.up(last[SLOT]);
    }
    if (this.heap.length === 0) this.disarm();
  }

  /** Drop every entry and the timer. */
  clear(): void {
    for (const entry of this.heap) entry[SLOT] = -1;
    this.heap.length = 0;
    this.disarm();
  }

  private fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    const heap = this.heap;
    // Everything due leaves first, so an entry put back for "now" waits for the next timer instead of looping.
    const due: T[] = [];
    while (heap.length > 0 && heap[0]![DUE] <= now) {
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
    const first = this.heap[0];
    if (first === undefined) return this.disarm();
    if (this.timer !== undefined && this.armedFor <= first[DUE]) return;
    this.disarm();
    const delay = Math.min(Math.max(0, first[DUE] - Date.now()), MAX_DELAY);
    this.armedFor = Date.now() + delay;
    this.timer = setTimeout(this.fire, delay);
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private up(slot: number): void {
    const heap = this.heap;
    const entry = heap[slot]!;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot]!;
      if (parent[DUE] <= entry[DUE]) break;
      heap[slot] = parent;
      parent[SLOT] = slot;
      slot = parentSlot;
    }
    heap[slot] = entry;
    entry[SLOT] = slot;
  }

  private down(slot: number): void {
    const heap = this.heap;
    const length = heap.length;
    const entry = heap[slot]!;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && heap[right]![DUE] < heap[left]![DUE] ? right : left;
      const next = heap[child]!;
      if (next[DUE] >= entry[DUE]) break;
      heap[slot] = next;
      next[SLOT] = slot;
      slot = child;
    }
    heap[slot] = entry;
    entry[SLOT] = slot;
  }
}
