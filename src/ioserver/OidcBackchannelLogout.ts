/**
 * OpenID Connect Back-Channel Logout 1.0: the route an OpenID Provider posts
 * `logout_token` to when a user logs out there. The token is validated
 * (`verifyLogoutToken`), its `jti` claimed in a replay store, and the
 * matching live sockets are disconnected with `oidc:revoked`.
 *
 * Fastify parses no `application/x-www-form-urlencoded` body by default and
 * IOServer registers no parser for it, so the handler reads the (small,
 * bounded) body itself. Mounted as the route's `onRequest` hook it answers
 * before Fastify looks for a body parser; mounted as the `handler` of an app
 * that already parses forms it uses the parsed body. No parser is added to
 * the app: its other routes keep refusing form posts.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { BaseController } from "ioserver";
import type { AppHandle } from "ioserver";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Socket } from "socket.io";
import { isOidcAuthError } from "../errors.js";
import { OidcConfigError } from "../config/errors.js";
import { resolveConfig } from "../config/resolve.js";
import { DEFAULT_LOGOUT_TOKEN_MAX_AGE, replayWindowMs, verifyLogoutToken, type OidcLogoutToken, type VerifyLogoutTokenOptions } from "../logout/logoutToken.js";
import { disconnectWith, OIDC_EVENTS, revokedPayload } from "../sockets/protocol.js";
import { hasUsersManager } from "../claims/identity.js";
import { recordRevocations, revocationNow } from "../stores/revocationStore.js";
import type { OidcRevocation } from "../stores/denyList.js";
import { MemoryReplayStore, type OidcReplayStore } from "../stores/replayStore.js";
import { contextOf, registryOf } from "../sockets/registry.js";
import { withTimeout } from "../util/withTimeout.js";
import type { OidcAppHandle, OidcConfig } from "../types.js";
import { oidcLog } from "../util/log.js";
import { show, describeError } from "../util/text.js";

/** What `onLogout` receives besides the token. */
export interface OidcLogoutContext {
  appHandle: OidcAppHandle;
  /** Sockets disconnected, when the disconnecting call reported a count. */
  disconnected: number | undefined;
}

export interface OidcBackchannelLogoutOptions extends VerifyLogoutTokenOptions {
  /** Where accepted `jti` are remembered. Default: one `MemoryReplayStore` per app (this process), shared by all its logout routes. */
  replayStore?: OidcReplayStore;
  /** Largest request body accepted, in bytes. Default 32768. */
  bodyLimit?: number;
  /** Milliseconds allowed for each wait: reading the body, the replay store, the disconnect, `onLogout`. Default 5000. */
  timeout?: number;
  /** The `reason` sent to disconnected clients with `oidc:revoked`. Default `"logged out at the identity provider"`. */
  reason?: string;
  /**
   * Called after the sockets were disconnected, e.g. to end the app's own
   * server-side sessions. A throw (or a timeout) makes the answer 400, as
   * the spec asks for a failed logout.
   */
  onLogout?: (logout: OidcLogoutToken, context: OidcLogoutContext) => void | Promise<void>;
}

/** A Fastify handler (also usable as a route's `onRequest` hook). */
export type OidcBackchannelLogoutHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

const DEFAULT_BODY_LIMIT = 32 * 1024;
const DEFAULT_TIMEOUT = 5_000;
const DEFAULT_REASON = "logged out at the identity provider";
const RETRY_AFTER_SECONDS = 5;
const FORM = "application/x-www-form-urlencoded";

interface Settings {
  verify: VerifyLogoutTokenOptions;
  maxAge: number;
  /** The explicit store; undefined for the app's default. */
  replayStore: OidcReplayStore | undefined;
  bodyLimit: number;
  timeout: number;
  reason: string;
  onLogout: OidcBackchannelLogoutOptions["onLogout"];
}

function positive(value: unknown, name: string, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new OidcConfigError(`backchannel logout "${name}"`, `must be a positive ${integer ? "integer" : "number"}, got ${String(value)}`);
  }
  return value;
}

