/**
 * The log options, `logger` and `logSampling`: their defaults and validation.
 * Given in code only (the environment cannot carry a logger).
 */
import type { OidcLogger } from "../types.js";
import { OidcConfigError } from "./errors.js";
import { label, type Names } from "./validate.js";

/** At most this many refusals per sampling key per window are logged, by default. */
export const LOG_SAMPLING_DEFAULTS: Readonly<{ limit: number; window: number }> = Object.freeze({ limit: 10, window: 60_000 });

const LOGGER_METHODS = ["error", "warn", "info", "debug"] as const;

/** The `logger` option: absent, or an object with `error`, `warn`, `info` and `debug` methods (pino's shape). */
export function loggerOption(value: unknown, names: Names): OidcLogger | undefined {
  if (value === undefined) return undefined;
  const missing =
    value === null || typeof value !== "object"
      ? LOGGER_METHODS
      : LOGGER_METHODS.filter((method) => typeof (value as Record<string, unknown>)[method] !== "function");
  if (missing.length > 0) {
    throw new OidcConfigError(label("logger", names), `must be an object with ${LOGGER_METHODS.join(", ")} methods (pino's or Fastify's logger), missing ${missing.join(", ")}`);
  }
  return value as OidcLogger;
}

/** The `logSampling` option: `false` or `0` turns sampling off, a number is the limit, an object gives `limit` and `window`. */
export function logSamplingOption(value: unknown, names: Names): Readonly<{ limit: number; window: number }> | false {
  if (value === undefined || value === true) return LOG_SAMPLING_DEFAULTS;
  if (value === false) return false;
  const limitOf = (limit: unknown, key: string): number => {
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0) {
      throw new OidcConfigError(key, `must be a non-negative integer, got ${String(limit)}`);
    }
    return limit;
  };
  if (typeof value === "number") {
    const limit = limitOf(value, label("logSampling", names));
    return limit === 0 ? false : Object.freeze({ limit, window: LOG_SAMPLING_DEFAULTS.window });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new OidcConfigError(label("logSampling", names), "must be false, a number or { limit, window }");
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== "limit" && key !== "window") throw new OidcConfigError(`"logSampling.${key}"`, "is not an option (limit, window)");
  }
  const limit = given.limit === undefined ? LOG_SAMPLING_DEFAULTS.limit : limitOf(given.limit, '"logSampling.limit"');
  const window = given.window ?? LOG_SAMPLING_DEFAULTS.window;
  if (typeof window !== "number" || !Number.isInteger(window) || window <= 0) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the message echoes the rejected value as given
    throw new OidcConfigError('"logSampling.window"', `must be a positive integer (ms), got ${String(window)}`);
  }
  return limit === 0 ? false : Object.freeze({ limit, window });
}
