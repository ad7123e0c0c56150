import { BaseManager } from "ioserver";
import type { AppHandle } from "ioserver";
import { clusterOf } from "../sockets/cluster.js";
import { OIDC_EVENTS, revokedPayload } from "../sockets/protocol.js";
import { endRevokedSockets, revokeSocket } from "../sockets/revoke.js";
import { DEFAULT_CLUSTER_TIMEOUT, issuersFor, revokeSessionId, revokeSubject, revokeUser, subjectContexts } from "../sockets/revocations.js";
import { SessionBook } from "../sockets/sessionBook.js";
import { connectRevocationStore, type OidcRevocationStore } from "../stores/revocationStore.js";
import { MemorySessionStore, type OidcSessionRecord, type OidcSessionStore } from "../stores/sessionStore.js";
import type { OidcAppHandle } from "../types.js";
import { oidcLog } from "../util/log.js";
import { describeError } from "../util/text.js";
import { positiveOption } from "../util/validate.js";
import { configuredClass } from "./configure.js";

/** Options of `OidcSessionManager#disconnectSubject`. */
export interface OidcDisconnectSubjectOptions {
  /**
   * Only tokens from this issuer (their `iss` claim, compared exactly). Without
   * it, every socket whose token's `sub` is the given value, whichever issuer
   * minted it.
   */
  iss?: string;
  /** Sent to the clients with `oidc:revoked`. */
  reason?: string;
  /**
   * Only the sockets whose current token carries no `sid` claim (a back-channel
   * logout naming a `sid` reaches those too: nothing tells their session
   * apart). Needs `iss`.
   */
  withoutSid?: boolean;
}

export interface OidcSessionManagerOptions {
  /** Default: a new `MemorySessionStore`. For several nodes: `redisSessionStore({ client })`. */
  store?: OidcSessionStore;
  /**
   * Where revocations are shared between nodes, so that a revoked session
   * stays revoked on every node (`redisRevocationStore({ client })`).
   * Default: this process only.
   */
  revocationStore?: OidcRevocationStore;
  /** Longest wait, in ms, for one store call before the store counts as unavailable. Default 2000. */
  storeTimeout?: number;
  /** Longest wait, in ms, for the other nodes' answers when counting the sockets a revocation reaches. Default 5000. */
  clusterTimeout?: number;
}

function positive(value: unknown, name: string): void {
  positiveOption(value, 0, (expected) => new TypeError(`OidcSessionManager.configure: "${name}" ${expected.replace("number", "number of ms")}`));
}

/**
 * Register as `session`. The socket middleware reports every authenticated
 * socket to it (`registerSocket` / `unregisterSocket`, the socket middleware's contract);
 * it lists them and disconnects them on demand, across every namespace of the
 * server — and, with `redisSessionStore` and `attachRedisAdapter`, across
 * every node. Disconnected clients receive `oidc:revoked` with
 * `{ code: "ERR_AUTH_REVOKED", reason }` first.
 *
 * Revocations go through Socket.IO's adapter: an authenticated socket is in
 * the room `oidc:iss-sub:<iss>:<sub>`, plus `oidc:user:<userId>` when its
 * local user id differs from its `sub`, plus `oidc:iss-sid:<iss>:<sid>` and
 * the shared `oidc:with-sid` when its token has a `sid` (see `oidcRoom`), and
 * a revocation is a broadcast to a union of those rooms (by `sub` or `sid`
 * alone: one room per configured issuer).
 *
 * When the store fails (Redis down), sessions degrade to this node's (see
 * `sockets/sessionBook.ts`); handshakes go on.
 */
export class OidcSessionManager extends BaseManager {
  protected static readonly options: OidcSessionManagerOptions = {};
  private readonly sessions: SessionBook;
  private readonly clusterTimeout: number;
  private stopped = false;
  private readonly closer = () => this.stop();
  /** Disconnects the app's deny-list from the shared revocation store, when one was given. */
  private readonly disconnectRevocations: (() => Promise<void>) | undefined;