/** Validate options once, when the handler is created. */
function settingsOf(options: OidcBackchannelLogoutOptions): Settings {
  if (options === null || typeof options !== "object") throw new OidcConfigError("backchannel logout options", "must be an object");
  const { audience, allowJwtTyp, replayStore, reason, onLogout } = options;
  if (audience !== undefined) {
    const list = typeof audience === "string" ? [audience] : audience;
    if (!Array.isArray(list) || list.length === 0 || !list.every((entry) => typeof entry === "string" && entry !== "")) {
      throw new OidcConfigError('backchannel logout "audience"', "must be a non-empty string or array of non-empty strings");
    }
  }
  if (allowJwtTyp !== undefined && typeof allowJwtTyp !== "boolean") throw new OidcConfigError('backchannel logout "allowJwtTyp"', "must be a boolean");
  if (replayStore !== undefined && (replayStore === null || typeof replayStore.claim !== "function")) {
    throw new OidcConfigError('backchannel logout "replayStore"', "must have a claim(key, ttlMs) method");
  }
  if (reason !== undefined && typeof reason !== "string") throw new OidcConfigError('backchannel logout "reason"', "must be a string");
  if (onLogout !== undefined && typeof onLogout !== "function") throw new OidcConfigError('backchannel logout "onLogout"', "must be a function");
  const maxAge = positive(options.maxAge, "maxAge", DEFAULT_LOGOUT_TOKEN_MAX_AGE, false);
  const verify: VerifyLogoutTokenOptions = { maxAge };
  if (audience !== undefined) verify.audience = typeof audience === "string" ? audience : Object.freeze([...audience]);
  if (allowJwtTyp !== undefined) verify.allowJwtTyp = allowJwtTyp;
  return {
    verify: Object.freeze(verify),
    maxAge,
    replayStore,
    bodyLimit: positive(options.bodyLimit, "bodyLimit", DEFAULT_BODY_LIMIT, true),
    timeout: positive(options.timeout, "timeout", DEFAULT_TIMEOUT, true),
    reason: reason ?? DEFAULT_REASON,
    onLogout,
  };
}

/**
 * The default replay stores, one per app. IOServer constructs a controller
 * per registration, and an app may mount several logout routes: a store per
 * handler would let a token accepted on one route be replayed on another.
 */
const appReplayStores = new WeakMap<object, MemoryReplayStore>();

/** The app's default replay store, made on first use. */
function defaultReplayStoreOf(appHandle: OidcAppHandle): MemoryReplayStore {
  let store = appReplayStores.get(appHandle);
  if (store === undefined) appReplayStores.set(appHandle, (store = new MemoryReplayStore()));
  return store;
}

// --- the request --------------------------------------------------------

/** Why the request itself (not the token) was refused; `detail` is for the log. */
class BadRequest extends Error {
  constructor(readonly detail: string, readonly closeConnection = false) {
    super(detail);
  }
}

/** Read a body of at most `limit` bytes within `timeoutMs`. */
function readBody(stream: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(stream.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new BadRequest(`body of ${declared} bytes declared, over the ${limit} limit`, true));
  }
  if (stream.readableEnded || stream.destroyed) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error?: BadRequest) => {
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onError);
      stream.off("close", onClose);
      if (error === undefined) resolve(Buffer.concat(chunks));
      else reject(error);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) finish(new BadRequest(`body over the ${limit} byte limit`, true));
      else chunks.push(bytes);
    };
    const onEnd = () => finish();
    const onError = (error: Error) => finish(new BadRequest(`body could not be read: ${show(error.message)}`, true));
    const onClose = () => finish(new BadRequest("the client closed the request before its body ended", true));
    const timer = setTimeout(() => finish(new BadRequest(`body not received within ${timeoutMs} ms`, true)), timeoutMs);
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

