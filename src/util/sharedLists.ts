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
 * MAX_LISTS lists, which only costs the copies made after it. Every shared
 * list is frozen, so sharing one between unrelated users changes nothing
 * they can observe but `===` between their arrays.
 */

const MAX_ITEMS = 32;
const MAX_CHARS = 1024;
const MAX_LISTS = 4096;

/** The shared lists, by their items joined with NUL (a key two different lists may share: equality is checked item by item). */
const lists = new Map<string, readonly string[]>();

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
  const key = count === 1 ? items[0]! : items.join("\u0000");
  if (key.length > MAX_CHARS) return Object.freeze(items) as string[];
  const known = lists.get(key);
  if (known !== undefined && sameItems(known, items)) return known as string[];
  if (lists.size >= MAX_LISTS) lists.clear();
  Object.freeze(items);
  lists.set(key, items);
  return items;
}

/** How many lists are shared now (for the tests). */
export function sharedListCount(): number {
  return lists.size;
}
