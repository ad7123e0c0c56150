/**
 * OAuth 2.0 Token Introspection (RFC 7662), client side: asking one issuer's
 * introspection endpoint whether a token is active, for tokens that cannot
 * be verified locally (opaque reference tokens) or when the app wants the
 * provider's live word.
 *
 * Design:
 *
 * - One introspector per issuer. It holds the endpoint's health, the cache
 *   and the requests in flight; no timers (expiry is read on use), so it
 *   needs no closing.
 * - The request (section 2.1): `POST` of `token` and
 *   `token_type_hint=access_token`, form-encoded, authenticated as the
 *   resource server (clientAuth.ts), no redirects followed (the token would
 *   go with them), within `timeout`.
 * - Before any request, the token must look like one (`opaqueTokenProblem`):
 *   RFC 6750 `b64token` characters and at most `maxTokenLength` of them.
 *   Anything else is refused here, so junk chosen by an unauthenticated
 *   client (markup a WAF blocks, a URL-sized string a gateway refuses)
 *   never reaches the provider.
 * - The response (section 2.2) must be HTTP 200, `application/json`, at most
 *   MAX_RESPONSE_BYTES, a JSON object with a boolean `active`. What counts
 *   as the endpoint failing (`ERR_AUTH_UNAVAILABLE`, 503, and the circuit
 *   opens) is only what says nothing about the token: no connection, no
 *   answer within `timeout`, 5xx, 408, 429, and a 200 that is not a valid
 *   answer. A 401, or any 4xx naming `invalid_client`, is our request being
 *   refused: `ERR_AUTH_MISCONFIGURED` (500), counted as a failure too. Any
 *   other 3xx or 4xx is about the token that was sent (a WAF or gateway in
 *   front of the endpoint refusing its content, a provider refusing it with
 *   `invalid_request`): that token alone is refused (`ERR_AUTH_TOKEN_INVALID`)
 *   and the refusal is cached like `active: false`; the circuit is left as
 *   it was, so one client cannot shut introspection down for every other.
 *   A token is never accepted without a valid answer (section 4).
 * - What the answer says about the token is checked in
 *   introspectionClaims.ts: `active: false` → `ERR_AUTH_TOKEN_INVALID`; an
 *   active token needs an `exp` still ahead, an `nbf` not ahead, the
 *   configured `iss` when it names one. `aud` is exposed (`audienceOf`,
 *   `hasAudience`) for the caller to check against its own configuration.
 * - Caches (introspectionCache.ts): keyed by the token's SHA-256, never the
 *   token. An active answer is kept for min(`cacheTtl`, until `exp`, the
 *   response's `Cache-Control: max-age`); a refusal for min(
 *   `negativeCacheTtl`, `max-age`), in a cache of its own a tenth the size
 *   (`negativeEntriesFor`), so a flood of refused tokens can only evict
 *   other refusals, never an active answer. `no-store`, which introspection
 *   endpoints send because the body describes a credential, addresses
 *   shared HTTP caches and is not read here: section 4 lets the resource
 *   server cache, bounded by `exp`, and `cacheTtl` bounds how long a revoked
 *   token may still be accepted. Bounded by `maxEntries`, least recently
 *   used first. Cached answers are served whatever the endpoint's state
 *   (backing off after a 429 included).
 * - Single flight: concurrent callers for one token share one request. At
 *   most `maxConcurrent` requests are in flight; a token that would need
 *   one more is refused at once with `ERR_AUTH_UNAVAILABLE`, without a
 *   request and without counting as a failure.
 * - Failing endpoint: the back-off of the key sets (util/backoff.ts, or a
 *   longer `Retry-After`, through keys/fetchJwks.ts's `retryDelay`). After a
 *   failure the circuit is open: no request before the back-off ends, then
 *   one probe at a time (a request for another token, arriving while the
 *   probe runs, fails fast instead of piling onto a failing server); the
 *   first valid answer closes it. While it is open an active answer may
 *   still be served from the cache for `staleIfError` past its freshness
 *   (default 0: never; never past the token's `exp`).
 * - Logging: the token never appears; the endpoint is configuration; what
 *   the endpoint sent (an OAuth error code, an `iss`) is quoted and
 *   shortened (`show`). One line when the endpoint starts failing, one when
 *   it recovers.
 */