/** The one `logout_token` of a form body (RFC 6749 section 3.1: parameters are never repeated). */
function tokenFromForm(form: string): string {
  const params = new URLSearchParams(form);
  const values = params.getAll("logout_token");
  if (values.length === 0) throw new BadRequest("no logout_token parameter");
  if (values.length > 1) throw new BadRequest(`logout_token given ${values.length} times`);
  return values[0]!;
}

/** Section 2.5: a form-encoded POST carrying `logout_token`. */
async function logoutTokenOf(request: FastifyRequest, settings: Settings): Promise<string> {
  const contentType = request.headers["content-type"];
  const mediaType = typeof contentType === "string" ? contentType.split(";")[0]!.trim().toLowerCase() : "";
  if (mediaType !== FORM) throw new BadRequest(`content type ${show(contentType)}, expected ${FORM}`);
  const body: unknown = request.body;
  if (body === undefined || body === null) {
    // Not parsed by Fastify (the onRequest position): read the raw body here.
    return tokenFromForm((await readBody(request.raw, settings.bodyLimit, settings.timeout)).toString("utf8"));
  }
  if (typeof body === "string") return tokenFromForm(body);
  if (Buffer.isBuffer(body)) return tokenFromForm(body.toString("utf8"));
  if (typeof body === "object") {
    // Parsed by the app's own form parser.
    const value = (body as Record<string, unknown>)["logout_token"];
    if (value === undefined) throw new BadRequest("no logout_token parameter");
    if (typeof value !== "string") throw new BadRequest(`logout_token is not a single string (${Array.isArray(value) ? "repeated" : typeof value})`);
    return value;
  }
  throw new BadRequest(`unexpected parsed body (${typeof body})`);
}

// --- the response (section 2.8) -----------------------------------------

interface ErrorBody {
  error: string;
  error_description: string;
}

function answer(reply: FastifyReply, status: number, body?: ErrorBody, headers: Record<string, string> = {}): FastifyReply {
  reply.code(status).header("cache-control", "no-store").header("pragma", "no-cache");
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  if (body === undefined) return reply.send();
  return reply.header("content-type", "application/json; charset=utf-8").send(JSON.stringify(body));
}

const INVALID_REQUEST: ErrorBody = { error: "invalid_request", error_description: "The request must be a form-encoded POST with one logout_token" };
const INVALID_TOKEN: ErrorBody = { error: "invalid_request", error_description: "The logout token is invalid" };
const LOGOUT_FAILED: ErrorBody = { error: "logout_failed", error_description: "The logout could not be completed" };
const UNAVAILABLE: ErrorBody = { error: "temporarily_unavailable", error_description: "The logout cannot be processed now, retry later" };
const MISCONFIGURED: ErrorBody = { error: "server_error", error_description: "Back-channel logout is not configured" };

// --- disconnecting --------------------------------------------------------

interface SessionMethods {
  disconnectSessionId?: (sid: string, reason?: string, iss?: string) => unknown;
  disconnectSubject?: (sub: string, options: { iss: string; reason?: string; withoutSid?: boolean }) => unknown;
  disconnectUser?: (userId: string, reason?: string) => unknown;
}

type Claims = Readonly<Record<string, unknown>>;

/** Whether the access token named an OP session (same rule as the session rooms: a non-empty string). */
function hasSid(claims: Claims): boolean {
  return typeof claims["sid"] === "string" && claims["sid"] !== "";
}

/**
 * This node's sockets whose token came from `iss` and matches `test`;
 * disconnected with `oidc:revoked`. With `issuedBy` (epoch s), only those
 * whose token was issued at or before it (or has no `iat`).
 */
function revokeLocal(candidates: Socket[], iss: string, test: (claims: Claims, sub: string) => boolean, reason: string, issuedBy?: number): number {
  let count = 0;
  for (const socket of candidates) {
    const context = contextOf(socket);
    if (context === undefined || context.claims["iss"] !== iss || !test(context.claims, context.sub)) continue;
    const iat = context.claims["iat"];
    if (issuedBy !== undefined && typeof iat === "number" && iat > issuedBy) continue;
    disconnectWith(socket, OIDC_EVENTS.revoked, revokedPayload(reason));
    count++;
  }
  return count;
}

