/**
 * Where the differential's cases come from: a generator and the reference's
 * decision on each case, computed in a worker thread (so generation, signing
 * and the reference's own jose verification use a second core while the
 * package is verified on the main thread) or in-process.
 */
import { Worker } from "node:worker_threads";
import { createFixture, referenceVerify, TokenGenerator, type DiffCase, type Fixture, type FixtureKeys } from "./generate.js";

/** A case and the reference's decision on it. */
export interface DecidedCase extends DiffCase {
  accepted: boolean;
  /** JSON of the verified payload (accepted) or the reference's reason (refused). */
  detail: string;
  /** The second (epoch) the decision was made in, or -1 when it straddled two. */
  second: number;
}

export interface WorkerInit {
  keys: FixtureKeys;
  jwksUri: string;
  seed: number;
  poolSize: number;
}

export interface CaseSource {
  batch(n: number): Promise<DecidedCase[]>;
  close(): Promise<void>;
}

const nowS = () => Math.floor(Date.now() / 1000);

/** Run `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Generate `n` cases and decide each with the reference. */
export async function decideBatch(fx: Fixture, generator: TokenGenerator, n: number): Promise<DecidedCase[]> {
  const cases = Array.from({ length: n }, () => generator.next());
  return pool(cases, 32, async (c) => {
    const before = nowS();
    const decision = await referenceVerify(fx, fx.configs[c.config]!, c.token);
    const second = nowS() === before ? before : -1;
    return decision.accepted
      ? { ...c, accepted: true, detail: JSON.stringify(decision.payload), second }
      : { ...c, accepted: false, detail: decision.reason, second };
  });
}

/** Cases generated and decided on this thread. */
export function inProcessSource(init: WorkerInit): CaseSource {
  const fx = createFixture(init.keys, init.jwksUri, { poolSize: init.poolSize, seed: init.seed });
  const generator = new TokenGenerator(fx, init.seed);
  return { batch: (n) => decideBatch(fx, generator, n), close: async () => {} };
}

/**
 * Worker code that loads a TypeScript module through tsx. The parent's
 * `--import tsx` does not reach worker threads, and where Node strips types
 * itself (Node 22.18+, 23.6+) it loads the `.ts` file but cannot resolve the
 * `.js` specifiers the sources import: tsx's loader is registered first.
 */
function bootstrap(moduleUrl: string): string {
  const tsx = import.meta.resolve("tsx/esm/api");
  return [`(await import(${JSON.stringify(tsx)})).register();`, `await import(${JSON.stringify(moduleUrl)});`].join("\n");
}

/** Cases generated and decided in a worker thread (test/differential/worker.ts). */
export async function workerSource(init: WorkerInit, timeoutMs = 60_000): Promise<CaseSource> {
  const worker = new Worker(bootstrap(new URL("./worker.ts", import.meta.url).href), { eval: true, workerData: init });
  const waiting = new Map<number, { resolve(cases: DecidedCase[]): void; reject(error: unknown): void; timer: NodeJS.Timeout }>();
  let failure: unknown;
  let nextId = 0;
  const fail = (error: unknown) => {
    failure ??= error;
    for (const [, w] of waiting) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    waiting.clear();
  };
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the differential worker did not start within 60 s")), 60_000);
    worker.once("message", (message: { ready?: boolean }) => {
      clearTimeout(timer);
      if (message.ready === true) resolve();
      else reject(new Error("unexpected first message from the differential worker"));
    });
    worker.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  await ready;
  worker.on("message", (message: { id: number; cases?: DecidedCase[]; error?: string }) => {
    const w = waiting.get(message.id);
    if (w === undefined) return;
    waiting.delete(message.id);
    clearTimeout(w.timer);
    if (message.cases !== undefined) w.resolve(message.cases);
    else w.reject(new Error(`differential worker: ${message.error ?? "no cases"}`));
  });
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`the differential worker exited (${code})`)));
  return {
    batch(n) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- passes on what the worker failed with, unchanged (as the pending batches got it)
      if (failure !== undefined) return Promise.reject(failure);
      const id = nextId++;
      return new Promise<DecidedCase[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`the differential worker did not answer a batch of ${n} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, { resolve, reject, timer });
        worker.postMessage({ id, n });
      });
    },
    async close() {
      worker.removeAllListeners("exit");
      await worker.terminate();
    },
  };
}
