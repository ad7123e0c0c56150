/**
 * Worker thread of the differential (see source.ts): generates cases and
 * decides them with the reference, a batch per request.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createFixture, TokenGenerator } from "./generate.js";
import { decideBatch, type WorkerInit } from "./source.js";

const init = workerData as WorkerInit;
const fx = createFixture(init.keys, init.jwksUri, { poolSize: init.poolSize, seed: init.seed });
const generator = new TokenGenerator(fx, init.seed);
const port = parentPort!;

// One batch at a time, in order: the generator's history (repeats) stays deterministic.
let queue = Promise.resolve();
port.on("message", (message: { id: number; n: number }) => {
  queue = queue.then(async () => {
    try {
      port.postMessage({ id: message.id, cases: await decideBatch(fx, generator, message.n) });
    } catch (error) {
      port.postMessage({ id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
});
port.postMessage({ ready: true });
