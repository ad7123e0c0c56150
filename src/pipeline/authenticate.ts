/**
 * The one authentication pipeline. Transports extract the token and apply the
 * result; everything between (config, verification, provisioning, the
 * disabled check, claim mapping, logging) happens here.
 */
import { isOidcAuthError, logLevelOf, OidcAuthError } from "../errors.js";
import { resolveConfig, tryResolveConfig } from "../config/resolve.js";
import { sharedContext } from "./sharedContext.js";
import { hasUsersManager, issOf } from "../claims/identity.js";
import { appPart } from "../util/appState.js";
import { provisioned } from "./provision.js";
import { refuseRevoked } from "./refuseRevoked.js";
import { verifyAccessTokenNow, type VerifiedToken } from "../verify/verifyAccessToken.js";
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { safeLog } from "../util/log.js";
import { logRefusal, refusalFields, type RefusalLogSettings, type RefusalSource } from "../util/refusalLog.js";
import { LOG_SAMPLING_DEFAULTS } from "../config/logOptions.js";
import type { OidcAuthTransport, OidcVerificationReport } from "../diagnostics.js";
import { claimedIssuer, observeAuth, observingAuth } from "./observe.js";

export interface AuthenticateResult {
  context: OidcUserContext;
  config: OidcConfig;
}

const logger = appPart("logger", (appHandle) => (level: number, text: string) => safeLog(appHandle, level, text));

/** One logger function per app (key sets remember the loggers they report to). */
export function loggerOf(appHandle: OidcAppHandle): ((level: number, text: string) => void) | undefined {
  return typeof appHandle.log === "function" ? logger.of(appHandle) : undefined;
}

/** Refusals logged as text, sampled by default: the settings when the app's config cannot be read. */
const TEXT_LOG: RefusalLogSettings = Object.freeze({ logger: undefined, sampling: LOG_SAMPLING_DEFAULTS });

/**
 * Log an auth failure (never the token) and return it as an `OidcAuthError`.
 * `source` says where it came from: the request id, the client address, the
 * transport, the route or namespace; the issuer is the verified one it
 * names, or the configured issuer its token claims. Logged to the config's
 * `logger` when there is one, else as text through `appHandle.log`; sampled
 * (see refusalLog.ts). Logging never throws.
 */
export function reportFailure(appHandle: OidcAppHandle, source: RefusalSource, error: unknown): OidcAuthError {
  const failure = isOidcAuthError(error)
    ? error
    : new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: `unexpected error: ${String(error)}`, cause: error });
  try {
    const config = tryResolveConfig(appHandle);
    const settings: RefusalLogSettings = config === undefined ? TEXT_LOG : { logger: config.logger, sampling: config.logSampling };
    const issuer = source.issuer ?? (source.token === undefined ? undefined : claimedIssuer(source.token, config));
    logRefusal(appHandle, logLevelOf(failure.code), source.where, refusalFields(source, issuer, failure.code, failure.reason), settings);
  } catch {
    // Logging only: the decision stands.
  }
  return failure;
}

/**
 * Authenticate a token for an IOServer app: resolve the config, verify,
 * provision through `appHandle.users.findOrCreate` when present, refuse
 * disabled users. Rejects with `OidcAuthError` only. `transport` names the
 * caller in the `auth` channel's message.
 */
export function authenticate<B = undefined>(token: string | undefined, appHandle: OidcAppHandle, transport: OidcAuthTransport, bindingTarget?: B, binding?: TokenBinding<B>): Promise<AuthenticateResult> {
  try {
    return Promise.resolve(authenticateNow(token, appHandle, transport, bindingTarget, binding));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * `authenticate` without a promise when nothing has to wait (a cached token,
 * or fresh keys and the fast path, and no users manager): the result itself,
 * else a promise of it. Throws, synchronously or through the promise, what
 * `authenticate` rejects with. Published on the `auth` and `authenticate`
 * channels when they have subscribers (see observe.ts).
 */
export function authenticateNow<B = undefined>(
  token: string | undefined,
  appHandle: OidcAppHandle,
  transport: OidcAuthTransport,
  bindingTarget?: B,
  binding?: TokenBinding<B>,
): AuthenticateResult | Promise<AuthenticateResult> {
  if (observingAuth()) return observeAuth(transport, token, appHandle, tryResolveConfig, issuerOfResult, decide, bindingTarget, binding);
  return decide(appHandle, token, undefined, bindingTarget, binding);
}

/**
 * A check of a verified token against what came with it (DPoP's proof of
 * possession, RFC 9449): run right after verification, before the deny-list
 * and the users manager, so a token refused here provisions nothing and is
 * reported as refused. Throws (or rejects with) `OidcAuthError` to refuse.
 */
export type TokenBinding<B> = (target: B, appHandle: OidcAppHandle, token: string, context: OidcUserContext, config: OidcConfig) => void | Promise<void>;

const issuerOfResult = (result: AuthenticateResult): string | undefined => issOf(result.context);

function decide<B>(
  appHandle: OidcAppHandle,
  token: string | undefined,
  report: OidcVerificationReport | undefined,
  bindingTarget: B | undefined,
  binding: TokenBinding<B> | undefined,
): AuthenticateResult | Promise<AuthenticateResult> {
  if (token === undefined || token === "") {
    throw new OidcAuthError("ERR_AUTH_TOKEN_REQUIRED", { reason: "no bearer token was presented" });
  }
  const config = resolveConfig(appHandle);
  const verified = verifyAccessTokenNow(token, config, loggerOf(appHandle), report);
  if (verified instanceof Promise) return verified.then((each) => afterVerification(each, appHandle, config, token, bindingTarget, binding));
  return afterVerification(verified, appHandle, config, token, bindingTarget, binding);
}

function afterVerification<B>(
  verified: VerifiedToken,
  appHandle: OidcAppHandle,
  config: OidcConfig,
  token: string,
  bindingTarget: B | undefined,
  binding: TokenBinding<B> | undefined,
): AuthenticateResult | Promise<AuthenticateResult> {
  const context = sharedContext(verified, config);
  const bound = binding === undefined ? undefined : binding(bindingTarget as B, appHandle, token, context, config);
  if (bound !== undefined) return bound.then(() => admitted(appHandle, context, config));
  return admitted(appHandle, context, config);
}

/** The deny-list, then (with a users manager) provisioning. */
function admitted(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig): AuthenticateResult | Promise<AuthenticateResult> {
  refuseRevoked(appHandle, context, config);
  // Without a users manager nothing else is asked: no further wait.
  if (!hasUsersManager(appHandle)) return { context, config };
  return provisioned(appHandle, context, config).then((admitted) => ({ context: admitted, config }));
}