  /** A manager class with options: `OidcSessionManager.configure({ store })`. */
  static configure(options: OidcSessionManagerOptions): typeof OidcSessionManager {
    if (options === null || typeof options !== "object") throw new TypeError("OidcSessionManager.configure: options must be an object");
    if (options.store !== undefined) {
      for (const method of ["add", "remove", "list"] as const) {
        if (typeof options.store?.[method] !== "function") {
          throw new TypeError(`OidcSessionManager.configure: "store" must implement ${method}()`);
        }
      }
    }
    positive(options.storeTimeout, "storeTimeout");
    positive(options.clusterTimeout, "clusterTimeout");
    if (options.revocationStore !== undefined) {
      for (const method of ["add", "list"] as const) {
        if (typeof options.revocationStore?.[method] !== "function") {
          throw new TypeError(`OidcSessionManager.configure: "revocationStore" must implement ${method}()`);
        }
      }
    }
    return configuredClass(OidcSessionManager, options);
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
    const options = (this.constructor as typeof OidcSessionManager).options;
    this.sessions = new SessionBook(this.app, options.store ?? new MemorySessionStore(), options.storeTimeout ?? 2_000);
    this.clusterTimeout = options.clusterTimeout ?? DEFAULT_CLUSTER_TIMEOUT;
    this.disconnectRevocations =
      options.revocationStore === undefined ? undefined : connectRevocationStore(this.app, options.revocationStore, (entry) => endRevokedSockets(this.app, entry));
    clusterOf(this.app).closers.add(this.closer);
  }

  private get app(): OidcAppHandle {
    return this.appHandle;
  }

  /** Whether the store is currently unavailable (sessions are this node's only). */
  get degraded(): boolean {
    return this.sessions.degraded;
  }

  /** Called by `OidcSocketMiddleware` after a successful handshake. Never fails because of the store. */
  async registerSocket(userId: string, socketId: string, sub: string): Promise<void> {
    await this.sessions.register(userId, socketId, sub);
  }

  /** Called by `OidcSocketMiddleware` when the socket goes away. */
  async unregisterSocket(socketId: string): Promise<void> {
    await this.sessions.unregister(socketId);
  }

  /** Every live session: of every node with a shared store; this node's only while the store is unavailable. */
  async list(): Promise<OidcSessionRecord[]> {
    return this.sessions.list();
  }

  /**
   * The live sessions of a user, by `userId` (same scope as `list()`): the
   * users manager's id, else the id derived from the subject (the `sub` with
   * one trusted issuer, `<iss>#<sub>` with several). A `sub` is not a user
   * id: use `listBySubject` for that.
   */
  async listByUser(userId: string): Promise<OidcSessionRecord[]> {
    if (typeof userId !== "string" || userId === "") throw new TypeError("listByUser: a user id is required");
    return this.sessions.listByUser(userId);
  }

  /**
   * The live sessions of a subject: tokens whose `sub` is `sub`, from the
   * issuer `options.iss` — or from any trusted issuer without it (several
   * issuers may use the same `sub` for different people: pass `iss`).
   */
  async listBySubject(sub: string, options: { iss?: string } = {}): Promise<OidcSessionRecord[]> {
    if (typeof sub !== "string" || sub === "") throw new TypeError("listBySubject: a sub is required");
    if (options === null || typeof options !== "object") throw new TypeError("listBySubject: options must be an object");
    const { iss } = options;
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("listBySubject: iss must be a non-empty string");
    const issuers = iss !== undefined ? [iss] : issuersFor(this.app, "listBySubject", subjectContexts(this.app, sub));
    return this.sessions.listBySubject(sub, issuers);
  }

