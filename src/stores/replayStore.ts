/**
 * Where the `jti` of accepted Logout Tokens are remembered, so a replayed
 * token is refused (Back-Channel Logout 1.0, section 2.6, step 8). One
 * operation: claim a key for a while; only the first claim succeeds.
 */

/** A store of recently seen keys. */
export interface OidcReplayStore {
  /**
   * Record `key` for `ttlMs` milliseconds. Resolves to `true` the first time
   * (the key was not recorded), `false` while it is recorded. Rejects when
   * the store cannot answer: the caller then refuses the request.
   */
  claim(key: string, ttlMs: number): Promise<boolean>;
}

export interface MemoryReplayStoreOptions {
  /**
   * Most keys held at once. Default 10000. When every key held is still
   * within its time, a new claim is refused (the promise rejects, the caller
   * answers "unavailable"): forgetting a key before it expires would let its
   * replay through.
   */
  maxEntries?: number;
}

/**
 * The default store: a Map in this process, right for a single node. Expired
 * keys are pruned lazily on each claim (no timers); the size is bounded, and
 * a full store refuses new claims rather than forget a key still in its time.
 * Only fully valid tokens and proofs are claimed, so the bound is reached by
 * legitimate volume (the provider's logouts, clients' DPoP proofs), not by
 * forged requests; size it for the peak volume within one key lifetime.
 */
export class MemoryReplayStore implements OidcReplayStore {
  /** Key → expiry (epoch ms), in insertion order. */
  private readonly entries = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(options: MemoryReplayStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries <= 0) throw new TypeError(`MemoryReplayStore: maxEntries must be a positive integer, got ${String(maxEntries)}`);
    this.maxEntries = maxEntries;
  }

  /** Keys currently recorded (expired ones may linger until the next claim). */
  get size(): number {
    return this.entries.size;
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- implements the asynchronous OidcReplayStore contract; async keeps a throw a rejection, like a remote store
  async claim(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    this.prune(now);
    const expiry = this.entries.get(key);
    if (expiry !== undefined && expiry > now) return false;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      throw new Error(`the replay store is full: ${this.maxEntries} keys, all still within their time (raise maxEntries, or use a shared store)`);
    }
    this.entries.set(key, now + Math.max(0, ttlMs));
    return true;
  }

  /**
   * Drop expired keys from the front (oldest first); when the map is full,
   * sweep it whole for keys that expired behind a longer-lived one, at most
   * once a second (a full store of live keys must not cost a sweep per claim).
   */
  private prune(now: number): void {
    for (const [key, expiry] of this.entries) {
      if (expiry > now) break;
      this.entries.delete(key);
    }
    if (this.entries.size >= this.maxEntries && now - this.sweptAt >= 1000) {
      this.sweptAt = now;
      for (const [key, expiry] of this.entries) if (expiry <= now) this.entries.delete(key);
    }
  }

  /** When the last whole sweep ran (epoch ms). */
  private sweptAt = -Infinity;
}

/**
 * The one Redis command used, as ioredis types it: `SET key value PX ttl NX`
 * resolves to `"OK"` when the key was set, `null` when it already existed.
 * Any client with this method fits (an ioredis `Redis` or `Cluster`, or a
 * small adapter over another client).
 */
export interface OidcReplayRedisClient {
  set(key: string, value: string, millisecondsToken: "PX", milliseconds: number, nx: "NX"): Promise<unknown>;
}

export interface RedisReplayStoreOptions {
  /** Prepended to every key. Default `"ioserver-oidc:logout-jti:"`. */
  prefix?: string;
  /** Milliseconds to wait for Redis before the claim fails. Default 2000. */
  timeout?: number;
}

/**
 * A store shared by every node through Redis: `SET <prefix><key> 1 PX <ttl> NX`,
 * atomic, so the same token posted to two nodes is accepted once. The keys
 * expire in Redis by themselves. A Redis error or a reply slower than
 * `timeout` rejects: the logout route logs it and carries the logout out
 * anyway (a verified logout is never lost; its `jti` is then not recorded).
 */
export function redisReplayStore(client: OidcReplayRedisClient, options: RedisReplayStoreOptions = {}): OidcReplayStore {
  if (client === null || typeof client !== "object" || typeof client.set !== "function") {
    throw new TypeError("redisReplayStore: client must have a set() method (an ioredis instance)");
  }
  const prefix = options.prefix ?? "ioserver-oidc:logout-jti:";
  if (typeof prefix !== "string") throw new TypeError("redisReplayStore: prefix must be a string");
  const timeout = options.timeout ?? 2_000;
  if (!Number.isInteger(timeout) || timeout <= 0) throw new TypeError(`redisReplayStore: timeout must be a positive integer (ms), got ${String(timeout)}`);

  return {
    async claim(key: string, ttlMs: number): Promise<boolean> {
      const ttl = Math.max(1, Math.ceil(ttlMs));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const pending = Promise.resolve().then(() => client.set(prefix + key, "1", "PX", ttl, "NX"));
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer SET NX within ${timeout} ms`)), timeout);
      });
      try {
        const reply = await Promise.race([pending, deadline]);
        if (reply === "OK") return true;
        if (reply === null) return false;
        throw new Error(`unexpected reply to SET NX: ${JSON.stringify(reply)}`);
      } finally {
        clearTimeout(timer);
        pending.catch(() => undefined);
      }
    },
  };
}
