/** Bounded waiting for tests: every wait ends, by success or by a thrown error. */

export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sleep until the given epoch ms (at once if it has passed). */
export const sleepUntil = (epochMs: number): Promise<void> => sleep(Math.max(0, epochMs - Date.now()));

/**
 * Poll until `predicate` holds; throw if it does not within `timeoutMs`.
 * `what` names the condition in the failure message, with the predicate's
 * last error if it threw (a throwing predicate counts as "not yet").
 * Unnamed: polled every 10 ms, 5 s at most; named: every 100 ms, 15 s.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs?: number): Promise<void>;
export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs?: number, everyMs?: number): Promise<void>;
export async function waitFor(
  ...args: [() => boolean | Promise<boolean>, number?] | [string, () => boolean | Promise<boolean>, number?, number?]
): Promise<void> {
  const named = typeof args[0] === "string";
  const what = named ? (args[0] as string) : "condition";
  const predicate = (named ? args[1] : args[0]) as () => boolean | Promise<boolean>;
  const timeoutMs = ((named ? args[2] : args[1]) as number | undefined) ?? (named ? 15_000 : 5_000);
  const everyMs = named ? (args[3] ?? 100) : 10;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
      last = undefined;
    } catch (error) {
      last = error;
    }
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- `last` is whatever the condition threw; an Error prints its message
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ""}`);
    await sleep(everyMs);
  }
}

/**
 * Wait for the next whole second: a token minted after this is issued after
 * any revocation made before it (revocations refuse tokens whose `iat`, in
 * seconds, is at or before theirs).
 */
export const nextSecond = (): Promise<void> => sleep(1_000 - (Date.now() % 1_000) + 5);
