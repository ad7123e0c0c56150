/**
 * One frozen copy of each list of strings that many tokens carry alike.
 *
 * The same `roles`, `groups`, `aud` or scope lists come back in token after
 * token, and every verified payload and user context keeps its own arrays
 * for as long as a socket stays open or the token stays cached: a
 * one-element array costs about 56 bytes, a few of them per socket add up
 * over thousands of sockets. Lists that are equal item for item are
 * replaced by one shared, frozen array, so a thousand users with the same
 * roles hold one array between them.
 *
 * Only small lists of strings are shared (up to MAX_ITEMS items, MAX_CHARS
 * characters in all), and the table is bounded: cleared when it holds
 * MAX_LISTS lists, which only costs the copies made after it. The table
 * holds its lists weakly: a list no payload, context or socket uses any more
 * is collected, and its entry (whose key spells its items) goes with it, so
 * claim values do not outlive the tokens that carried them. Every shared
 * list is frozen, so sharing one between unrelated users changes nothing
 * they can observe but `===` between their arrays.
 */

const MAX_ITEMS = 32;
const MAX_CHARS = 1024;
const MAX_LISTS = 4096;

/** The shared lists, by their items joined with NUL (a key two different lists may share: equality is checked item by item). */
const lists = new Map<string, WeakRef<string[]>>();

/** Drops the entry of a list once it is collected (unless the key names a newer list by then). */
const collected = new FinalizationRegistry<string>((key) => {
  if (lists.get(key)?.deref() === undefined) lists.delete(key);
});

/** Whether every item of the array is a string (what `sharedList` takes). */
export function allStrings(value: readonly unknown[]): boolean {
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== "string") return false;
  return true;
}

function sameItems(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The shared frozen list equal to `items` (an array holding only strings,
 * which the caller has checked), or `items` itself, frozen, when it is the
 * first of its kind or not shared (too long). `items` is frozen either way.
 */
export function sharedList(items: string[]): string[] {
  const count = items.length;
  if (count > MAX_ITEMS) return Object.freeze(items) as string[];
  // Measured before joining: a list of a few huge strings is refused without building their concatenation.
  let chars = count;
  for (let i = 0; i < count; i++) chars += items[i]!.length;
  if (chars > MAX_CHARS) return Object.freeze(items) as string[];
  const key = count === 1 ? items[0]! : items.join("\u0000");
  const known = lists.get(key)?.deref();
  if (known !== undefined && sameItems(known, items)) return known;
  if (lists.size >= MAX_LISTS) lists.clear();
  Object.freeze(items);
  lists.set(key, new WeakRef(items));
  collected.register(items, key);
  return items;
}

/** How many lists the table holds now (for the tests). */
export function sharedListCount(): number {
  return lists.size;
}