/** This node's sockets of that user whose access token carries no `sid`: nothing tells their session apart. */
function revokeSidless(appHandle: OidcAppHandle, logout: OidcLogoutToken, reason: string, issuedBy?: number): number {
  const sub = logout.sub;
  if (sub === undefined) return 0;
  return revokeLocal(registryOf(appHandle).ofSubject(logout.iss, sub), logout.iss, (claims, socketSub) => socketSub === sub && !hasSid(claims), reason, issuedBy);
}

/** Everything a logout token designates, on this node only (with `issuedBy`: only tokens issued by then). */
function revokeHere(appHandle: OidcAppHandle, logout: OidcLogoutToken, reason: string, issuedBy?: number): number {
  const { iss, sid, sub } = logout;
  if (sid !== undefined) {
    return revokeLocal(registryOf(appHandle).all(), iss, (claims) => claims["sid"] === sid, reason, issuedBy) + revokeSidless(appHandle, logout, reason, issuedBy);
  }
  return revokeLocal(registryOf(appHandle).ofSubject(iss, sub as string), iss, (_claims, socketSub) => socketSub === sub, reason, issuedBy);
}

/**
 * The deny-list entries of a logout: its session (and the subject's sid-less
 * tokens), or its subject. They cover the tokens issued up to the logout
 * token's own `iat` (the provider's clock, like the access tokens' `iat`), so
 * recording them again for the same logout token changes nothing.
 */
function logoutRevocations(config: OidcConfig, logout: OidcLogoutToken): OidcRevocation[] {
  const { iss, sid, sub } = logout;
  const at = (entry: OidcRevocation): OidcRevocation => ({ ...entry, at: logout.iat });
  return sid !== undefined
    ? [at(revocationNow("session", iss, sid, config)), ...(sub === undefined ? [] : [at(revocationNow("subject", iss, sub, config, true))])]
    : [at(revocationNow("subject", iss, sub as string, config))];
}

interface Outcome {
  count: number | undefined;
  via: string;
}

/**
 * Section 2.7. With `sid`: the sockets whose access token carried that `sid`
 * from that issuer, plus, when `sub` is given too, that user's sockets (from
 * that issuer) whose access token carried no `sid` at all. With `sub` only:
 * every socket of that subject from that issuer.
 *
 * Cluster-wide through the session manager's issuer-scoped methods
 * (`disconnectSessionId(sid, reason, iss)`, `disconnectSubject(sub, { iss,
 * reason, withoutSid })`, as `OidcSessionManager` has them) whatever the
 * number of issuers. A tracker without `disconnectSubject` gets the
 * subject-wide part done on this node, or through `disconnectUser(sub)` when
 * the `sub` is the user id (one issuer, no users manager); a tracker without
 * either method, on this node.
 */
async function disconnect(appHandle: OidcAppHandle, config: OidcConfig, logout: OidcLogoutToken, settings: Settings): Promise<Outcome> {
  // The tokens of the logged-out session stay refused until they expire, on this node at once, whatever the tracker does;
  // the shared store hears of it after the broadcast.
  const publish = recordRevocations(appHandle, logoutRevocations(config, logout));
  try {
    return await disconnectTracked(appHandle, config, logout, settings);
  } finally {
    publish();
  }
}

