/**
 * Where session records live: one interface, the memory implementation beside
 * it (`redisSessionStore()` is the shared one, in `src/redis/`).
 */
/** One live authenticated socket. */
export interface OidcSessionRecord {
  socketId: string;
  userId: string;
  sub: string;
  /** Socket.IO namespace, e.g. `/chat`. */
  namespace: string;
  /** Epoch ms. */
  connectedAt: number;
  /** The current token's expiry, epoch ms (moves forward on refresh). */
  expiresAt: number;
  /** The token's `sid` claim (the session at the identity provider), when it carries one. */
  sid?: string;
  /** The token's `iss` claim. */
  iss?: string;
  /** The node holding the socket (the store's `nodeId`), with a shared store such as `redisSessionStore`. */
  node?: string;
}

/**
 * Where session records live. The default keeps them in memory, which is
 * right for one process; `redisSessionStore()` shares them between nodes.
 * `add`, `remove` and `list` are required, the rest optional.
 */
export interface OidcSessionStore {
  add(record: OidcSessionRecord): void | Promise<void>;
  remove(socketId: string): void | Promise<void>;
  /** Every session (of every node, for a shared store). */
  list(): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
  /** The sessions whose `userId` is the given value; default: `list()` filtered. */
  listByUser?(userId: string): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
  /** The sessions whose token's issuer is `iss` and `sub` is `sub`; default: `list()` filtered. */
  listBySubject?(iss: string, sub: string): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
  /** One session by socket id. */
  get?(socketId: string): OidcSessionRecord | undefined | Promise<OidcSessionRecord | undefined>;
  /**
   * Re-write this node's live sessions (refreshing their TTLs). The manager
   * calls it every `heartbeatInterval` ms and, after an outage, to heal the
   * store. Must reach the backend even with no records (it doubles as a probe).
   * `records` are live when it is called; a session `remove`d while it runs
   * must not be written afterwards (check before each batch that awaits).
   */
  touch?(records: OidcSessionRecord[]): void | Promise<void>;
  /**
   * For a shared store whose backend can come back empty (a restarted
   * Redis): call `listener` each time the connection to the backend is
   * established again after it was lost. The manager then writes this
   * node's sessions back at once, instead of at its next heartbeat (a node
   * that made no store call during a short outage would not notice it
   * otherwise). Returns a function that stops the calls.
   */
  onReconnect?(listener: () => void): () => void;
  /** How often `touch` runs, in ms. */
  readonly heartbeatInterval?: number;
  /** This node's id, stamped on its records as `node`. */
  readonly nodeId?: string;
  /** Release what the store holds (not the Redis client: the app owns it). */
  close?(): void | Promise<void>;
}

/** The default store: a Map in this process. */
export class MemorySessionStore implements OidcSessionStore {
  private readonly records = new Map<string, OidcSessionRecord>();
  add(record: OidcSessionRecord): void {
    this.records.set(record.socketId, record);
  }
  remove(socketId: string): void {
    this.records.delete(socketId);
  }
  list(): OidcSessionRecord[] {
    return [...this.records.values()];
  }
  listByUser(userId: string): OidcSessionRecord[] {
    return this.list().filter((record) => record.userId === userId);
  }
  listBySubject(iss: string, sub: string): OidcSessionRecord[] {
    return this.list().filter((record) => record.sub === sub && record.iss === iss);
  }
  get(socketId: string): OidcSessionRecord | undefined {
    return this.records.get(socketId);
  }
}
