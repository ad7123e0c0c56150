/**
 * Authentication seen from outside: the `auth` channel's message and the
 * `authenticate` tracing channel's events around one authentication (see
 * diagnostics.ts). Callers check `observingAuth()` first and run the
 * authentication bare when it is false: nobody listening costs that check.
 */
import { authChannel, authTracing, type OidcAuthTraceContext, type OidcAuthTransport, type OidcVerificationReport } from "../diagnostics.js";
import { isOidcAuthError, OidcAuthError } from "../errors.js";
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
 * Run one authentication (`run`, which returns its result or a promise of
 * it) under the channels: the `authenticate` tracing channel's `start` and
 * `end` around the call, `asyncStart` and `asyncEnd` when it returned a
 * promise and that settles, `error` on a refusal (Node's tracingChannel
 * contract, without turning a synchronous decision into a promise); then
 * the `auth` message. The result or the refusal is handed on unchanged.
 */
export function observeAuth<T>(
  transport: OidcAuthTransport,
  token: unknown,
  configOf: () => OidcConfig | undefined,
  issuerOf: (result: T) => string | undefined,
  run: (report: OidcVerificationReport) => T | Promise<T>,
): T | Promise<T> {
  const started = authChannel.hasSubscribers ? performance.now() : undefined;
  const report: OidcVerificationReport = {};
  const context: OidcAuthTraceContext = { transport };
  const decided = (result: T | undefined, failed: boolean, error?: unknown): void => {
    if (failed) {
      const code = isOidcAuthError(error) ? error.code : "ERR_AUTH_MISCONFIGURED";
      context.outcome = code;
      context.issuer = claimedIssuer(token, configOf());
      // The code and its client message only: the reason can quote the request.
      context.error = new OidcAuthError(code);
    } else {
      context.outcome = "success";
      context.issuer = issuerOf(result as T);
    }
    if (started !== undefined && authChannel.hasSubscribers) {
      const path = report.path;
      authChannel.publish({
        transport,
        issuer: context.issuer,
        outcome: context.outcome,
        durationMs: performance.now() - started,
        cache: path === undefined ? undefined : path === "cache" ? "hit" : "miss",
        path,
      });
    }
  };

  // Decided once: a trace that started without subscribers publishes nothing of its own later.
  const traced = authTracing.hasSubscribers;
  const body = (): T | Promise<T> => {
    try {
      const result = run(report);
      if (!(result instanceof Promise)) {
        decided(result, false);
        return result;
      }
      return result.then(
        (value) => {
          decided(value, false);
          if (traced) settledAsync();
          return value;
        },
        (error: unknown) => {
          decided(undefined, true, error);
          if (traced) {
            authTracing.error.publish(context);
            settledAsync();
          }
          throw error;
        },
      );
    } catch (error) {
      decided(undefined, true, error);
      if (traced) authTracing.error.publish(context);
      throw error;
    } finally {
      if (traced) authTracing.end.publish(context);
    }
  };
  const settledAsync = (): void => {
    authTracing.asyncStart.publish(context);
    authTracing.asyncEnd.publish(context);
  };
  return traced ? authTracing.start.runStores(context, body) : body();
}
