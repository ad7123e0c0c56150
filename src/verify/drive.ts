/**
 * Running a verification written once, as a generator, either synchronously
 * (when nothing has to wait: a cache hit, fresh keys and the fast path) or as
 * a promise: most tokens never wait, and a promise per token would cost an
 * allocation and a microtask turn each.
 */

/** What a pipeline waits for. */
export type Wait = Promise<unknown>;

/**
 * `yield* wait(promise)` in a generator run by `drive` reads and behaves like
 * `await promise` in an async function: it evaluates to the promise's value,
 * or throws its rejection at that point.
 */
export function* wait<T>(promise: Promise<T>): Generator<Wait, T, unknown> {
  return (yield promise) as T;
}

/**
 * Date.now() when the pipeline last started or resumed after a wait. The
 * steps between two waits run at once, one after the other, so they share
 * this one reading (a clock read is not free, and most tokens never wait).
 */
export interface Clock {
  now: number;
}

/**
 * Run a generator written with `yield* wait(...)` as an async function would
 * run, but without a promise while it does not wait: its return value, or its
 * exception thrown, when it finishes without waiting; otherwise a promise of
 * the rest. `clock` is read again each time it resumes.
 */
export function drive<T>(pipeline: Generator<Wait, T, unknown>, clock: Clock, step: IteratorResult<Wait, T>): T | Promise<T> {
  if (step.done === true) return step.value;
  return step.value.then(
    (value) => {
      clock.now = Date.now();
      return drive(pipeline, clock, pipeline.next(value));
    },
    (error: unknown) => {
      clock.now = Date.now();
      return drive(pipeline, clock, pipeline.throw(error));
    },
  );
}
