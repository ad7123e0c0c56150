/**
 * A human sentence for each code an ioserver-oidc server answers with: the
 * `code` of an HTTP error body, or the `message` of a Socket.IO
 * `connect_error`. The server never says more (which check failed goes to
 * its log only).
 */
const MESSAGES: Record<string, string> = {
  ERR_AUTH_TOKEN_REQUIRED: "The server received no access token. Sign in again.",
  ERR_AUTH_TOKEN_INVALID: "The server refused the access token (expired, for another audience, or badly signed). Sign in again.",
  ERR_AUTH_DPOP_INVALID: "The server refused the proof of possession sent with the token. Reconnect, or sign in again.",
  ERR_AUTH_DPOP_NONCE: "The server asked for a fresh proof of possession. Reconnect.",
  ERR_AUTH_TOKEN_EXPIRED: "Your access token expired before it could be refreshed. Reconnect, or sign in again.",
  ERR_USER_DISABLED: "Your account has been disabled by an administrator.",
  ERR_FORBIDDEN: "You are not allowed here: this needs the admin role.",
  // The token may be fine: the server could not fetch the provider's keys. Retry, don't sign out.
  ERR_AUTH_UNAVAILABLE: "The server cannot reach the identity provider's keys right now. Retrying in 5 s…",
  ERR_USER_PROVISION_FAILED: "The server could not load your account. Try again later.",
  ERR_AUTH_MISCONFIGURED: "The server's authentication is misconfigured (see its log).",
  ERR_AUTH_RATE_LIMITED: "Too many token refreshes on this connection.",
  ERR_AUTH_SUBJECT_MISMATCH: "The refreshed token belongs to another user.",
  // From ioserver-oidc/client's onRefreshFailed, not from the server:
  ERR_REFRESH_TIMEOUT: "The server did not answer the token refresh.",
  ERR_TOKEN_UNAVAILABLE: "No fresh token could be obtained from the identity provider.",
};

export function describe(code: string): string {
  return MESSAGES[code] ?? `The server refused the request (${code}).`;
}

/** An HTTP API call refused by the server: `code` is ioserver-oidc's (or `HTTP_<status>`). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message = describe(code),
  ) {
    super(message);
  }
}