import { OidcAuthError, type OidcAuthErrorCode } from "../errors.js";
import { FetchStatusError, FetchTimeoutError, parseRetryAfter, retryDelay } from "../keys/fetchJwks.js";
import { readBodyLimited, readJsonObject } from "../util/readBodyLimited.js";
import { describeError, isObject, show } from "../util/text.js";
import { createClientAuthenticator, type ClientAuthentication, type IntrospectionCredentials } from "./clientAuth.js";
import { checkIntrospection, type IntrospectionClaims, type IntrospectionOutcome } from "./introspectionClaims.js";
import { IntrospectionCache, tokenHash, type IntrospectionCacheStats } from "./introspectionCache.js";

/** The largest introspection response read; a larger one is cut off while it streams. */
export const MAX_RESPONSE_BYTES = 64 * 1024;
/** The most of an error response read, for its OAuth `error` code. */
const MAX_ERROR_BYTES = 4 * 1024;

/** Defaults of {@link IntrospectorOptions}, durations in ms except `clockTolerance` (s). */
export const INTROSPECTION_DEFAULTS = Object.freeze({
  timeout: 5_000,
  cacheTtl: 60_000,
  negativeCacheTtl: 10_000,
  staleIfError: 0,
  maxEntries: 10_000,
  clockTolerance: 5,
  maxTokenLength: 2048,
  maxConcurrent: 64,
});

/** RFC 6750 section 2.1 `b64token`: the only form a Bearer token can take. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Why the token cannot be one worth asking the endpoint about (not a
 * `b64token`, or longer than `maxLength`), or undefined. The reason never
 * quotes the token.
 */
export function opaqueTokenProblem(token: string, maxLength: number): string | undefined {
  if (token.length > maxLength) return `token is ${token.length} characters, over the introspection limit of ${maxLength}`;
  if (!B64TOKEN.test(token)) return "token has characters a Bearer token cannot have (RFC 6750 b64token)";
  return undefined;
}

/** Size of the cache of refusals for a cache of `maxEntries` active answers: a tenth, at least 100, never more than `maxEntries`. */
export function negativeEntriesFor(maxEntries: number): number {
  return Math.min(maxEntries, Math.max(100, Math.ceil(maxEntries / 10)));
}

/** Options of {@link createIntrospector}. */
export interface IntrospectorOptions extends IntrospectionCredentials {
  /** The configured issuer: the introspection response's `iss`, when present, must equal it. */
  issuer: string;
  /** The introspection endpoint (the discovery document's `introspection_endpoint`). http(s) only. */
  endpoint: string;
  /** Deadline of one request, headers and body, in ms. Default 5000. */
  timeout?: number | undefined;
  /** Longest time an active answer is reused, in ms (also bounded by `exp` and `max-age`). Default 60000. 0 turns positive caching off. */
  cacheTtl?: number | undefined;
  /** How long a refusal is reused, in ms (also bounded by `max-age`). Default 10000. 0 turns negative caching off. */
  negativeCacheTtl?: number | undefined;
  /** How long past its freshness an active answer may still be used while the endpoint fails, in ms (never past `exp`). Default 0. */
  staleIfError?: number | undefined;
  /** Most tokens remembered. Default 10000. 0 turns the cache off. */
  maxEntries?: number | undefined;
  /** Seconds of clock skew tolerated on `exp` and `nbf`. Default 5. */
  clockTolerance?: number | undefined;
  /** Longest token sent to the endpoint, in characters; a longer one is refused without a request. Default 2048. */
  maxTokenLength?: number | undefined;
  /** Most requests in flight at once; a token needing another is refused with `ERR_AUTH_UNAVAILABLE`. Default 64. */
  maxConcurrent?: number | undefined;
  /** Where events go (syslog levels). */
  log?: ((level: number, text: string) => void) | undefined;
}

