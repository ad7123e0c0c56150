/**
 * jose's verification failures turned into reasons for the server log, for
 * access and logout tokens alike.
 */
import type { JWTPayload } from "jose";
import type { OidcIssuerConfig } from "../types.js";
import { show } from "../util/text.js";

interface JoseFailure {
  code?: unknown;
  claim?: unknown;
  reason?: unknown;
  payload?: JWTPayload;
  message?: unknown;
}

/** What a jose failure is explained against. */
export interface ExplainContext {
  issuer: OidcIssuerConfig;
  /** The audiences the token had to name. */
  audiences: readonly string[];
  /** The age limit in force and its name in the log, e.g. `maxTokenAge` (access tokens) or `max age` (logout tokens). */
  maxAge: number | undefined;
  maxAgeName: string;
  kid: unknown;
}

/**
 * Turn a jose failure (access or logout token) into a sentence for the server
 * log. jose's messages can carry header values of the token (a `crit` member
 * name, checked before the signature), so every one of them is quoted with `show`.
 */
export function explain(error: unknown, { issuer, audiences, maxAge, maxAgeName, kid }: ExplainContext): string {
  const e = (error ?? {}) as JoseFailure;
  // jose's own sentences run to about 90 characters: room for them, still bounded.
  const message = () => show(typeof e.message === "string" ? e.message : String(error), 160);
  const now = Math.floor(Date.now() / 1000);
  const payload = e.payload ?? {};
  switch (e.code) {
    case "ERR_JWT_EXPIRED":
      if (e.claim === "iat") return `token issued ${now - Number(payload.iat)} s ago, over the ${maxAgeName} of ${String(maxAge)} s (clock tolerance ${issuer.clockTolerance} s)`;
      return `token expired ${now - Number(payload.exp)} s ago (clock tolerance ${issuer.clockTolerance} s)`;
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (e.reason === "missing") return `required claim ${show(e.claim)} is missing`;
      if (e.claim === "iss") return `iss was ${show(payload.iss)}, expected ${show(issuer.issuer)}`;
      if (e.claim === "aud") return `aud was ${show(payload.aud)}, expected one of ${show(audiences)}`;
      if (e.claim === "iat") return `iat ${show(payload.iat)} is not a past NumericDate`;
      if (e.claim === "nbf" && e.reason === "check_failed") return `token not valid before nbf, ${Number(payload.nbf) - now} s from now`;
      if (e.claim === "typ") return `header typ is not at+jwt (strict mode)`;
      return `claim ${show(e.claim)} failed (${show(e.reason)}): ${message()}`;
    case "ERR_JWT_INVALID":
      return `not a valid JWT: ${message()}`;
    case "ERR_JWKS_NO_MATCHING_KEY":
      return `no key in the JWKS matches kid ${show(kid)}`;
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return `several keys in the JWKS match kid ${show(kid)}`;
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return `signature verification failed (kid ${show(kid)})`;
    default:
      // A code is shown bare only when it looks like one (jose's and Node's `ERR_*`); anything else thrown is quoted.
      return `${typeof e.code === "string" && /^[A-Z][A-Z0-9_]{0,63}$/.test(e.code) ? e.code : "verification failed"}: ${message()}`;
  }
}
