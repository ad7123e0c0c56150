/**
 * Logging through IOServer's `appHandle.log(level, text)`, which may be
 * missing or broken: a log line must never change an auth decision.
 */
import type { OidcAppHandle } from "../types.js";

/** `appHandle.log(level, text)`, or nothing; a throwing logger is ignored. */
export function safeLog(appHandle: OidcAppHandle, level: number, text: string): void {
  try {
    appHandle.log?.(level, text);
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
