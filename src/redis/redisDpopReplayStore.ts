/**
 * A Redis-backed replay store for DPoP proofs (`dpop.replayStore`): a proof
 * accepted by one node is refused as replayed by every other node sharing
 * the Redis.
 *
 * | key | type | content | TTL |
 * |---|---|---|---|
 * | `<prefix><hash>` | string | `1` | until no node whose clock is within `clockTolerance` of the accepting node's could still accept a proof with that `iat` (`iat + maxAge + 2 × clockTolerance`), at least 1 s |
 *
 * `<hash>` is the base64url SHA-256 of the proof key's thumbprint and the
 * proof's `jti` (computed by the verifier): neither the `jti` nor anything
 * else the client sent is written as such. One atomic command per accepted
 * proof, `SET <key> 1 PX <ttl> NX`, made only once every other check of the
 * proof has passed (forged proofs write nothing). The keys expire in Redis
 * by themselves.
 *
 * Fail closed: a Redis error, or no answer within `timeout`, refuses the
 * request with 503 `ERR_AUTH_UNAVAILABLE` (never a 401 the client would take
 * for a bad proof, never an acceptance that could be a replay). Create the
 * client with `enableOfflineQueue: false` so commands fail at once while
 * Redis is down instead of queueing until the timeout.
 */
import { redisReplayStore, type OidcReplayRedisClient, type OidcReplayStore } from "../stores/replayStore.js";

export interface RedisDpopReplayStoreOptions {
  /** Prepended to every key. Default `"ioserver-oidc:dpop-jti:"`. */
  prefix?: string;
  /** Milliseconds to wait for Redis before the request is refused with 503. Default 2000. */
  timeout?: number;
}

/** The default key prefix of {@link redisDpopReplayStore}. */
export const DPOP_REPLAY_PREFIX = "ioserver-oidc:dpop-jti:";

/**
 * The replay store of DPoP proofs shared by every node through Redis, for
 * `dpop: { replayStore }`. `client` is an ioredis `Redis` (or `Cluster`), or
 * anything with its `set(key, value, "PX", ms, "NX")`.
 *
 * ```ts
 * const redis = new Redis(url, { enableOfflineQueue: false });
 * OidcConfigManager.configure({ ..., dpop: { replayStore: redisDpopReplayStore(redis) } });
 * ```
 */
export function redisDpopReplayStore(client: OidcReplayRedisClient, options: RedisDpopReplayStoreOptions = {}): OidcReplayStore {
  if (client === null || typeof client !== "object" || typeof (client as { set?: unknown }).set !== "function") {
    throw new TypeError("redisDpopReplayStore: client must have a set() method (an ioredis instance)");
  }
  if (options === null || typeof options !== "object") throw new TypeError("redisDpopReplayStore: options must be an object");
  const prefix = options.prefix ?? DPOP_REPLAY_PREFIX;
  if (typeof prefix !== "string") throw new TypeError("redisDpopReplayStore: prefix must be a string");
  return redisReplayStore(client, { prefix, timeout: options.timeout });
}
