/**
 * Authentication seen from outside: the `auth` channel's message and the
 * `authenticate` tracing channel's events around one authentication (see
 * diagnostics.ts). Callers check `observingAuth()` first and run the
 * authentication bare when it is false: nobody listening costs that check.
 */
import { authChannel, authTracing, type OidcAuthMessage, type OidcAuthTraceContext, type OidcAuthTransport, type OidcVerificationReport } from "../diagnostics.js";
import { isOidcAuthError, OidcAuthError, type OidcAuthErrorCode } from "../errors.js";
import type { OidcConfig } from "../types.js";

/** Whether anybody listens to authentications. */
export function observingAuth(): boolean {
  return authChannel.hasSubscribers || authTracing.hasSubscribers;
}

/**
 * The configured issuer a token's `iss` names, read without verifying it
 * (for a refusal's message): one of `config.issuers`' strings, never the
 * token's own value.
 */
export function claimedIssuer(token: unknown, config: OidcConfig | undefined): string | undefined {
  if (config === undefined || typeof token !== "string" || token.length > config.maxTokenLength) return undefined;
  const first = token.indexOf(".");
  const second = first < 0 ? -1 : token.indexOf(".", first + 1);
  if (first <= 0 || second < 0) return undefined;
  let iss: unknown;
  try {
    iss = (JSON.parse(Buffer.from(token.slice(first + 1, second), "base64url").toString("utf8")) as { iss?: unknown } | null)?.iss;
  } catch {
    return undefined;
  }
  for (const issuer of config.issuers) if (issuer.issuer === iss) return issuer.issuer;
  return undefined;
}

/**
 * What `observeAuth` runs: the authentication of `token` for `subject` (an
 * app, or a config), filling in `report`; `x` and `y` are handed through
 * (arguments of the caller's own, passed along rather than captured so that
 * no closure is made per call).
 */
export type ObservedRun<S, T, X, Y> = (subject: S, token: string | undefined, report: OidcVerificationReport | undefined, x: X, y: Y) => T | Promise<T>;

/**
 * Run one authentication (`run(subject, token, report)`, which returns its
 * result or a promise of it) under the channels: the `authenticate` tracing
 * channel's `start` and `end` around the call, `asyncStart` and `asyncEnd`
 * when it returned a promise and that settles, `error` on a refusal (Node's
 * tracingChannel contract, without turning a synchronous decision into a
 * promise); then the `auth` message. The result or the refusal is handed on
 * unchanged. `configOf(subject)` is read only on a refusal (to name the
 * issuer the token claims). With the `auth` channel alone listening (the
 * metrics adapters), a decision made at once builds nothing but its report
 * and its message.
 */
export function observeAuth<S, T, X = undefined, Y = undefined>(
  transport: OidcAuthTransport,
  token: string | undefined,
  subject: S,
  configOf: (subject: S) => OidcConfig | undefined,
  issuerOf: (result: T) => string | undefined,
  run: ObservedRun<S, T, X, Y>,
  x?: X,
  y?: Y,
): T | Promise<T> {
  if (authTracing.hasSubscribers) return traced(transport, token, subject, configOf, issuerOf, run, x as X, y as Y);
  const started = performance.now();
  const report: OidcVerificationReport = {};
  let result: T | Promise<T>;
  try {
    result = run(subject, token, report, x as X, y as Y);
  } catch (error) {
    publishAuth(transport, claimedIssuer(token, configOf(subject)), codeOf(error), started, report);
    throw error;
  }
  if (!(result instanceof Promise)) {
    publishAuth(transport, issuerOf(result), "success", started, report);
    return result;
  }
  return result.then(
    (value) => {
      publishAuth(transport, issuerOf(value), "success", started, report);
      return value;
    },
    (error: unknown) => {
      publishAuth(transport, claimedIssuer(token, configOf(subject)), codeOf(error), started, report);
      throw error;
    },
  );
}

const codeOf = (error: unknown): OidcAuthErrorCode => (isOidcAuthError(error) ? error.code : "ERR_AUTH_MISCONFIGURED");

/** The `auth` message, when someone listens (checked again: a subscriber may have left meanwhile). */
function publishAuth(transport: OidcAuthTransport, issuer: string | undefined, outcome: OidcAuthMessage["outcome"], started: number | undefined, report: OidcVerificationReport): void {
  if (started === undefined || !authChannel.hasSubscribers) return;
  const path = report.path;
  const message: OidcAuthMessage = {
    transport,
    issuer,
    outcome,
    durationMs: performance.now() - started,
    cache: path === undefined ? undefined : path === "cache" ? "hit" : "miss",
    path,
  };
  authChannel.publish(message);
}

/** `observeAuth` with the tracing channel's events around the authentication. */
function traced<S, T, X, Y>(
  transport: OidcAuthTransport,
  token: string | undefined,
  subject: S,
  configOf: (subject: S) => OidcConfig | undefined,
  issuerOf: (result: T) => string | undefined,
  run: ObservedRun<S, T, X, Y>,
  x: X,
  y: Y,
): T | Promise<T> {
  const started = authChannel.hasSubscribers ? performance.now() : undefined;
  const report: OidcVerificationReport = {};
  const context: OidcAuthTraceContext = { transport };
  const decided = (result: T | undefined, failed: boolean, error?: unknown): void => {
    if (failed) {
      const code = codeOf(error);
      context.outcome = code;
      context.issuer = claimedIssuer(token, configOf(subject));
      // The code and its client message only: the reason can quote the request.
      context.error = new OidcAuthError(code);
    } else {
      context.outcome = "success";
      context.issuer = issuerOf(result as T);
    }
    publishAuth(transport, context.issuer, context.outcome, started, report);
  };
  const settledAsync = (): void => {
    authTracing.asyncStart.publish(context);
    authTracing.asyncEnd.publish(context);
  };
  return authTracing.start.runStores(context, () => {
    try {
      const result = run(subject, token, report, x, y);
      if (!(result instanceof Promise)) {
        decided(result, false);
        return result;
      }
      return result.then(
        (value) => {
          decided(value, false);
          settledAsync();
          return value;
        },
        (error: unknown) => {
          decided(undefined, true, error);
          authTracing.error.publish(context);
          settledAsync();
          throw error;
        },
      );
    } catch (error) {
      decided(undefined, true, error);
      authTracing.error.publish(context);
      throw error;
    } finally {
      authTracing.end.publish(context);
    }
  });
}
