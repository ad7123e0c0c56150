/** Whether `value` is a finite number above zero (and a whole number, with `integer`). */
function isPositive(value: unknown, integer = false): value is number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value));
}

/**
 * A positive-number option: `fallback` when it is absent, else the value, or
 * the error `refuse` makes from what was expected (each caller names the
 * option its own way and throws its own error type).
 */
export function positiveOption(value: unknown, fallback: number, refuse: (expected: string) => Error, integer = false): number {
  if (value === undefined) return fallback;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the message echoes the rejected value as given; an object printing as [object Object] is acceptable there
  if (!isPositive(value, integer)) throw refuse(`must be a positive ${integer ? "integer" : "number"}, got ${String(value)}`);
  return value;
}
