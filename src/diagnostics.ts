/**
 * The package's events through `node:diagnostics_channel`: one channel per
 * kind of event, plus a tracing channel around authentication. Nothing is
 * built, timed or published unless the channel has a subscriber: every
 * emitting place checks `hasSubscribers` first.
 *
 * Messages carry bounded values only: configured issuer strings, error
 * codes, socket ids and namespaces, counts, states and durations. Never a
 * token, a `sub`, a claim value, a reason text or an error object of a
 * request (a refusal's reason can quote attacker input; it goes to the log).
 * See docs/observability.md.
 */
import { channel, tracingChannel } from "node:diagnostics_channel";
import type { OidcAuthError, OidcAuthErrorCode } from "./errors.js";

/** The channel names. `authenticate` names a `tracingChannel`; the others are plain channels. */
export const OIDC_CHANNELS = Object.freeze({
  /** Every authentication decision: HTTP, handshake, in-band refresh, `verifyOidcToken`. */
  auth: "ioserver-oidc:auth",
  /** Every JWKS fetch that completed, succeeded or failed. */
  jwks: "ioserver-oidc:jwks",
  /** Every OpenID Connect discovery that completed. */
  discovery: "ioserver-oidc:discovery",
  /** Live sockets: connected, expiring, refreshed, refresh refused, expired, revoked. */
  socket: "ioserver-oidc:socket",
  /** Every revocation by user, subject or OP session. */
  revocation: "ioserver-oidc:revocation",
  /** Every back-channel logout request answered. */
  logout: "ioserver-oidc:logout",
  /** A shared backend (Redis) becoming unavailable, and available again. */
  backend: "ioserver-oidc:backend",
  /** The tracing channel around authentication (`diagnostics_channel.tracingChannel(name)`). */
  authenticate: "ioserver-oidc:authenticate",
} as const);

/** Where an authentication came from. */
export type OidcAuthTransport = "http" | "handshake" | "refresh" | "verify";

/** `OIDC_CHANNELS.auth`: one authentication decided. */
export interface OidcAuthMessage {
  transport: OidcAuthTransport;
  /**
   * The trusted issuer: the one that signed the token when it was accepted;
   * on a refusal, the configured issuer the token's `iss` names (read, not
   * verified), or undefined when it names none.
   */
  issuer: string | undefined;
  /** `"success"`, or the refusal's code. */
  outcome: "success" | OidcAuthErrorCode;
  /** From the start of the authentication to its decision (ms, `performance.now()`). */
  durationMs: number;
  /**
   * Whether the token was found in the verified-token cache (`"hit"`) or
   * verified now (`"miss"`); undefined when no verification was reached (no
   * token, a token refused before its signature was checked, a bad config).
   */
  cache: "hit" | "miss" | undefined;
  /**
   * How the token was verified: `"cache"` (a hit), `"fast"` (the synchronous
   * node:crypto path) or `"jose"` (jose's `jwtVerify`, the reference, which
   * also decides every refusal), or `"introspection"` (an opaque token,
   * asked of the issuer's introspection endpoint or its cache); undefined as
   * for `cache`.
   */
  path: OidcVerificationPath | undefined;
}

/** How a token was verified (see `OidcAuthMessage.path`). */
export type OidcVerificationPath = "cache" | "fast" | "jose" | "introspection";

/** Filled in by a verification when asked: how the token was verified. */
export interface OidcVerificationReport {
  path?: OidcVerificationPath;
}

/**
 * The context object of the `OIDC_CHANNELS.authenticate` tracing channel: the
 * same object is passed to `start`, `end`, `asyncStart`, `asyncEnd` and
 * `error`. `issuer` and `outcome` are set once decided; `error` is set on a
 * refusal (an `OidcAuthError` with the code and its client message only: the
 * server-side reason and cause stay in the log). `result` is never set: the
 * result holds the user's claims.
 */
export interface OidcAuthTraceContext {
  transport: OidcAuthTransport;
  issuer?: string | undefined;
  outcome?: "success" | OidcAuthErrorCode;
  error?: OidcAuthError;
}

/** A key set's state, as `OidcConfigManager.getHealth()` reports it. */
export type OidcKeySetState = "cold" | "fresh" | "stale" | "unavailable";

/** Why a JWKS fetch failed. */
export type OidcJwksFailure = "timeout" | "status" | "network" | "invalid";

/** `OIDC_CHANNELS.jwks`: one JWKS fetch completed. */
export interface OidcJwksMessage {
  /** The configured issuer whose key set this is, when known. */
  issuer: string | undefined;
  jwksUri: string;
  outcome: "success" | "failure";
  /** On failure: no answer in time, an HTTP status other than 200, a network error, or a body that is not a usable JWK Set. */
  failure: OidcJwksFailure | undefined;
  durationMs: number;
  /** Keys in the set after the fetch (the previous set's, after a failure). */
  keys: number;
  /** The set's state before and after the fetch. */
  before: OidcKeySetState;
  after: OidcKeySetState;
  /** `open` after a timed-out fetch, until a fetch succeeds: requests fail fast meanwhile. */
  circuit: "closed" | "open";
  /** Consecutive failed fetches (0 after a success). */
  failures: number;
}