  /**
   * Disconnect every socket of a user, by `userId` (see `listByUser`), on
   * every namespace — and every node, with the Redis adapter. Never a socket
   * of another user: a `sub` that happens to equal the id is not matched (use
   * `disconnectSubject` for subjects). Resolves to the number of sockets
   * found: this node's, plus those the other nodes reported within
   * `clusterTimeout` (the revocation is broadcast either way).
   */
  async disconnectUser(userId: string, reason?: string): Promise<number> {
    if (typeof userId !== "string" || userId === "") throw new TypeError("disconnectUser: a user id is required");
    return revokeUser(this.app, userId, { reason, clusterTimeout: this.clusterTimeout });
  }

  /**
   * Disconnect every socket whose token carries the OIDC session id `sid`
   * (the `sid` claim), e.g. on a back-channel logout; with `iss`, only tokens
   * from that issuer. Same reach and count as `disconnectUser`.
   */
  async disconnectSessionId(sid: string, reason?: string, iss?: string): Promise<number> {
    if (typeof sid !== "string" || sid === "") throw new TypeError("disconnectSessionId: a sid is required");
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("disconnectSessionId: iss must be a non-empty string");
    return revokeSessionId(this.app, sid, iss, { reason, clusterTimeout: this.clusterTimeout });
  }

  /**
   * Disconnect every socket whose token's `sub` is `sub` — from the issuer
   * `iss` only, when given (several trusted issuers may use the same `sub`
   * value for different users); with `withoutSid`, only those whose token
   * carries no `sid`. Unlike `disconnectUser`, the local user id is not
   * matched. Same reach and count as `disconnectUser`: every namespace, every
   * node with the Redis adapter (room `oidc:iss-sub:…`, or one per configured
   * issuer without `iss`; `withoutSid` excludes `oidc:with-sid`, see `oidcRoom`).
   */
  async disconnectSubject(sub: string, options: OidcDisconnectSubjectOptions = {}): Promise<number> {
    if (typeof sub !== "string" || sub === "") throw new TypeError("disconnectSubject: a sub is required");
    if (options === null || typeof options !== "object") throw new TypeError("disconnectSubject: options must be an object");
    const { iss, reason, withoutSid } = options;
    if (iss !== undefined && (typeof iss !== "string" || iss === "")) throw new TypeError("disconnectSubject: iss must be a non-empty string");
    if (reason !== undefined && typeof reason !== "string") throw new TypeError("disconnectSubject: reason must be a string");
    if (withoutSid !== undefined && typeof withoutSid !== "boolean") throw new TypeError("disconnectSubject: withoutSid must be a boolean");
    if (withoutSid === true && iss === undefined) throw new TypeError("disconnectSubject: withoutSid needs iss (a sid only means something at its issuer)");
    return revokeSubject(this.app, sub, iss, withoutSid === true, { reason, clusterTimeout: this.clusterTimeout });
  }

  /**
   * Disconnect one socket; resolves to whether it was found — on this node,
   * or (with a shared store) in the store, in which case the revocation is
   * broadcast to its namespace on every node.
   */
  async disconnectSocket(socketId: string, reason?: string): Promise<boolean> {
    if (typeof socketId !== "string" || socketId === "") throw new TypeError("disconnectSocket: a socket id is required");
    if (revokeSocket(this.app, socketId, reason)) return true;
    const io = clusterOf(this.app).io;
    if (io === undefined) return false;
    const found = await this.sessions.get(socketId);
    const nsp = found === undefined ? undefined : io._nsps.get(found.namespace);
    if (nsp === undefined) return false;
    try {
      nsp.to(socketId).emit(OIDC_EVENTS.revoked, revokedPayload(reason));
      nsp.to(socketId).disconnectSockets(true);
    } catch (error) {
      oidcLog(this.app, 4, `disconnectSocket(${socketId}) broadcast failed: ${describeError(error)}`);
    }
    return true;
  }

  /** Stop the heartbeat and close the store (the Redis client stays open: the app owns it). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clusterOf(this.app).closers.delete(this.closer);
    try {
      await this.sessions.stop();
    } catch (error) {
      oidcLog(this.app, 4, `session store close() failed: ${describeError(error)}`);
    }
    await this.disconnectRevocations?.(); // logs its own failures
  }
}
