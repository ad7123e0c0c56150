/** Bounded waiting for tests: every wait ends, by success or by a thrown error. */

export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sleep until the given epoch ms (at once if it has passed). */
export const sleepUntil = (epochMs: number): Promise<void> => sleep(Math.max(0, epochMs - Date.now()));

/** Poll `predicate` every 10 ms; throw if it is not true within `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * Wait for the next whole second: a token minted after this is issued after
 * any revocation made before it (revocations refuse tokens whose `iat`, in
 * seconds, is at or before theirs).
 */
export const nextSecond = (): Promise<void> => sleep(1_000 - (Date.now() % 1_000) + 5);
