/**
 * Config objects are recognised, not re-validated. An object that passed
 * validation is frozen (with the plain objects and arrays inside it), so what
 * it says is always what is enforced: tightening it in place throws instead
 * of being silently ignored. It is then known by identity; a plain object
 * equal in content to one seen recently (a getConfig() building a new object
 * per call) resolves to the same normalised config, hence the same token
 * cache, without being validated again.
 */
import type { OidcConfig } from "../types.js";

/** Plain objects and arrays deeper than this are compared by identity and not frozen (a config nests four: itself, `issuers`, an entry, its `audience`; a cycle stops here). */
const MAX_DEPTH = 6;
/** How many distinct configurations are remembered by content, most recently used first. */
export const CONFIG_CONTENT_CACHE_SIZE = 16;

/** Process-wide cache, bounded by the inputs: weak, an entry goes with its input object. */
const byIdentity = new WeakMap<object, OidcConfig>();
/** Process-wide cache, bounded: the last CONFIG_CONTENT_CACHE_SIZE plain-data inputs, most recently used first. */
const byContent: Array<{ readonly input: object; readonly config: OidcConfig }> = [];
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called as hasOwn.call(object, key)
const hasOwn = Object.prototype.hasOwnProperty;
/** Top-level options that hold the app's own live objects (a logger keeps state): never frozen, compared by identity. */
const OPAQUE_OPTIONS: ReadonlySet<string> = new Set(["logger"]);
const opaque = (key: string, depth: number): boolean => depth === 0 && OPAQUE_OPTIONS.has(key);

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || proto === Array.prototype;
}

/** Freeze `value` and the plain objects and arrays it holds; functions and class instances are left as they are. */
function freezeData(value: object, depth: number): void {
  Object.freeze(value);
  if (depth >= MAX_DEPTH) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) freezeMember(value[i], depth);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) if (hasOwn.call(record, key) && !opaque(key, depth)) freezeMember(record[key], depth);
}

function freezeMember(member: unknown, depth: number): void {
  if (member !== null && typeof member === "object" && isPlain(member)) freezeData(member, depth + 1);
}

/**
 * Equal content: the same enumerable own keys with equal values, recursing
 * into plain objects and arrays; anything else (a `claimMapping` function, a
 * class instance) must be the same object. An object with an own property
 * that is not enumerable is equal to nothing: validation reads every
 * property, so a hidden `audience` must not be passed over. It runs whenever
 * a new object arrives: its one allocation is that check's list of names,
 * one per object compared.
 */
function sameContent(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (depth >= MAX_DEPTH || !isPlain(a) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    if (a.length !== other.length) return false;
    for (let i = 0; i < a.length; i++) {
      if ((i in a) !== (i in other) || !sameContent(a[i], other[i], depth + 1)) return false;
    }
    return true;
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  let own = 0;
  for (const key in left) {
    if (!hasOwn.call(left, key)) continue;
    if (!hasOwn.call(right, key)) return false;
    if (opaque(key, depth) ? left[key] !== right[key] : !sameContent(left[key], right[key], depth + 1)) return false;
    own++;
  }
  let keys = own;
  for (const key in right) if (hasOwn.call(right, key)) keys--;
  return keys === 0 && Object.getOwnPropertyNames(left).length === own;
}

/** The normalised config of an object validated before (it is frozen since). */
export function knownByIdentity(input: object): OidcConfig | undefined {
  return byIdentity.get(input);
}

/**
 * The normalised config of a plain object equal in content to a remembered
 * one (compared again on every call: it is not remembered by identity).
 */
export function knownByContent(input: object): OidcConfig | undefined {
  if (!isPlain(input)) return undefined;
  for (let i = 0; i < byContent.length; i++) {
    const entry = byContent[i]!;
    if (!sameContent(input, entry.input, 0)) continue;
    for (let j = i; j > 0; j--) byContent[j] = byContent[j - 1]!;
    byContent[0] = entry;
    // Frozen like the first one, so every object the package accepted is frozen; not
    // remembered by identity: a new object per call would only fill the WeakMap.
    freezeData(input, 0);
    return entry.config;
  }
  return undefined;
}

/**
 * Plain objects and arrays whose own properties are all enumerable data
 * properties, all the way down. Only such an input is remembered by content:
 * comparing later objects with it reads it again, and a getter could by then
 * return something other than what was validated; and the comparison sees
 * enumerable properties only.
 */
function isPlainData(value: object, depth: number): boolean {
  if (!isPlain(value)) return false;
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (descriptor === undefined || !("value" in descriptor)) return false;
    // Hidden from the comparison (for-in), not from validation: such an object is known by identity only.
    if (typeof key === "string" && !descriptor.enumerable && !(key === "length" && Array.isArray(value))) return false;
    const member: unknown = descriptor.value;
    if (typeof key === "string" && opaque(key, depth)) continue;
    if (depth < MAX_DEPTH && member !== null && typeof member === "object" && isPlain(member) && !isPlainData(member, depth + 1)) return false;
  }
  return true;
}

/** Freeze a validated input and remember it by identity and, when it is plain data, by content. */
export function remember(input: object, config: OidcConfig): void {
  freezeData(input, 0);
  byIdentity.set(input, config);
  if (!isPlainData(input, 0)) return;
  byContent.unshift({ input, config });
  if (byContent.length > CONFIG_CONTENT_CACHE_SIZE) byContent.pop();
}