/** What `health()` reports. */
export interface IntrospectionHealth {
  endpoint: string;
  /** `open` after a failure, until a request gets a valid answer. */
  circuit: "closed" | "open";
  /** Consecutive failed requests. */
  failures: number;
  /** Epoch ms before which no request is sent (back-off), while failing. */
  retryAt: number | undefined;
  lastError: string | undefined;
  /** Requests sent to the endpoint (answered or not). */
  requests: number;
  /** Requests in flight now. */
  inflight: number;
  /** Tokens refused without a request: not a Bearer token's form, or too long. */
  malformed: number;
  /** Tokens the endpoint (or what stands in front of it) refused with a 3xx/4xx about the token itself. */
  refusedByStatus: number;
  /** Tokens refused without a request because `maxConcurrent` requests were in flight. */
  overloaded: number;
  /** Active answers. */
  cache: IntrospectionCacheStats;
  /** Refusals (`active: false`, a 3xx/4xx about the token). */
  negativeCache: IntrospectionCacheStats;
}

/** An issuer's introspection client. */
export interface Introspector {
  readonly issuer: string;
  readonly endpoint: string;
  /**
   * The active token's claims (frozen), or a rejection with an
   * `OidcAuthError`: `ERR_AUTH_TOKEN_INVALID` (inactive, or an answer that
   * fails the checks), `ERR_AUTH_TOKEN_EXPIRED`, `ERR_AUTH_UNAVAILABLE`
   * (endpoint down, slow, failing or answering nonsense; also while backing
   * off), `ERR_AUTH_MISCONFIGURED` (the endpoint refuses our request:
   * client authentication).
   *
   * `verified`: the caller verified the token itself (a JWT whose signature
   * checked out), so its form is not filtered; otherwise a token that is
   * not a `b64token` of at most `maxTokenLength` characters is refused
   * (`ERR_AUTH_TOKEN_INVALID`) without a request.
   */
  introspect(token: string, verified?: boolean): Promise<Readonly<IntrospectionClaims>>;
  /**
   * The cached answer for `token`, at once, when it is active and fresh:
   * what `introspect` would resolve to without a request, with no promise
   * and no hash-and-lookup twice. `undefined` otherwise (not cached, stale,
   * or a cached refusal): ask `introspect`.
   */
  cachedClaims(token: string): Readonly<IntrospectionClaims> | undefined;
  /** Forget a token's cached answer (e.g. after the app learns it was revoked). */
  forget(token: string): void;
  health(): IntrospectionHealth;
}

/** The endpoint refused our request: client authentication (401, `invalid_client`). */
class IntrospectionRefusedError extends FetchStatusError {}

/** A 3xx or 4xx about the token that was sent, not about the endpoint or our credentials. */
class TokenRefusedError extends Error {
  override readonly name = "TokenRefusedError";
}

/** The request could not be authenticated (the assertion could not be signed with the configured key). */
class ClientAuthenticationError extends Error {
  override readonly name = "ClientAuthenticationError";
}

/** An answer for the token: its body and the `max-age` it came with (ms). */
interface Answer {
  body: Record<string, unknown>;
  maxAge: number | undefined;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new TypeError(`introspection: ${name} must be a non-negative number`);
  return value;
}

/** `Cache-Control: max-age=N`, in ms, when present. */
export function parseMaxAge(value: string | null): number | undefined {
  if (value === null) return undefined;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?:,|$)/i.exec(value);
  return match === null ? undefined : Number(match[1]) * 1000;
}

/** Whether the `Content-Type` is `application/json` (any parameters). */
function isJson(contentType: string | null): boolean {
  return contentType !== null && contentType.split(";", 1)[0]!.trim().toLowerCase() === "application/json";
}

/** The OAuth `error` of an error response, when it sent one. */
async function oauthError(response: Response): Promise<unknown> {
  try {
    if (!isJson(response.headers.get("content-type"))) return undefined;
    const body: unknown = JSON.parse(await readBodyLimited(response, MAX_ERROR_BYTES, "the error response"));
    return isObject(body) ? body["error"] : undefined;
  } catch {
    return undefined;
  } finally {
    await response.body?.cancel().catch(() => undefined);
  }
}

