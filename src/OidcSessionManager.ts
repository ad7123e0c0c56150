import { BaseManager } from "ioserver";
import type { AppHandle } from "ioserver";
import { revokeSocket, revokeUserSockets } from "./lib/revoke.js";
import { registryOf, stateOf } from "./lib/socketRegistry.js";
import type { OidcAppHandle } from "./types.js";

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
}

/**
 * Where session records live. The default keeps them in memory, which is
 * right for one process; a shared store (e.g. Redis) plugs in here.
 */
export interface OidcSessionStore {
  add(record: OidcSessionRecord): void | Promise<void>;
  remove(socketId: string): void | Promise<void>;
  list(): OidcSessionRecord[] | Promise<OidcSessionRecord[]>;
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
}

export interface OidcSessionManagerOptions {
  /** Default: a new `MemorySessionStore`. */
  store?: OidcSessionStore;
}

/**
 * Register as `session`. The socket middleware reports every authenticated
 * socket to it (`registerSocket` / `unregisterSocket`, the seed's contract);
 * it lists them and disconnects them on demand, across every namespace of the
 * server. Disconnected clients receive `oidc:revoked` with
 * `{ code: "ERR_AUTH_REVOKED", reason }` first.
 */
export class OidcSessionManager extends BaseManager {
  protected static readonly options: OidcSessionManagerOptions = {};
  private readonly store: OidcSessionStore;

  /** A manager class with options: `OidcSessionManager.configure({ store })`. */
  static configure(options: OidcSessionManagerOptions): typeof OidcSessionManager {
    if (options?.store !== undefined) {
      for (const method of ["add", "remove", "list"] as const) {
        if (typeof options.store[method] !== "function") {
          throw new TypeError(`OidcSessionManager.configure: "store" must implement ${method}()`);
        }
      }
    }
    const frozen = Object.freeze({ ...options });
    return class ConfiguredOidcSessionManager extends OidcSessionManager {
      protected static override readonly options = frozen;
    };
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
    this.store = (this.constructor as typeof OidcSessionManager).options.store ?? new MemorySessionStore();
  }

  /** Called by `OidcSocketMiddleware` after a successful handshake. */
  async registerSocket(userId: string, socketId: string, sub: string): Promise<void> {
    const socket = registryOf(this.appHandle as OidcAppHandle).get(socketId);
    const context = socket === undefined ? undefined : stateOf(socket).context;
    await this.store.add({
      socketId,
      userId,
      sub,
      namespace: socket?.nsp.name ?? "/",
      connectedAt: Date.now(),
      expiresAt: context?.expiresAt ?? 0,
    });
  }

  /** Called by `OidcSocketMiddleware` when the socket goes away. */
  async unregisterSocket(socketId: string): Promise<void> {
    await this.store.remove(socketId);
  }

  /** Every live session. */
  async list(): Promise<OidcSessionRecord[]> {
    const registry = registryOf(this.appHandle as OidcAppHandle);
    const records = await this.store.list();
    return records.map((record) => {
      const socket = registry.get(record.socketId);
      const live = socket === undefined ? undefined : stateOf(socket).context;
      return live === undefined ? { ...record } : { ...record, expiresAt: live.expiresAt };
    });
  }

  /** The live sessions of a user, by local user id or `sub`. */
  async listByUser(userIdOrSub: string): Promise<OidcSessionRecord[]> {
    return (await this.list()).filter((record) => record.userId === userIdOrSub || record.sub === userIdOrSub);
  }

  /** Disconnect every socket of a user (by user id or `sub`); resolves to how many were disconnected. */
  async disconnectUser(userIdOrSub: string, reason?: string): Promise<number> {
    if (typeof userIdOrSub !== "string" || userIdOrSub === "") throw new TypeError("disconnectUser: a user id or sub is required");
    const count = revokeUserSockets(this.appHandle as OidcAppHandle, userIdOrSub, reason);
    this.appHandle.log(6, `[ioserver-oidc] disconnected ${count} socket(s) of user ${userIdOrSub}${reason ? `: ${reason}` : ""}`);
    return count;
  }

  /** Disconnect one socket; resolves to whether it was found. */
  async disconnectSocket(socketId: string, reason?: string): Promise<boolean> {
    if (typeof socketId !== "string" || socketId === "") throw new TypeError("disconnectSocket: a socket id is required");
    return revokeSocket(this.appHandle as OidcAppHandle, socketId, reason);
  }
}
