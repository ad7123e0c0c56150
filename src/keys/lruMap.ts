/**
 * A Map bounded by entry count: past `max` entries the least recently used
 * goes. For the process-wide caches of keys/, which are keyed by what
 * configurations name (issuers, JWKS URIs) and so must not grow with every
 * configuration a long-running process ever sees.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  /** The most recently used key: looking it up again (the common case, one issuer) moves nothing. */
  private newest: K | undefined;

  constructor(readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The value of `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined && key !== this.newest) {
      this.map.delete(key);
      this.map.set(key, value);
      this.newest = key;
    }
    return value;
  }

  /** Store `value` as the most recently used, dropping the least recently used entry when over `max`. */
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    this.newest = key;
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }
}
