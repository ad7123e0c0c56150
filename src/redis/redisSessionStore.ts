/**
 * A Redis-backed `OidcSessionStore`: every node writes its live sessions with
 * a TTL, refreshed by the session manager's heartbeat, so `list()` and
 * `listByUser()` see the sessions of every node and a crashed node's entries
 * expire on their own.
 *
 * Keys (`prefix` defaults to `ioserver-oidc:`; `ttl` in seconds, default 60):
 *
 * | key | type | content | expiry |
 * |---|---|---|---|
 * | `<prefix>session:<socketId>` | string | the session record, JSON | `ttl`, re-set by every heartbeat (every `ttl / 3`) |
 * | `<prefix>sessions` | set | every socket id | `ttl`, re-set by every write |
 * | `<prefix>user:<userId>` | set | the user's socket ids | `ttl`, re-set by every write |
 * | `<prefix>subject:<n>:<iss>:<sub>` | set | the subject's socket ids (`n`: the issuer's length) | `ttl`, re-set by every write |
 *
 * A set member whose `session:` key has expired (its node stopped
 * heartbeating) is skipped and removed by the next read that meets it.
 *
 * A read is one round trip: a Lua script (`EVALSHA`, loaded with `EVAL` when
 * Redis answers `NOSCRIPT`) returns an index set's members with their
 * records. For a set of more than 500 members (`list()` at scale) it returns
 * the members only, and the records are read in batches of 500 (`MGET`), so
 * Redis serves other clients in between. A client without `eval`/`evalsha`
 * is read with `SMEMBERS` then `MGET`. Every key of the store, the script's
 * included, must be in one hash slot with Redis Cluster: see `prefix`.
 *
 * The client is yours (ioredis is an optional peer dependency; this module
 * never imports it): pass an `ioredis` instance, preferably created with
 * `enableOfflineQueue: false` so commands fail at once while Redis is down
 * (the manager then degrades to node-local sessions) instead of queueing.
 */
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { OidcSessionRecord, OidcSessionStore } from "../stores/sessionStore.js";
import { subjectKey } from "../claims/identity.js";
import { execAll, keyPrefix, requireClient } from "./client.js";

/** The commands the store queues in a transaction (`MULTI`), as ioredis names them. */
export interface RedisSessionStoreMulti {
  set(key: string, value: string, unit: "PX", milliseconds: number): RedisSessionStoreMulti;
  sadd(key: string, member: string): RedisSessionStoreMulti;
  srem(key: string, member: string): RedisSessionStoreMulti;
  del(key: string): RedisSessionStoreMulti;
  pexpire(key: string, milliseconds: number): RedisSessionStoreMulti;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/**
 * The part of a Redis client the store uses — an `ioredis` `Redis` instance
 * fits, without this package depending on ioredis.
 */
export interface RedisSessionStoreClient {
  multi(): RedisSessionStoreMulti;
  get(key: string): Promise<string | null>;
  mget(keys: string[]): Promise<Array<string | null>>;
  smembers(key: string): Promise<string[]>;
  /** With `eval`: an index set and its records in one round trip (optional: without them, `smembers` then `mget`). */
  evalsha?(sha: string, keyCount: number, ...args: string[]): Promise<unknown>;
  eval?(script: string, keyCount: number, ...args: string[]): Promise<unknown>;
}

export interface RedisSessionStoreOptions {
  /** An ioredis client (`new Redis(url, { enableOfflineQueue: false })`); it may be the adapter's publisher. */
  client: RedisSessionStoreClient;
  /** Key prefix. Default `"ioserver-oidc:"`. With Redis Cluster use a hash tag, e.g. `"{ioserver-oidc}:"`, so every key lives in one slot (transactions, `MGET` and the read script touch several keys). */
  prefix?: string;
  /** Seconds a node's entries outlive its last heartbeat (heartbeat every `ttl / 3`). Default 60, at least 1. Use the same value on every node. */
  ttl?: number;
  /** This node's id, stored as each record's `node`. Default `<hostname>:<pid>:<random>`. */
  nodeId?: string;
}

/** The store returned by {@link redisSessionStore}. */
export interface RedisSessionStore extends OidcSessionStore {
  readonly prefix: string;
  /** Seconds. */
  readonly ttl: number;
  readonly nodeId: string;
  /** Milliseconds: `ttl / 3`. */
  readonly heartbeatInterval: number;
  add(record: OidcSessionRecord): Promise<void>;
  remove(socketId: string): Promise<void>;
  list(): Promise<OidcSessionRecord[]>;
  listByUser(userId: string): Promise<OidcSessionRecord[]>;
  listBySubject(iss: string, sub: string): Promise<OidcSessionRecord[]>;
  get(socketId: string): Promise<OidcSessionRecord | undefined>;
  touch(records: OidcSessionRecord[]): Promise<void>;
  onReconnect(listener: () => void): () => void;
  close(): void;
}

/** Records per transaction, so a large heartbeat does not become one huge reply. */
const BATCH = 500;

/**
 * KEYS[1]: an index set; ARGV[1]: the `session:` key prefix; ARGV[2]: the
 * most records to return. Reply: `{1, id, record, id, record, …}` (a missing
 * record is nil), or `{0, id, id, …}` when the set has more members than
 * that (the caller then reads the records in batches).
 */
const READ_SCRIPT = `local ids = redis.call("SMEMBERS", KEYS[1])
if #ids > tonumber(ARGV[2]) then
  table.insert(ids, 1, 0)
  return ids
end
local reply = { 1 }
for _, id in ipairs(ids) do
  reply[#reply + 1] = id
  reply[#reply + 1] = redis.call("GET", ARGV[1] .. id)
end
return reply`;
const READ_SHA = createHash("sha1").update(READ_SCRIPT).digest("hex");

/** An index set's members, with their records (`undefined`: not read yet, `null`: absent). */
interface IndexRead {
  ids: string[];
  values?: Array<string | null>;
}

/** The script's reply, checked: Redis turns a Lua `false` (a missing record) into nil. */
function scriptReply(reply: unknown): IndexRead {
  // A number, or its digits for a client created with `stringNumbers`.
  const kind = Array.isArray(reply) ? Number(reply[0]) : NaN;
  if (!Array.isArray(reply) || (kind !== 0 && kind !== 1)) throw new Error("redisSessionStore: unexpected reply from the read script");
  if (kind === 0) return { ids: reply.slice(1).map(String) };
  const ids: string[] = [];
  const values: Array<string | null> = [];
  for (let i = 1; i + 1 < reply.length; i += 2) {
    ids.push(String(reply[i]));
    const value: unknown = reply[i + 1];
    values.push(typeof value === "string" ? value : null);
  }
  return { ids, values };
}

function isRecord(value: unknown): value is OidcSessionRecord {
  if (value === null || typeof value !== "object") return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r["socketId"] === "string" &&
    typeof r["userId"] === "string" &&
    typeof r["sub"] === "string" &&
    typeof r["namespace"] === "string" &&
    typeof r["connectedAt"] === "number" &&
    typeof r["expiresAt"] === "number"
  );
}

