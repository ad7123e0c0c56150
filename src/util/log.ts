/**
 * Logging through IOServer's `appHandle.log(level, text)`, which may be
 * missing or broken: a log line must never change an auth decision.
 */
import type { OidcAppHandle } from "../types.js";

/** The longest line handed to the app's logger. */
const MAX_LINE = 2_000;

/** Characters that could end a log line or disguise one: C0 and C1 controls, line and paragraph separators, bidirectional marks and overrides. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * The text as one bounded line: the unsafe characters escaped as in JSON
 * (`\u000a`), the excess cut. Request-derived values are quoted where the
 * line is written (`show`); this is the last guard, so that a value left
 * unquoted can neither start a forged line nor flood the log.
 */
export function oneLine(text: string): string {
  const escaped = text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return escaped.length > MAX_LINE ? `${escaped.slice(0, MAX_LINE - 3)}...` : escaped;
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

/** An error's message (or the value as text) for a log line. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
