/**
 * OpenID Connect Back-Channel Logout 1.0: the handler of the route an OpenID
 * Provider posts `logout_token` to when a user logs out there. The token is
 * validated (`verifyLogoutToken`), its `jti` claimed in a replay store, and
 * the matching live sockets are disconnected with `oidc:revoked`.
 *
 * Mounted as the route's `onRequest` hook it answers before Fastify looks
 * for a body parser (see `readForm.ts`); mounted as the `handler` of an app
 * that already parses forms it uses the parsed body. No parser is added to
 * the app: its other routes keep refusing form posts.
 */
import { hash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { resolveConfig } from "../config/resolve.js";
import { isOidcAuthError, RETRY_AFTER_SECONDS } from "../errors.js";
import { MemoryReplayStore } from "../stores/replayStore.js";
import type { OidcAppHandle, OidcConfig } from "../types.js";
import { appPart } from "../util/appState.js";
import { oidcLog } from "../util/log.js";
import { describeError, show } from "../util/text.js";
import { withTimeout } from "../util/withTimeout.js";
import { disconnect, endCoveredHere, type Outcome } from "./disconnect.js";
import { replayWindowMs, verifyLogoutToken, type OidcLogoutToken } from "./logoutToken.js";
import { settingsOf, type OidcBackchannelLogoutHandler, type OidcBackchannelLogoutOptions } from "./options.js";
import { BadRequest, logoutTokenOf } from "./readForm.js";
import { logoutChannel, type OidcLogoutOutcome } from "../diagnostics.js";

/**
 * The default replay stores, one per app. IOServer constructs a controller
 * per registration, and an app may mount several logout routes: a store per
 * handler would let a token accepted on one route be replayed on another.
 */
const defaultReplayStore = appPart("logout replay store", () => new MemoryReplayStore());

/** The app's default replay store, made on first use. */
function defaultReplayStoreOf(appHandle: OidcAppHandle): MemoryReplayStore {
  return defaultReplayStore.of(appHandle);
}

// --- the response (section 2.8)

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

/** The `logout` channel's message, when a subscriber was there when the request came (`started`). */
function observed(started: number | undefined, outcome: OidcLogoutOutcome, status: number, issuer?: string, disconnected?: number): void {
  if (started === undefined || !logoutChannel.hasSubscribers) return;
  logoutChannel.publish({ outcome, status, issuer, disconnected, durationMs: performance.now() - started });
}

/** The replay-store key: fixed length, one per (issuer, jti). */
function replayKey(logout: OidcLogoutToken): string {
  return hash("sha256", JSON.stringify([logout.iss, logout.jti]), "base64url");
}

/**
 * The back-channel logout handler of one app (the IOServer front-end's
 * `backchannelLogoutHandler`). Answers 200 (empty), 400
 * `{ error, error_description }`, 503 when the keys are unavailable, 500
 * when unconfigured; always with `Cache-Control: no-store`.
 */
export function createLogoutHandler(appHandle: OidcAppHandle, options: OidcBackchannelLogoutOptions = {}): OidcBackchannelLogoutHandler {
  if (appHandle === null || typeof appHandle !== "object") throw new TypeError("backchannelLogoutHandler: the appHandle is required");
  const app = appHandle;
  const settings = settingsOf(options);
  const replayStore = settings.replayStore ?? defaultReplayStoreOf(app);
  const log = (level: number, text: string) => oidcLog(app, level, `back-channel logout: ${text}`);

  return async function backchannelLogout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (reply.sent) return reply; // Already answered in the onRequest position.
    const started = logoutChannel.hasSubscribers ? performance.now() : undefined;
    if (request.method !== "POST") {
      log(4, `refused a ${show(request.method)} request (POST only)`);
      observed(started, "method-not-allowed", 405);
      return answer(reply, 405, INVALID_REQUEST, { allow: "POST" });
    }

    let token: string;
    try {
      token = await logoutTokenOf(request, settings);
    } catch (error) {
      const bad = error instanceof BadRequest ? error : new BadRequest(show(describeError(error)), true);
      log(4, `refused the request: ${bad.detail}`);
      observed(started, "invalid-request", 400);
      return answer(reply, 400, INVALID_REQUEST, bad.closeConnection ? { connection: "close" } : {});
    }

    let config: OidcConfig;
    try {
      config = resolveConfig(app);
    } catch (error) {
      log(3, `no usable configuration: ${isOidcAuthError(error) ? error.reason : describeError(error)}`);
      observed(started, "misconfigured", 500);
      return answer(reply, 500, MISCONFIGURED);
    }

    let logout: OidcLogoutToken;
    try {
      logout = await verifyLogoutToken(token, config, settings.verify);
    } catch (error) {
      if (isOidcAuthError(error) && error.code === "ERR_AUTH_UNAVAILABLE") {
        log(3, error.reason);
        observed(started, "unavailable", 503);
        return answer(reply, 503, UNAVAILABLE, { "retry-after": String(RETRY_AFTER_SECONDS) });
      }
      log(4, isOidcAuthError(error) ? error.reason : `logout token refused: ${show(describeError(error))}`);
      observed(started, "invalid-token", 400);
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
      const late = endCoveredHere(app, config, logout, settings.reason);
      log(4, `logout token refused: jti ${show(logout.jti)} was already received (${who})${late > 0 ? `; ${late} socket(s) it covers were still connected here and are disconnected` : ""}`);
      observed(started, "replayed", 400, logout.iss, late);
      return answer(reply, 400, INVALID_TOKEN);
    }

    let outcome: Outcome;
    try {
      outcome = await disconnect(app, config, logout, settings.reason, settings.timeout);
    } catch (error) {
      // The cluster-wide call failed: at least this node's sockets go; the OP is told the logout failed.
      const local = endCoveredHere(app, config, logout, settings.reason);
      log(3, `disconnecting failed (${who}), ${local} socket(s) of this node disconnected: ${describeError(error)}`);
      observed(started, "failed", 400, logout.iss, local);
      return answer(reply, 400, LOGOUT_FAILED);
    }

    if (settings.onLogout !== undefined) {
      const onLogout = settings.onLogout;
      try {
        await withTimeout(() => onLogout(logout, { appHandle: app, disconnected: outcome.count }), settings.timeout, "onLogout");
      } catch (error) {
        log(3, `onLogout failed (${who}): ${describeError(error)}`);
        observed(started, "failed", 400, logout.iss, outcome.count);
        return answer(reply, 400, LOGOUT_FAILED);
      }
    }
    log(6, `${who}: ${outcome.count === undefined ? "sockets" : `${outcome.count} socket(s)`} disconnected via ${outcome.via}`);
    observed(started, "success", 200, logout.iss, outcome.count);
    return answer(reply, 200);
  };
}