function parse(json: string | null): OidcSessionRecord | undefined {
  if (json === null) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}


/**
 * Session records in Redis, shared by every node:
 * `OidcSessionManager.configure({ store: redisSessionStore({ client }) })`.
 */
export function redisSessionStore(options: RedisSessionStoreOptions): RedisSessionStore {
  if (options === null || typeof options !== "object") throw new TypeError("redisSessionStore: options must be an object");
  const { client } = options;
  requireClient("redisSessionStore", client, ["multi", "get", "mget", "smembers"]);
  const prefix = keyPrefix("redisSessionStore", options.prefix);
  const ttl = options.ttl ?? 60;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 1) {
    throw new TypeError(`redisSessionStore: "ttl" must be a number of seconds >= 1, got ${String(ttl)}`);
  }
  const nodeId = options.nodeId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  if (typeof nodeId !== "string" || nodeId === "") throw new TypeError(`redisSessionStore: "nodeId" must be a non-empty string`);
  const ttlMs = Math.round(ttl * 1000);

  const keys = {
    session: (socketId: string) => `${prefix}session:${socketId}`,
    all: `${prefix}sessions`,
    user: (userId: string) => `${prefix}user:${userId}`,
    subject: (iss: string | undefined, sub: string) => `${prefix}subject:${subjectKey(iss ?? "", sub)}`,
  };
  /**
   * This node's live sessions' index entries, so `remove` needs no read. A
   * session is written only while it is here: `remove` takes it out, so a
   * heartbeat still writing its later batches never writes it back.
   */
  const owned = new Map<string, { userId: string; sub: string; iss?: string }>();
  /**
   * Reconnections (see `OidcSessionStore.onReconnect`): the client's "ready"
   * after a "close" (ioredis emits both; a client without `on` has none).
   * The client's listeners are there only while someone listens.
   */
  const reconnectListeners = new Set<() => void>();
  const events = client as Partial<EventClient>;
  let lost = false;
  const onClose = () => {
    lost = true;
  };
  const onReady = () => {
    if (!lost) return;
    lost = false;
    for (const listener of [...reconnectListeners]) listener();
  };
  const watch = (on: boolean) => {
    if (typeof events.on !== "function" || typeof events.off !== "function") return;
    if (on) {
      events.on.call(client, "close", onClose);
      events.on.call(client, "ready", onReady);
    } else {
      events.off.call(client, "close", onClose);
      events.off.call(client, "ready", onReady);
    }
  };

  const indexOf = (record: OidcSessionRecord) => (record.iss === undefined ? { userId: record.userId, sub: record.sub } : { userId: record.userId, sub: record.sub, iss: record.iss });

  async function write(records: OidcSessionRecord[]): Promise<void> {
    // At least one transaction, even with nothing to refresh: a heartbeat doubles as the probe that notices an outage's end.
    for (let start = 0; start === 0 || start < records.length; start += BATCH) {
      const multi = client.multi();
      const sets = new Set<string>([keys.all]);
      for (const record of records.slice(start, start + BATCH)) {
        // Removed since this write began (checked as each batch is queued, after the previous one's await).
        if (!owned.has(record.socketId)) continue;
        const stored: OidcSessionRecord = { ...record, node: record.node ?? nodeId };
        multi.set(keys.session(record.socketId), JSON.stringify(stored), "PX", ttlMs);
        multi.sadd(keys.all, record.socketId);
        multi.sadd(keys.user(record.userId), record.socketId);
        multi.sadd(keys.subject(record.iss, record.sub), record.socketId);
        sets.add(keys.user(record.userId)).add(keys.subject(record.iss, record.sub));
      }
      for (const key of sets) multi.pexpire(key, ttlMs);
      await execAll(multi);
    }
  }

  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with `.call(client, …)`: read once so that `typeof` and the call see the same functions
  const script = typeof client.evalsha === "function" && typeof client.eval === "function" ? { evalsha: client.evalsha, eval: client.eval } : undefined;

  /** An index set's members and, for a set of at most BATCH, their records: one round trip with the script. */
  async function readIndex(indexKey: string): Promise<IndexRead> {
    if (script === undefined) return { ids: await client.smembers(indexKey) };
    const args = [indexKey, keys.session(""), String(BATCH)];
    try {
      return scriptReply(await script.evalsha.call(client, READ_SHA, 1, ...args));
    } catch (error) {
      // Not loaded (first use, or Redis restarted or flushed its scripts): EVAL runs it and loads it.
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return scriptReply(await script.eval.call(client, READ_SCRIPT, 1, ...args));
    }
  }

  /** The live records of an index set; members whose record expired (or is unreadable) are removed from `indexes`. */
  async function load(indexKey: string, indexes: string[]): Promise<OidcSessionRecord[]> {
    const { ids, values } = await readIndex(indexKey);
    const records: OidcSessionRecord[] = [];
    const stale: string[] = [];
    const take = (batch: string[], read: Array<string | null>) => {
      batch.forEach((id, i) => {
        const record = parse(read[i] ?? null);
        if (record === undefined) stale.push(id);
        else records.push(record);
      });
    };
    if (values !== undefined) take(ids, values);
    else {
      for (let start = 0; start < ids.length; start += BATCH) {
        const batch = ids.slice(start, start + BATCH);
        take(batch, await client.mget(batch.map(keys.session)));
      }
    }
    if (stale.length > 0) {
      const multi = client.multi();
      for (const id of stale) for (const key of indexes) multi.srem(key, id);
      await execAll(multi);
    }
    return records;
  }

  return {
    prefix,
    ttl,
    nodeId,
    heartbeatInterval: Math.max(250, Math.floor(ttlMs / 3)),

    async add(record) {
      owned.set(record.socketId, indexOf(record));
      await write([record]);
    },

    async remove(socketId) {
      let known = owned.get(socketId);
      owned.delete(socketId);
      if (known === undefined) known = parse(await client.get(keys.session(socketId)));
      const multi = client.multi().del(keys.session(socketId)).srem(keys.all, socketId);
      if (known !== undefined) multi.srem(keys.user(known.userId), socketId).srem(keys.subject(known.iss, known.sub), socketId);
      await execAll(multi);
    },

    async list() {
      return load(keys.all, [keys.all]);
    },

    async listByUser(userId) {
      const userKey = keys.user(userId);
      const records = await load(userKey, [userKey]);
      return records.filter((record) => record.userId === userId);
    },

    async listBySubject(iss, sub) {
      const indexKey = keys.subject(iss, sub);
      const records = await load(indexKey, [indexKey]);
      return records.filter((record) => record.sub === sub && record.iss === iss);
    },

    async get(socketId) {
      return parse(await client.get(keys.session(socketId)));
    },

    async touch(records) {
      // The caller's live sessions now (see OidcSessionStore.touch); a remove() from here on wins.
      owned.clear();
      for (const record of records) owned.set(record.socketId, indexOf(record));
      await write(records);
    },

    onReconnect(listener) {
      if (reconnectListeners.size === 0) watch(true);
      reconnectListeners.add(listener);
      return () => {
        if (reconnectListeners.delete(listener) && reconnectListeners.size === 0) watch(false);
      };
    },

    close() {
      owned.clear();
      if (reconnectListeners.size > 0) watch(false);
      reconnectListeners.clear();
    },
  };
}

/** The events of an ioredis client this store listens to, when it can. */
interface EventClient {
  on(event: "close" | "ready", listener: () => void): unknown;
  off(event: "close" | "ready", listener: () => void): unknown;
}
