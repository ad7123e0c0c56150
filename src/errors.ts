/**
 * The one error type of ioserver-oidc. Its `code` is stable and is all a
 * client ever learns; `reason` is the server-side explanation for logs.
 */

/** Every code this package can produce. Codes are never reused. */
export type OidcAuthErrorCode =
  | "ERR_AUTH_TOKEN_REQUIRED"
  | "ERR_AUTH_TOKEN_INVALID"
  | "ERR_USER_DISABLED"
  | "ERR_USER_PROVISION_FAILED"
  | "ERR_FORBIDDEN"
  | "ERR_AUTH_MISCONFIGURED"
  | "ERR_AUTH_UNAVAILABLE"
  | "ERR_AUTH_TOKEN_EXPIRED"
  | "ERR_AUTH_SUBJECT_MISMATCH"
  | "ERR_AUTH_RATE_LIMITED"
  | "ERR_AUTH_REVOKED"
  | "ERR_AUTH_DPOP_INVALID"
  | "ERR_AUTH_DPOP_NONCE";

/** RFC 6750 section 3: the challenge a refusal carries on HTTP. */
type Challenge =
  /** `Bearer` alone: no credentials were presented. */
  | "bare"
  /** `error="invalid_token"`: the token itself is refused. */
  | "invalid_token"
  /** `error="insufficient_scope"`: the caller is authenticated, not allowed. */
  | "insufficient_scope"
  /** No challenge: the failure is the server's (`Retry-After` on 503). */
  | "none";

interface CodeInfo {
  readonly status: number;
  /** HTTP reason phrase for the JSON body's `error`. */
  readonly error: string;
  /** What the client is told. Never says why a check failed. */
  readonly message: string;
  readonly challenge: Challenge;
  /** Syslog level at which a refusal with this code is logged. */
  readonly logLevel: number;
}

/** One row per code: everything the transports and the log need to know about it. */
const CODES: Readonly<Record<OidcAuthErrorCode, CodeInfo>> = Object.freeze({
  ERR_AUTH_TOKEN_REQUIRED: { status: 401, error: "Unauthorized", message: "An access token is required", challenge: "bare", logLevel: 7 },
  ERR_AUTH_TOKEN_INVALID: { status: 401, error: "Unauthorized", message: "The access token is invalid", challenge: "invalid_token", logLevel: 4 },
  ERR_USER_DISABLED: { status: 403, error: "Forbidden", message: "The user account is disabled", challenge: "insufficient_scope", logLevel: 4 },
  ERR_USER_PROVISION_FAILED: { status: 500, error: "Internal Server Error", message: "The user could not be provisioned", challenge: "none", logLevel: 3 },
  ERR_FORBIDDEN: { status: 403, error: "Forbidden", message: "Access is forbidden", challenge: "insufficient_scope", logLevel: 4 },
  ERR_AUTH_MISCONFIGURED: { status: 500, error: "Internal Server Error", message: "Authentication is not configured", challenge: "none", logLevel: 3 },
  ERR_AUTH_UNAVAILABLE: { status: 503, error: "Service Unavailable", message: "Authentication is temporarily unavailable", challenge: "none", logLevel: 3 },
  ERR_AUTH_TOKEN_EXPIRED: { status: 401, error: "Unauthorized", message: "The access token has expired", challenge: "invalid_token", logLevel: 6 },
  ERR_AUTH_SUBJECT_MISMATCH: { status: 403, error: "Forbidden", message: "The new token is for another user", challenge: "insufficient_scope", logLevel: 4 },
  ERR_AUTH_RATE_LIMITED: { status: 429, error: "Too Many Requests", message: "Too many refresh attempts", challenge: "none", logLevel: 4 },
  ERR_AUTH_REVOKED: { status: 401, error: "Unauthorized", message: "The session was revoked", challenge: "invalid_token", logLevel: 6 },
  // The DPoP codes' challenge is the `DPoP` one, built by the caller (`challenge` option); `invalid_token` is the Bearer fallback.
  ERR_AUTH_DPOP_INVALID: { status: 401, error: "Unauthorized", message: "The DPoP proof is invalid", challenge: "invalid_token", logLevel: 4 },
  ERR_AUTH_DPOP_NONCE: { status: 401, error: "Unauthorized", message: "A DPoP nonce is required", challenge: "invalid_token", logLevel: 7 },
});

/** Syslog level at which a refusal with this code is logged (3 for anything unknown). */
export function logLevelOf(code: OidcAuthErrorCode): number {
  return CODES[code]?.logLevel ?? 3;
}

/** Seconds a client should wait before retrying after a temporary failure (`ERR_AUTH_UNAVAILABLE`, a logout that could not be processed). */
export const RETRY_AFTER_SECONDS = 5;

/** The JSON body sent to HTTP clients, and `err.data` for Socket.IO clients (without `statusCode`/`error`). */
export interface OidcAuthErrorBody {
  statusCode: number;
  error: string;
  code: OidcAuthErrorCode;
  message: string;
}

