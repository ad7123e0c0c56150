/**
 * Logging through IOServer's `appHandle.log(level, text)`, or through the
 * structured `logger` of the app's config when it has one; either may be
 * missing or broken: a log line must never change an auth decision.
 */
import type { OidcAppHandle, OidcLogger } from "../types.js";
import { escapeUnsafe, shorten } from "./text.js";

const PREFIX = "[ioserver-oidc] ";

/** Syslog level to a structured logger's method. */
export function methodOf(level: number): keyof OidcLogger {
  if (level <= 3) return "error";
  if (level === 4) return "warn";
  if (level <= 6) return "info";
  return "debug";
}

/** What a structured logger needs: pino's four methods. */
function isLogger(value: unknown): value is OidcLogger {
  if (value === null || typeof value !== "object") return false;
  const logger = value as Record<string, unknown>;
  return typeof logger.error === "function" && typeof logger.warn === "function" && typeof logger.info === "function" && typeof logger.debug === "function";
}

/**
 * The `logger` of the app's config, read from its config manager
 * (`getResolvedConfig()`, else `getConfig()`: what the config layer reads,
 * without validating it again here) only when something is logged.
 */
function structuredLoggerOf(appHandle: OidcAppHandle): OidcLogger | undefined {
  try {
    const manager = appHandle.oidcConfig as { getConfig?: () => unknown; getResolvedConfig?: () => unknown } | null | undefined;
    if (manager === null || typeof manager !== "object") return undefined;
    const config =
      typeof manager.getResolvedConfig === "function" ? manager.getResolvedConfig() : typeof manager.getConfig === "function" ? manager.getConfig() : undefined;
    const logger = (config as { logger?: unknown } | null | undefined)?.logger;
    return isLogger(logger) ? logger : undefined;
  } catch {
    return undefined;
  }
}

/** The longest line handed to the app's logger. */
const MAX_LINE = 2_000;

/**
 * The text as one bounded line: the unsafe characters escaped as in JSON
 * (`\u000a`), the excess cut. Request-derived values are quoted where the
 * line is written (`show`); this is the last guard, so that a value left
 * unquoted can neither start a forged line nor flood the log.
 */
export function oneLine(text: string): string {
  return shorten(escapeUnsafe(text), MAX_LINE);
}

/**
 * To the config's structured `logger` as `({ component: "ioserver-oidc" }, text)`
 * (the prefix left out), else `appHandle.log(level, text)`, else nothing. A
 * throwing structured logger falls back to `appHandle.log`; a throwing
 * `appHandle.log` is ignored.
 */
export function safeLog(appHandle: OidcAppHandle, level: number, text: string): void {
  const logger = structuredLoggerOf(appHandle);
  if (logger !== undefined) {
    try {
      logger[methodOf(level)]({ component: "ioserver-oidc" }, oneLine(text.startsWith(PREFIX) ? text.slice(PREFIX.length) : text));
      return;
    } catch {
      // The text line instead.
    }
  }
  try {
    appHandle.log?.(level, oneLine(text));
  } catch {
    // A broken logger must not turn an auth decision into a crash.
  }
}

/** `safeLog` with the package's `[ioserver-oidc]` prefix. */
export function oidcLog(appHandle: OidcAppHandle, level: number, text: string): void {
  safeLog(appHandle, level, `${PREFIX}${text}`);
}

