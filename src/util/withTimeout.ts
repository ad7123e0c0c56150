/** Thrown by `withTimeout` when the work did not settle in time. */
export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
}

/**
 * Await a call of app code (users manager, session tracker) for at most `ms`.
 * The timer is always cleared; a late result is ignored (and a late rejection
 * is swallowed, so it never becomes an unhandled rejection).
 */
export function withTimeout<T>(work: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = Promise.resolve().then(work);
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([pending, deadline]).finally(() => {
    clearTimeout(timer);
    pending.catch(() => undefined);
  });
}