export interface OidcAuthErrorOptions {
  /** Server-side explanation for the log; never sent to the client. */
  reason?: string;
  /** The underlying error (jose's, the users manager's, …). */
  cause?: unknown;
  /** `realm` parameter of the `WWW-Authenticate` challenge. */
  realm?: string;
  /** `scope` parameter of an `insufficient_scope` challenge: the scopes that would have been enough (RFC 6750 section 3). */
  scope?: string;
  /**
   * The whole `WWW-Authenticate` value, in place of the one the code implies
   * (DPoP refusals: a `DPoP` challenge, with the `Bearer` one where Bearer is
   * accepted). `realm` is then not added: put it in.
   */
  challenge?: string;
  /** More response headers for HTTP (lower-case names), e.g. `dpop-nonce`. */
  extraHeaders?: Readonly<Record<string, string>>;
}

export class OidcAuthError extends Error {
  override readonly name = "OidcAuthError";
  readonly code: OidcAuthErrorCode;
  /** HTTP status for this code. */
  readonly statusCode: number;
  /** Alias of `statusCode`. */
  readonly status: number;
  /** Why it failed, for the server log. Never contains the token. */
  readonly reason: string;
  /** Response headers for HTTP: an RFC 6750 challenge on 401/403, `Retry-After` on 503. */
  readonly headers: Readonly<Record<string, string>>;
  /** The `scope` of the challenge, when a scope check refused. */
  readonly scope: string | undefined;
  /** Whether `headers` were given (the `challenge` option) rather than derived from the code. */
  private readonly replacedChallenge: boolean;

  constructor(code: OidcAuthErrorCode, options: OidcAuthErrorOptions = {}) {
    const info = CODES[code];
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- JavaScript callers can pass a non-string (e.g. a Symbol, which a template literal would throw on)
    if (info === undefined) throw new TypeError(`Unknown OidcAuthError code: ${String(code)}`);
    super(info.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = info.status;
    this.status = info.status;
    this.reason = options.reason ?? info.message;
    this.scope = options.scope;
    this.replacedChallenge = options.challenge !== undefined || options.extraHeaders !== undefined;
    const headers = options.challenge === undefined ? buildHeaders(code, options.realm, options.scope) : { "www-authenticate": options.challenge };
    this.headers = Object.freeze(options.extraHeaders === undefined ? headers : { ...headers, ...options.extraHeaders });
  }

  /** The public body: `{ statusCode, error, code, message }`. */
  toJSON(): OidcAuthErrorBody {
    return { statusCode: this.statusCode, error: CODES[this.code].error, code: this.code, message: this.message };
  }

  /** The same error with a `realm` on its challenge. */
  withRealm(realm: string | undefined): OidcAuthError {
    // A replaced challenge carries its realm already.
    if (realm === undefined || this.replacedChallenge) return this;
    return new OidcAuthError(this.code, { reason: this.reason, cause: this.cause, realm, scope: this.scope });
  }

  /**
   * @internal The same error with the challenge `make` builds from the
   * derived one (the HTTP front-end adds the DPoP challenge); unchanged when
   * the challenge was given rather than derived, or `make` gives nothing.
   */
  withChallengeFrom(make: (derived: string | undefined) => string | undefined): OidcAuthError {
    if (this.replacedChallenge) return this;
    const challenge = make(this.headers["www-authenticate"]);
    if (challenge === undefined) return this;
    return new OidcAuthError(this.code, { reason: this.reason, cause: this.cause, scope: this.scope, challenge });
  }
}

/** Type guard that also works across the ESM and CommonJS copies of the package. */
export function isOidcAuthError(value: unknown): value is OidcAuthError {
  return (
    value instanceof OidcAuthError ||
    (value instanceof Error && value.name === "OidcAuthError" && typeof (value as { code?: unknown }).code === "string")
  );
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * RFC 6750 section 3: a request with no credentials gets a bare challenge; an
 * invalid token `error="invalid_token"`; a refusal after authentication
 * `error="insufficient_scope"`.
 */
function buildHeaders(code: OidcAuthErrorCode, realm: string | undefined, scope: string | undefined): Record<string, string> {
  if (code === "ERR_AUTH_UNAVAILABLE") return { "retry-after": String(RETRY_AFTER_SECONDS) };
  const { challenge, message } = CODES[code];
  if (challenge === "none") return {};
  const params: string[] = [];
  if (realm !== undefined) params.push(`realm=${quote(realm)}`);
  if (challenge !== "bare") params.push(`error="${challenge}"`, `error_description=${quote(message)}`);
  if (challenge === "insufficient_scope" && scope !== undefined) params.push(`scope=${quote(scope)}`);
  return { "www-authenticate": params.length === 0 ? "Bearer" : `Bearer ${params.join(", ")}` };
}
