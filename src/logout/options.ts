/** The back-channel logout's options, validated once when its handler is made. */
import type { FastifyReply, FastifyRequest } from "fastify";
import { OidcConfigError } from "../config/errors.js";
import type { OidcReplayStore } from "../stores/replayStore.js";
import type { OidcAppHandle } from "../types.js";
import { positiveOption } from "../util/validate.js";
import { DEFAULT_LOGOUT_TOKEN_MAX_AGE, type OidcLogoutToken, type VerifyLogoutTokenOptions } from "./logoutToken.js";

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

export interface Settings {
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
  return positiveOption(value, fallback, (expected) => new OidcConfigError(`backchannel logout "${name}"`, expected), integer);
}

/** Validate options once, when the handler is created. */
export function settingsOf(options: OidcBackchannelLogoutOptions): Settings {
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
