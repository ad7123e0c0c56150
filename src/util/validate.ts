/** Whether `value` is a finite number above zero (and a whole number, with `integer`). */
export function isPositive(value: unknown, integer = false): value is number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value));
}
