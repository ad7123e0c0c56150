/**
 * A Redis-backed `OidcRevocationStore`: a revocation made on one node holds on
 * every node, including nodes that start (or reconnect) later.
 *
 * | key / channel | type | content |
 * |---|---|---|
 * | `<prefix>revocations` | sorted set | each revocation as JSON, scored by the epoch ms until which it holds; members past their score are removed by every write and read |
 * | `<prefix>revocations` | pub/sub channel | each new revocation, as JSON, for the nodes' in-memory deny-lists |
 *
 * Nodes never ask Redis on a request: each keeps an in-memory mirror, loaded
 * with `list()` at start and after a reconnection, and kept current by the
 * channel. The subscription needs a connection of its own (a Redis
 * connection in subscriber mode runs no other commands): pass `subscriber`,
 * or the store makes one with `client.duplicate()` and closes it in `close()`.
 *
 * The clients are yours (ioredis is an optional peer dependency; this module
 * never imports it); create them with `enableOfflineQueue: false` so commands
 * fail at once while Redis is down instead of queueing.
 */
import type { OidcRevocation } from "../stores/denyList.js";
import type { OidcRevocationStore } from "../stores/revocationStore.js";
import { execAll, keyPrefix, requireClient } from "./client.js";

/** The commands the store queues in a transaction (`MULTI`), as ioredis names them. */
export interface RedisRevocationMulti {
  zadd(key: string, score: number, member: string): RedisRevocationMulti;
  zremrangebyscore(key: string, min: number | string, max: number | string): RedisRevocationMulti;
  publish(channel: string, message: string): RedisRevocationMulti;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/** A connection in subscriber mode (an ioredis client). */
export interface RedisRevocationSubscriber {
  subscribe(channel: string): Promise<unknown>;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  off?(event: string, listener: (...args: unknown[]) => void): unknown;
  unsubscribe?(channel: string): Promise<unknown>;
  quit?(): Promise<unknown>;
  disconnect?(): void;
}

/** The part of a Redis client the store uses — an ioredis `Redis` instance fits. */
export interface RedisRevocationClient {
  multi(): RedisRevocationMulti;
  zrangebyscore(key: string, min: number | string, max: number | string): Promise<string[]>;
  duplicate?(options?: Record<string, unknown>): RedisRevocationSubscriber;
}

export interface RedisRevocationStoreOptions {
  /** An ioredis client (`new Redis(url, { enableOfflineQueue: false })`). */
  client: RedisRevocationClient;
  /** A client for the subscription; default `client.duplicate()` (then closed by the store). */
  subscriber?: RedisRevocationSubscriber;
  /** Key and channel prefix. Default `"ioserver-oidc:"`. */
  prefix?: string;
}

/** The store returned by {@link redisRevocationStore}. */
export interface RedisRevocationStore extends OidcRevocationStore {
  readonly prefix: string;
  add(entry: OidcRevocation): Promise<void>;
  list(): Promise<OidcRevocation[]>;
  subscribe(listener: { added(entry: OidcRevocation): void; resync(): void }): () => Promise<void>;
  close(): Promise<void>;
}

const KINDS = new Set(["subject", "session", "user"]);

/** A revocation read back from Redis, or undefined when it is not one (never trusted blindly). */
function parse(text: string): OidcRevocation | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r["kind"] !== "string" || !KINDS.has(r["kind"]) || typeof r["iss"] !== "string" || typeof r["value"] !== "string" || r["value"] === "") return undefined;
  if (typeof r["at"] !== "number" || !Number.isFinite(r["at"]) || typeof r["until"] !== "number" || !Number.isFinite(r["until"])) return undefined;
  const entry: OidcRevocation = { kind: r["kind"] as OidcRevocation["kind"], iss: r["iss"], value: r["value"], at: r["at"], until: r["until"] };
  if (r["withoutSid"] === true) entry.withoutSid = true;
  return entry;
}


/**
 * Revocations in Redis, shared by every node:
 * `OidcSessionManager.configure({ revocationStore: redisRevocationStore({ client }) })`.
 */
export function redisRevocationStore(options: RedisRevocationStoreOptions): RedisRevocationStore {
  if (options === null || typeof options !== "object") throw new TypeError("redisRevocationStore: options must be an object");
  const { client } = options;
  requireClient("redisRevocationStore", client, ["multi", "zrangebyscore"]);
  if (options.subscriber === undefined && typeof client.duplicate !== "function") {
    throw new TypeError(`redisRevocationStore: pass "subscriber", or a "client" with duplicate()`);
  }
  const prefix = keyPrefix("redisRevocationStore", options.prefix);
  const key = `${prefix}revocations`;
  let owned: RedisRevocationSubscriber | undefined;
  /** The store's own subscriber: it queues commands until connected, and its connection errors are the outage the manager already reports. */
  const ownSubscriber = (): RedisRevocationSubscriber => {
    const made = client.duplicate!({ enableOfflineQueue: true });
    (made as unknown as { on(event: "error", listener: () => void): unknown }).on("error", () => undefined);
    return made;
  };
  const subscriptions = new Set<() => Promise<void>>();

  const store: RedisRevocationStore = {
    prefix,

    async add(entry) {
      const member = JSON.stringify(entry);
      await execAll(client.multi().zremrangebyscore(key, "-inf", Date.now()).zadd(key, entry.until, member).publish(key, member));
    },

    async list() {
      const now = Date.now();
      const members = await client.zrangebyscore(key, `(${now}`, "+inf");
      const entries: OidcRevocation[] = [];
      for (const member of members) {
        const entry = parse(member);
        if (entry !== undefined) entries.push(entry);
      }
      return entries;
    },

    subscribe(listener) {
      // A connection of its own queues commands until it is connected (the app's may be made to fail fast).
      const subscriber = options.subscriber ?? (owned ??= ownSubscriber());
      let subscribed = false;
      const onMessage = (channel: string, message: string) => {
        if (channel !== key) return;
        const entry = parse(message);
        if (entry !== undefined) listener.added(entry);
      };
      // Subscribe on every "ready" (a SUBSCRIBE that failed while the connection was down is not
      // restored by the client), and after a reconnection catch up with what was missed meanwhile.
      const subscribe = () =>
        subscriber.subscribe(key).then(
          () => {
            if (subscribed) listener.resync();
            subscribed = true;
          },
          () => undefined, // not connected: the next "ready" subscribes
        );
      const onReady = () => void subscribe();
      subscriber.on("message", onMessage);
      subscriber.on("ready", onReady);
      void subscribe();
      const stop = async () => {
        subscriptions.delete(stop);
        subscriber.off?.("message", onMessage as (...args: unknown[]) => void);
        subscriber.off?.("ready", onReady);
        if (subscriber !== owned) await subscriber.unsubscribe?.(key).catch(() => undefined);
      };
      subscriptions.add(stop);
      return stop;
    },

    async close() {
      for (const stop of [...subscriptions]) await stop();
      const mine = owned;
      owned = undefined;
      if (mine !== undefined) {
        if (typeof mine.quit === "function") await mine.quit().catch(() => mine.disconnect?.());
        else mine.disconnect?.();
      }
    },
  };
  return store;
}