async function disconnectTracked(appHandle: OidcAppHandle, config: OidcConfig, logout: OidcLogoutToken, settings: Settings): Promise<Outcome> {
  const session = (appHandle.session ?? undefined) as SessionMethods | undefined;
  const { iss, sid, sub } = logout;
  const reason = settings.reason;
  const counted = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
  const guarded = async (what: string, work: () => unknown) => counted(await withTimeout(work, settings.timeout, what));
  const bySid = typeof session?.disconnectSessionId === "function" ? session.disconnectSessionId : undefined;
  const bySubject = typeof session?.disconnectSubject === "function" ? session.disconnectSubject : undefined;

  if (sid !== undefined && bySid !== undefined) {
    const calls: Array<Promise<number | undefined>> = [guarded("session.disconnectSessionId", () => bySid.call(session, sid, reason, iss))];
    let via = "session.disconnectSessionId";
    let here = 0;
    if (sub !== undefined) {
      if (bySubject !== undefined) {
        // Disjoint from the sid's sockets: a socket is in one room or the other.
        calls.push(guarded("session.disconnectSubject", () => bySubject.call(session, sub, { iss, reason, withoutSid: true })));
        via += " + session.disconnectSubject";
      } else {
        here = revokeSidless(appHandle, logout, reason);
      }
    }
    const counts = await Promise.all(calls);
    const total = counts.every((count) => count !== undefined) ? counts.reduce<number>((sum, count) => sum + (count as number), here) : undefined;
    return { count: total, via };
  }
  if (sid === undefined && bySubject !== undefined) {
    return { count: await guarded("session.disconnectSubject", () => bySubject.call(session, sub as string, { iss, reason })), via: "session.disconnectSubject" };
  }
  // disconnectUser takes a user id: a sub is one only with one issuer and no users manager (see identity.ts).
  if (sid === undefined && typeof session?.disconnectUser === "function" && config.issuers.length === 1 && !hasUsersManager(appHandle)) {
    const method = session.disconnectUser;
    return { count: await guarded("session.disconnectUser", () => method.call(session, sub as string, reason)), via: "session.disconnectUser" };
  }
  return { count: revokeHere(appHandle, logout, reason), via: "this node" };
}

/** The replay-store key: fixed length, one per (issuer, jti). */
function replayKey(logout: OidcLogoutToken): string {
  return createHash("sha256").update(JSON.stringify([logout.iss, logout.jti])).digest("base64url");
}

/**
 * A Fastify handler for the back-channel logout URI of this app. Use it as
 * the route's `onRequest` hook (and handler) so it reads the form body
 * itself, or as the handler of a route whose app already parses forms.
 * Answers 200 (empty), 400 `{ error, error_description }`, 503 when the
 * keys are unavailable, 500 when unconfigured; always
 * with `Cache-Control: no-store`.
 */
