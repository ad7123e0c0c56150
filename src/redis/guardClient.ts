/**
 * The adapter's Redis clients, guarded: no command's promise may reject
 * unhandled, and failing publishes feed the app's backend health (with a
 * PING probe that notices Redis's return without app traffic).
 */
import type { RedisHealth } from "../stores/health.js";
import { PROBE_INTERVAL } from "../util/backoff.js";

function isThenable(value: unknown): value is Promise<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function";
}


/** Where publishing outcomes go: the shared outage log, plus a PING probe that notices Redis's return without app traffic. */
export interface PublishReport {
  ok(): void;
  failed(error: unknown): void;
  stop(): void;
}

export function publishReport(client: object, health: RedisHealth | undefined): PublishReport {
  let probe: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    if (probe !== undefined) clearInterval(probe);
    probe = undefined;
  };
  const report: PublishReport = {
    ok() {
      stop();
      health?.ok("adapter publish");
    },
    failed(error) {
      health?.failed("adapter publish", error);
      const ping = (client as { ping?: unknown }).ping;
      if (health === undefined || probe !== undefined || typeof ping !== "function") return;
      probe = setInterval(() => {
        try {
          const result: unknown = ping.call(client);
          if (isThenable(result)) result.then(() => report.ok(), () => undefined);
        } catch {
          // still down
        }
      }, PROBE_INTERVAL);
      probe.unref?.();
    },
    stop,
  };
  return report;
}

/**
 * A view of a Redis client on which no command's promise can reject
 * unhandled. `@socket.io/redis-adapter` 8 drops the promises of `publish()`
 * and `(p)subscribe()`: with ioredis and Redis down, each broadcast would
 * otherwise end the process with an unhandled rejection. Callers that await
 * a command still see its rejection. Publishing outcomes go to `report`.
 */
export function guardClient<T extends object>(client: T, report: PublishReport | undefined): T {
  const wrappers = new Map<PropertyKey, { original: unknown; wrapped: unknown }>();
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function" || property === "constructor") return value;
      const cached = wrappers.get(property);
      if (cached !== undefined && cached.original === value) return cached.wrapped;
      const publishes = report !== undefined && (property === "publish" || property === "spublish");
      const wrapped = function (this: unknown, ...args: unknown[]): unknown {
        let result: unknown;
        try {
          result = Reflect.apply(value as (...a: unknown[]) => unknown, target, args);
        } catch (error) {
          if (!publishes) throw error;
          report.failed(error);
          const rejected = Promise.reject(error);
          rejected.catch(() => undefined);
          return rejected;
        }
        if (isThenable(result) && result !== target) {
          result.then(
            () => {
              if (publishes) report.ok();
            },
            (error: unknown) => {
              if (publishes) report.failed(error);
            },
          );
        }
        return result;
      };
      wrappers.set(property, { original: value, wrapped });
      return wrapped;
    },
  });
}
