import { OidcAuthError } from "../errors.js";

/** The token is refused: `reason` says why, for the server log. */
export function invalid(reason: string, cause?: unknown): OidcAuthError {
  return new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason, cause });
}