export function backchannelLogoutHandler(appHandle: AppHandle | OidcAppHandle, options: OidcBackchannelLogoutOptions = {}): OidcBackchannelLogoutHandler {
  if (appHandle === null || typeof appHandle !== "object") throw new TypeError("backchannelLogoutHandler: the appHandle is required");
  const app = appHandle as OidcAppHandle;
  const settings = settingsOf(options);
  const replayStore = settings.replayStore ?? defaultReplayStoreOf(app);
  const log = (level: number, text: string) => oidcLog(app, level, `back-channel logout: ${text}`);

  return async function backchannelLogout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (reply.sent) return reply; // Already answered in the onRequest position.
    if (request.method !== "POST") {
      log(4, `refused a ${show(request.method)} request (POST only)`);
      return answer(reply, 405, INVALID_REQUEST, { allow: "POST" });
    }

    let token: string;
    try {
      token = await logoutTokenOf(request, settings);
    } catch (error) {
      const bad = error instanceof BadRequest ? error : new BadRequest(show(describeError(error)), true);
      log(4, `refused the request: ${bad.detail}`);
      return answer(reply, 400, INVALID_REQUEST, bad.closeConnection ? { connection: "close" } : {});
    }

    let config: OidcConfig;
    try {
      config = resolveConfig(app);
    } catch (error) {
      log(3, `no usable configuration: ${isOidcAuthError(error) ? error.reason : describeError(error)}`);
      return answer(reply, 500, MISCONFIGURED);
    }

    let logout: OidcLogoutToken;
    try {
      logout = await verifyLogoutToken(token, config, settings.verify);
    } catch (error) {
      if (isOidcAuthError(error) && error.code === "ERR_AUTH_UNAVAILABLE") {
        log(3, error.reason);
        return answer(reply, 503, UNAVAILABLE, { "retry-after": String(RETRY_AFTER_SECONDS) });
      }
      log(4, isOidcAuthError(error) ? error.reason : `logout token refused: ${show(describeError(error))}`);
      return answer(reply, 400, INVALID_TOKEN);
    }
    const who = `iss ${show(logout.iss)}${logout.sid === undefined ? "" : ` sid ${show(logout.sid)}`}${logout.sub === undefined ? "" : ` sub ${show(logout.sub)}`}`;

    // Section 2.6 step 8: a jti is accepted once. The replay check decides only
    // the answer: a verified logout is never lost. A claim that failed or timed
    // out may still have been recorded (the provider's retry would then be a
    // "replay"), so the logout is carried out anyway; a replay records the same
    // deny-list entries again (idempotent: they end at the logout's own iat) and
    // ends this node's sockets those entries cover, should an earlier attempt
    // have stopped half-way.
    let first: boolean | undefined;
    try {
      first = await withTimeout(() => replayStore.claim(replayKey(logout), replayWindowMs(logout, config, settings.maxAge)), settings.timeout, "replayStore.claim");
    } catch (error) {
      log(4, `replay store failed (${who}): the logout is carried out anyway: ${describeError(error)}`);
    }
    if (first === false) {
      recordRevocations(app, logoutRevocations(config, logout))();
      const late = revokeHere(app, logout, settings.reason, logout.iat);
      log(4, `logout token refused: jti ${show(logout.jti)} was already received (${who})${late > 0 ? `; ${late} socket(s) it covers were still connected here and are disconnected` : ""}`);
      return answer(reply, 400, INVALID_TOKEN);
    }

    let outcome: Outcome;
    try {
      outcome = await disconnect(app, config, logout, settings);
    } catch (error) {
      // The cluster-wide call failed: at least this node's sockets go; the OP is told the logout failed.
      const local = revokeHere(app, logout, settings.reason);
      log(3, `disconnecting failed (${who}), ${local} socket(s) of this node disconnected: ${describeError(error)}`);
      return answer(reply, 400, LOGOUT_FAILED);
    }

    if (settings.onLogout !== undefined) {
      const onLogout = settings.onLogout;
      try {
        await withTimeout(() => onLogout(logout, { appHandle: app, disconnected: outcome.count }), settings.timeout, "onLogout");
      } catch (error) {
        log(3, `onLogout failed (${who}): ${describeError(error)}`);
        return answer(reply, 400, LOGOUT_FAILED);
      }
    }
    log(6, `${who}: ${outcome.count === undefined ? "sockets" : `${outcome.count} socket(s)`} disconnected via ${outcome.via}`);
    return answer(reply, 200);
  };
}

/**
 * An IOServer controller serving the back-channel logout URI. Map a POST
 * route to `logout` both as `onRequest` and `handler` in its route file:
 *
 * ```json
 * [{ "method": "POST", "url": "/backchannel-logout", "onRequest": "logout", "handler": "logout" }]
 * ```
 *
 * and register it without the bearer-token middleware (the provider sends
 * no access token; the signed logout token is the authentication):
 * `server.addController({ name: "oidc", controller: OidcBackchannelLogoutController })`.
 */
export class OidcBackchannelLogoutController extends BaseController {
  protected static readonly options: OidcBackchannelLogoutOptions = {};
  private readonly handler: OidcBackchannelLogoutHandler;

  /** A controller class with options: `OidcBackchannelLogoutController.configure({ replayStore, maxAge, ... })`. Validated now. */
  static configure(options: OidcBackchannelLogoutOptions): typeof OidcBackchannelLogoutController {
    settingsOf(options);
    const frozen = Object.freeze({ ...options });
    return class ConfiguredOidcBackchannelLogoutController extends OidcBackchannelLogoutController {
      protected static override readonly options = frozen;
    };
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
    this.handler = backchannelLogoutHandler(appHandle, (this.constructor as typeof OidcBackchannelLogoutController).options);
  }

  /** The route handler (and `onRequest` hook). */
  async logout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return this.handler(request, reply);
  }
}
