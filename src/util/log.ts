/**
 * Logging through IOServer's `appHandle.log(level, text)`, which may be
 * missing or broken: a log line must never change an auth decision.
 */
import type { OidcAppHandle } from "../types.js";
import { escapeUnsafe, shorten } from "./text.js";

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

/** `appHandle.log(level, text)`, or nothing; a throwing logger is ignored. */
export function safeLog(appHandle: OidcAppHandle, level: number, text: string): void {
  try {
    appHandle.log?.(level, oneLine(text));
  } catch {
    // A broken logger must not turn an auth decision into a crash.
  }
}

/** `safeLog` with the package's `[ioserver-oidc]` prefix. */
export function oidcLog(appHandle: OidcAppHandle, level: number, text: string): void {
  safeLog(appHandle, level, `[ioserver-oidc] ${text}`);
}