/** A new introspector; throws a `TypeError` naming the option when the options are invalid. */
export function createIntrospector(options: IntrospectorOptions): Introspector {
  const { issuer, endpoint } = options;
  if (typeof issuer !== "string" || issuer === "") throw new TypeError("introspection: issuer must be a non-empty string");
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError("introspection: endpoint must be an absolute URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError("introspection: endpoint must be an http(s) URL");
  if (url.username !== "" || url.password !== "") throw new TypeError("introspection: endpoint must not carry credentials; use clientId and clientSecret");
  const authenticate = createClientAuthenticator(options, issuer);
  const timeout = nonNegative("timeout", options.timeout, INTROSPECTION_DEFAULTS.timeout);
  if (timeout === 0) throw new TypeError("introspection: timeout must be positive");
  const cacheTtl = nonNegative("cacheTtl", options.cacheTtl, INTROSPECTION_DEFAULTS.cacheTtl);
  const negativeCacheTtl = nonNegative("negativeCacheTtl", options.negativeCacheTtl, INTROSPECTION_DEFAULTS.negativeCacheTtl);
  const staleIfError = nonNegative("staleIfError", options.staleIfError, INTROSPECTION_DEFAULTS.staleIfError);
  const clockTolerance = nonNegative("clockTolerance", options.clockTolerance, INTROSPECTION_DEFAULTS.clockTolerance);
  const maxEntries = Math.floor(nonNegative("maxEntries", options.maxEntries, INTROSPECTION_DEFAULTS.maxEntries));
  const maxTokenLength = Math.floor(nonNegative("maxTokenLength", options.maxTokenLength, INTROSPECTION_DEFAULTS.maxTokenLength));
  if (maxTokenLength === 0) throw new TypeError("introspection: maxTokenLength must be positive");
  const maxConcurrent = Math.floor(nonNegative("maxConcurrent", options.maxConcurrent, INTROSPECTION_DEFAULTS.maxConcurrent));
  if (maxConcurrent === 0) throw new TypeError("introspection: maxConcurrent must be positive");
  const log = options.log;

  /** Active answers. */
  const cache = new IntrospectionCache(maxEntries);
  /** Refusals, apart: refused tokens cost an attacker nothing to make, and must not push active answers out. */
  const refusals = new IntrospectionCache(negativeEntriesFor(maxEntries));
  /** Requests in flight, by token hash: concurrent callers for one token share one. */
  const inflight = new Map<string, Promise<IntrospectionOutcome>>();
  let failures = 0;
  let retryAt = 0;
  let lastError: unknown;
  let probing = false;
  let requests = 0;
  let servingStale = false;
  let malformed = 0;
  let refusedByStatus = 0;
  let overloaded = 0;
  /** When each kind of notice was last logged (at most one a minute each). */
  let refusedLoggedAt = -Infinity;
  let overloadLoggedAt = -Infinity;

  function emit(level: number, text: string): void {
    try {
      log?.(level, `[ioserver-oidc] ${text}`);
    } catch {
      // A broken logger must not change an auth decision.
    }
  }

  function codeOf(error: unknown): OidcAuthErrorCode {
    return error instanceof IntrospectionRefusedError || error instanceof ClientAuthenticationError ? "ERR_AUTH_MISCONFIGURED" : "ERR_AUTH_UNAVAILABLE";
  }

  function unavailable(error: unknown, note?: string): OidcAuthError {
    return new OidcAuthError(codeOf(error), {
      reason: `introspection endpoint ${endpoint} could not answer: ${describeError(error)}${note === undefined ? "" : ` (${note})`}`,
      cause: error,
    });
  }

  /** One POST to the endpoint; resolves to a valid answer or rejects with what went wrong. */
  async function post(token: string): Promise<Answer> {
    let auth: ClientAuthentication;
    try {
      auth = await authenticate();
    } catch (error) {
      throw new ClientAuthenticationError("could not sign the client assertion", { cause: error });
    }
    const body = new URLSearchParams({ token, token_type_hint: "access_token", ...auth.fields });
    const signal = AbortSignal.timeout(timeout);
    requests++;
    let response: Response;
    try {
      response = await fetch(endpoint, {
        method: "POST",
        redirect: "manual",
        signal,
        headers: { ...auth.headers, accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
        body,
      });
    } catch (error) {
      if (signal.aborted) throw new FetchTimeoutError(`no answer within ${timeout} ms`);
      throw error;
    }
    const { status } = response;
    if (status !== 200) {
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      const error = await oauthError(response);
      const message = `answered HTTP ${status}${error === undefined ? "" : ` (${show(error, 40)})`}`;
      if (status >= 300 && status < 500 && status !== 408 && status !== 429) {
        if (status === 401 || error === "invalid_client") throw new IntrospectionRefusedError(message, retryAfter);
        throw new TokenRefusedError(message);
      }
      throw new FetchStatusError(message, retryAfter);
    }
    const contentType = response.headers.get("content-type");
    if (!isJson(contentType)) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`answered content-type ${show(contentType, 60)}, not application/json`);
    }
    const parsed = await readJsonObject(response, MAX_RESPONSE_BYTES, "the introspection response", () => (signal.aborted ? new FetchTimeoutError(`body not received within ${timeout} ms`) : undefined));
    if (typeof parsed["active"] !== "boolean") throw new Error(`answered an object whose "active" is not a boolean (${show(parsed["active"], 20)})`);
    return { body: parsed, maxAge: parseMaxAge(response.headers.get("cache-control")) };
  }

  function succeeded(): void {
    if (failures > 0) emit(6, `introspection endpoint ${endpoint} recovered after ${failures} failed request(s)`);
    failures = 0;
    retryAt = 0;
    lastError = undefined;
    servingStale = false;
  }

  function failed(error: unknown): OidcAuthError {
    failures++;
    const delay = retryDelay(failures, error);
    retryAt = Date.now() + delay;
    lastError = error;
    if (failures === 1) emit(3, `introspection endpoint ${endpoint} failed: ${describeError(error)}; failing fast, next attempt in ${delay} ms`);
    return unavailable(error, `retry in ${delay} ms`);
  }

  /** Store the outcome for the token under `key`, for as long as it may be reused (an active answer and a refusal each in its own cache). */
  function remember(key: string, outcome: IntrospectionOutcome, maxAge: number | undefined, now: number): void {
    if (outcome.active) {
      refusals.delete(key);
      const expiresAt = outcome.claims.exp * 1000;
      const ttl = Math.min(cacheTtl, expiresAt - now, maxAge ?? Infinity);
      if (ttl > 0) cache.set(key, { outcome, freshUntil: now + ttl, staleUntil: Math.min(expiresAt, now + ttl + staleIfError) });
    } else {
      cache.delete(key);
      const ttl = Math.min(negativeCacheTtl, maxAge ?? Infinity);
      if (ttl > 0) refusals.set(key, { outcome, freshUntil: now + ttl, staleUntil: now + ttl });
    }
  }

  /** The endpoint (or a WAF, a gateway in front of it) refused this token with a 3xx/4xx: that token only. */
  function refusedToken(key: string, error: TokenRefusedError): IntrospectionOutcome {
    refusedByStatus++;
    const now = Date.now();
    if (now - refusedLoggedAt >= 60_000) {
      refusedLoggedAt = now;
      emit(4, `introspection endpoint ${endpoint} ${error.message} for a token: that token is refused (${refusedByStatus} so far); the endpoint is not counted as failing`);
    }
    const outcome: IntrospectionOutcome = { active: false, code: "ERR_AUTH_TOKEN_INVALID", reason: `the introspection endpoint ${error.message} for this token` };
    remember(key, outcome, undefined, now);
    return outcome;
  }

  /** Ask the endpoint (the caller has made sure nobody is asking for this token already). */
  function ask(key: string, token: string, probe: boolean): Promise<IntrospectionOutcome> {
    if (probe) probing = true;
    const pending = post(token).then(
      (answer) => {
        succeeded();
        const now = Date.now();
        const outcome = checkIntrospection(answer.body, issuer, now, clockTolerance);
        remember(key, outcome, answer.maxAge, now);
        return outcome;
      },
      (error: unknown) => {
        if (error instanceof TokenRefusedError) return refusedToken(key, error);
        throw failed(error);
      },
    );
    inflight.set(key, pending);
    const settle = () => {
      if (inflight.get(key) === pending) inflight.delete(key);
      if (probe) probing = false;
    };
    pending.then(settle, settle);
    return pending;
  }

  /** An active answer kept past its freshness, while the endpoint fails; else the failure. */
  function staleOr(key: string, error: OidcAuthError, now: number): IntrospectionOutcome {
    const stale = cache.stale(key, now);
    if (stale === undefined) throw error;
    if (!servingStale) {
      servingStale = true;
      emit(4, `introspection endpoint ${endpoint} is failing: using cached answers for up to ${staleIfError} ms past their freshness (staleIfError)`);
    }
    return stale.outcome;
  }

  /** `maxConcurrent` requests are in flight: this token waits for none of them. */
  function overload(now: number): OidcAuthError {
    overloaded++;
    if (now - overloadLoggedAt >= 60_000) {
      overloadLoggedAt = now;
      emit(4, `introspection endpoint ${endpoint}: ${maxConcurrent} requests in flight (maxConcurrent); tokens needing another are refused until some complete (${overloaded} so far)`);
    }
    return new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: `${maxConcurrent} introspection requests are in flight (maxConcurrent)` });
  }

  async function outcomeFor(token: string): Promise<IntrospectionOutcome> {
    const key = tokenHash(token);
    const now = Date.now();
    const fresh = cache.fresh(key, now) ?? refusals.fresh(key, now);
    if (fresh !== undefined) return fresh.outcome;
    let pending = inflight.get(key);
    if (pending === undefined) {
      if (failures > 0) {
        if (now < retryAt) return staleOr(key, unavailable(lastError, `backing off for ${retryAt - now} ms after ${failures} failed request(s)`), now);
        if (probing) return staleOr(key, unavailable(lastError, "circuit open; a probe request is in flight"), now);
      }
      if (inflight.size >= maxConcurrent) return staleOr(key, overload(now), now);
      pending = ask(key, token, failures > 0);
    }
    try {
      return await pending;
    } catch (error) {
      if (error instanceof OidcAuthError) return staleOr(key, error, Date.now());
      throw error;
    }
  }

  return {
    issuer,
    endpoint,
    async introspect(token: string, verified = false): Promise<Readonly<IntrospectionClaims>> {
      if (typeof token !== "string" || token === "") throw new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason: "no token to introspect" });
      if (!verified) {
        const problem = opaqueTokenProblem(token, maxTokenLength);
        if (problem !== undefined) {
          malformed++;
          throw new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason: problem });
        }
      }
      const outcome = await outcomeFor(token);
      if (outcome.active) return outcome.claims;
      throw new OidcAuthError(outcome.code, { reason: outcome.reason });
    },
    cachedClaims(token: string): Readonly<IntrospectionClaims> | undefined {
      const fresh = cache.hit(tokenHash(token), Date.now());
      return fresh !== undefined && fresh.outcome.active ? fresh.outcome.claims : undefined;
    },
    forget(token: string): void {
      const key = tokenHash(token);
      cache.delete(key);
      refusals.delete(key);
    },
    health(): IntrospectionHealth {
      return {
        endpoint,
        circuit: failures > 0 ? "open" : "closed",
        failures,
        retryAt: failures > 0 ? retryAt : undefined,
        lastError: lastError === undefined ? undefined : describeError(lastError),
        requests,
        inflight: inflight.size,
        malformed,
        refusedByStatus,
        overloaded,
        cache: cache.stats(),
        negativeCache: refusals.stats(),
      };
    },
  };
}