/** `OIDC_CHANNELS.discovery`: one discovery of an issuer's `jwks_uri` completed. */
export interface OidcDiscoveryMessage {
  issuer: string;
  outcome: "success" | "failure";
  durationMs: number;
  /** The discovered `jwks_uri`, on success. */
  jwksUri: string | undefined;
}

/** Why a socket was ended with `oidc:revoked`. */
export type OidcSocketRevokedKind =
  /** A revocation of the user (`disconnectUser`, a disabled user). */
  | "user"
  /** A revocation of the subject (`disconnectSubject`, a back-channel logout by `sub`). */
  | "subject"
  /** A revocation of the OP session (`disconnectSessionId`, a back-channel logout by `sid`). */
  | "session"
  /** `disconnectSocket`. */
  | "socket"
  /** A deny-list entry: a revocation heard from another node or from the shared store, or one recorded again. */
  | "deny-list"
  /** A refreshed token the namespace's guards refused. */
  | "guards"
  /** A socket restored by connection-state recovery that is no longer admitted. */
  | "recovery"
  /** Refused once connected (a revocation issued during its handshake). */
  | "connection";

interface SocketBase {
  socketId: string;
  namespace: string;
  /** The issuer of the socket's token (a configured one). */
  issuer: string | undefined;
}

/** `OIDC_CHANNELS.socket`: something happened to a live socket of this node. */
export type OidcSocketMessage =
  | (SocketBase & { event: "connected"; recovered: boolean })
  | (SocketBase & { event: "expiring" })
  | (SocketBase & { event: "refreshed" })
  | (SocketBase & { event: "refresh-refused"; code: OidcAuthErrorCode })
  | (SocketBase & { event: "expired"; code: OidcAuthErrorCode })
  | (SocketBase & { event: "revoked"; code: OidcAuthErrorCode; kind: OidcSocketRevokedKind });

/** `OIDC_CHANNELS.revocation`: one revocation done by this node. */
export interface OidcRevocationMessage {
  kind: "user" | "subject" | "session";
  /** Sockets of this node it ended. */
  local: number;
  /** Sockets it reached on every node, this one included; undefined when some nodes could not be counted in time. */
  cluster: number | undefined;
  durationMs: number;
}

/** How a back-channel logout request was answered. */
export type OidcLogoutOutcome =
  | "success"
  /** 405: not a POST. */
  | "method-not-allowed"
  /** 400: not a form post with one `logout_token`. */
  | "invalid-request"
  /** 500: no usable configuration. */
  | "misconfigured"
  /** 503: the issuer's keys cannot be obtained now. */
  | "unavailable"
  /** 400: the logout token was refused. */
  | "invalid-token"
  /** 400: the logout token's `jti` was received before. */
  | "replayed"
  /** 400: the sockets could not all be disconnected, or `onLogout` failed. */
  | "failed";

/** `OIDC_CHANNELS.logout`: one back-channel logout request answered. */
export interface OidcLogoutMessage {
  outcome: OidcLogoutOutcome;
  /** The HTTP status of the answer. */
  status: number;
  /** The issuer of the logout token, once verified. */
  issuer: string | undefined;
  /** Sockets disconnected, when known (a success through a tracker that reports counts, or the package's own revocation). */
  disconnected: number | undefined;
  durationMs: number;
}

/** `OIDC_CHANNELS.backend`: the app's shared backend became unavailable, or available again. */
export interface OidcBackendMessage {
  backend: "redis";
  /** The part that noticed first (outage) or last (recovery): "session store", "revocation store", "adapter publish". */
  source: string;
  state: "degraded" | "healed";
}

/** The channels, held here so that they live as long as the package (a channel nobody references may be collected). */
export const authChannel = channel(OIDC_CHANNELS.auth);
export const jwksChannel = channel(OIDC_CHANNELS.jwks);
export const discoveryChannel = channel(OIDC_CHANNELS.discovery);
export const socketChannel = channel(OIDC_CHANNELS.socket);
export const revocationChannel = channel(OIDC_CHANNELS.revocation);
export const logoutChannel = channel(OIDC_CHANNELS.logout);
export const backendChannel = channel(OIDC_CHANNELS.backend);
export const authTracing = tracingChannel<unknown, OidcAuthTraceContext>(OIDC_CHANNELS.authenticate);

/**
 * The live authenticated sockets of this process, by namespace name: what
 * the socket registry tracks now (in every app), counted where it tracks and
 * releases a socket. Read by `ioserver-oidc/metrics` for its live-sockets
 * gauge, from memory (never from a shared store).
 *
 * Held on `globalThis` under a registered symbol, because each entry point
 * is a bundle of its own: the package's main entry and its metrics entry
 * (and its ES module and CommonJS builds) each have their own copy of this
 * module, and must see one count. A namespace stays in the map at 0 once it
 * had a socket (namespaces are few), so a gauge reads 0 rather than nothing.
 */
export const liveSockets: Map<string, number> = ((globalThis as Record<symbol, unknown>)[Symbol.for("ioserver-oidc.liveSockets")] ??= new Map<string, number>()) as Map<string, number>;

/** Add `delta` to the live sockets of the namespace `name` (1 when a socket is tracked, -1 when it is released). */
export function countLiveSocket(name: string, delta: 1 | -1): void {
  liveSockets.set(name, (liveSockets.get(name) ?? 0) + delta);
}
