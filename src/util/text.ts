/**
 * Text for log lines and error reasons. Every value that comes from a request
 * or a remote server goes through `show`: quoted, escaped and short, so that
 * it can neither forge a log line nor flood one.
 */

/** Characters that could end a log line or disguise one: C0 and C1 controls, line and paragraph separators, bidirectional marks and overrides. */
// eslint-disable-next-line no-control-regex -- matching control characters is the purpose: they are escaped before logging
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The unsafe characters escaped as in JSON (`\u000a`). */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** At most `max` characters, an ellipsis marking the cut. */
export function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/**
 * An attacker-influenced value for a log line: JSON-quoted, escaped beyond
 * what JSON escapes (NEL, U+2028, U+2029, bidirectional overrides), at most
 * `max` characters.
 */
export function show(value: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // A BigInt or a cycle; or arrays nested deeper than the stack (a verified claim can be), which String's join overflows too.
    try {
      text = String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return shorten(escapeUnsafe(text), max);
}

/** An error's message, and its cause's when it has one (or the value as text). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}

/** A plain object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
