/**
 * The verified-token cache's options: their type, defaults and validation.
 * Here, with the rest of the configuration, so that verify/tokenCache.ts
 * depends on config/ and never the reverse.
 */
import type { OidcConfigInput } from "../types.js";
import { OidcConfigError } from "./errors.js";
import { duration, label, type Names } from "./validate.js";

export interface TokenCacheOptions {
  /** Most tokens kept. Default 10000. */
  maxEntries: number;
  /** Most bytes kept (tokens plus decoded claims, estimated). Default 8 MiB. */
  maxBytes: number;
  /** Longest time, in ms, a verification is reused. Default 300000 (5 min). */
  maxTtl: number;
  /** Verifications of the same token before it is kept: 2 (default, the second one) or 1 (every verified token). */
  admitAfter: 1 | 2;
}

export const TOKEN_CACHE_DEFAULTS: Readonly<TokenCacheOptions> = Object.freeze({ maxEntries: 10_000, maxBytes: 8 * 1024 * 1024, maxTtl: 300_000, admitAfter: 2 });

/** The `tokenCache` option validated: `false` turns the cache off, `true` or nothing means the defaults. */
export function tokenCacheOptions(value: unknown, names: Names): TokenCacheOptions | false {
  if (value === undefined || value === true) return TOKEN_CACHE_DEFAULTS;
  if (value === false) return false;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new OidcConfigError(label("tokenCache", names), "must be false, true or { maxEntries, maxBytes, maxTtl, admitAfter }");
  }
  const given = value as Partial<Record<keyof TokenCacheOptions, unknown>>;
  for (const key of Object.keys(given)) {
    if (!(key in TOKEN_CACHE_DEFAULTS)) throw new OidcConfigError(`"tokenCache.${key}"`, "is not an option (maxEntries, maxBytes, maxTtl, admitAfter)");
  }
  const option = (key: "maxEntries" | "maxBytes" | "maxTtl"): number =>
    duration(given[key], TOKEN_CACHE_DEFAULTS[key], key as keyof OidcConfigInput, { [key]: `"tokenCache.${key}"` });
  const admitAfter = given.admitAfter ?? TOKEN_CACHE_DEFAULTS.admitAfter;
  if (admitAfter !== 1 && admitAfter !== 2) throw new OidcConfigError(`"tokenCache.admitAfter"`, "must be 1 or 2");
  return Object.freeze({ maxEntries: option("maxEntries"), maxBytes: option("maxBytes"), maxTtl: option("maxTtl"), admitAfter });
}
