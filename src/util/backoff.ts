/**
 * The one back-off policy for asking a failing provider again (key sets,
 * discovery): 1 s after the first failure, doubling with each further one,
 * never more than 60 s apart, so a provider that is down is not asked on
 * every request and one that comes back is noticed within a minute.
 *
 * A shared backend of the app's own (Redis) is probed instead at a steady
 * `PROBE_INTERVAL` while it is down: its return should be noticed at once.
 */

/** The delay after the first failure, in ms. */
export const BACKOFF_START = 1_000;
/** The longest delay, in ms. */
export const BACKOFF_MAX = 60_000;

/** How long to wait, in ms, after `failures` consecutive failures (1 or more). */
export function backoffDelay(failures: number): number {
  return Math.min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX);
}

/** How often a shared backend that is down (the session store, the adapter's publisher) is probed, in ms. */
export const PROBE_INTERVAL = 1_000;
