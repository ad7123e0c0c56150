/**
 * What an introspection response says about one token (RFC 7662 section
 * 2.2), checked the way a JWT access token's claims are: an inactive token is
 * invalid; an active one must carry an `exp` that has not passed (the cache
 * and the expiry of live sockets need it), must not be used before its `nbf`,
 * must name the configured issuer when it names one, and every member this
 * package reads must have its registered type.
 */
import type { OidcAuthErrorCode } from "../errors.js";
import { show } from "../util/text.js";

/** The claims of an active token, as the endpoint answered them (RFC 7662 section 2.2, plus any extension members). */
export interface IntrospectionClaims {
  readonly active: true;
  /** Seconds since the epoch; always present (a response without it is refused). */
  readonly exp: number;
  readonly iat?: number;
  readonly nbf?: number;
  readonly iss?: string;
  readonly sub?: string;
  readonly aud?: string | readonly string[];
  /** Space-separated scopes. */
  readonly scope?: string;
  readonly client_id?: string;
  readonly username?: string;
  readonly token_type?: string;
  readonly jti?: string;
  readonly [claim: string]: unknown;
}

/** One answer: the active token's claims, or the refusal it earned. */
export type IntrospectionOutcome =
  | { readonly active: true; readonly claims: Readonly<IntrospectionClaims> }
  | { readonly active: false; readonly code: OidcAuthErrorCode; readonly reason: string };

/** Members whose type RFC 7662 (or RFC 7519, which it borrows from) fixes; a response with another type is refused. */
const STRINGS = ["iss", "sub", "scope", "client_id", "username", "token_type", "jti"] as const;
const NUMBERS = ["iat", "nbf"] as const;

function refused(code: OidcAuthErrorCode, reason: string): IntrospectionOutcome {
  return { active: false, code, reason };
}

/** The audiences of an active token (`aud` as a list; empty when absent). */
export function audienceOf(claims: IntrospectionClaims): readonly string[] {
  const aud = claims.aud;
  if (aud === undefined) return [];
  return typeof aud === "string" ? [aud] : aud;
}

/** Whether the token is meant for one of `expected` (what the caller checks when it configures audiences). */
export function hasAudience(claims: IntrospectionClaims, expected: readonly string[]): boolean {
  return audienceOf(claims).some((aud) => expected.includes(aud));
}

/**
 * The outcome for a response body that has a boolean `active` (the caller
 * has checked that much: anything else is the endpoint failing, not the
 * token). `now` in epoch ms, `clockTolerance` in seconds.
 */
export function checkIntrospection(body: Record<string, unknown>, issuer: string, now: number, clockTolerance: number): IntrospectionOutcome {
  if (body["active"] !== true) return refused("ERR_AUTH_TOKEN_INVALID", "the introspection endpoint answered active: false");
  for (const name of STRINGS) {
    const value = body[name];
    if (value !== undefined && typeof value !== "string") return refused("ERR_AUTH_TOKEN_INVALID", `the introspection response's "${name}" is not a string`);
  }
  for (const name of NUMBERS) {
    const value = body[name];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value))) return refused("ERR_AUTH_TOKEN_INVALID", `the introspection response's "${name}" is not a number`);
  }
  const aud = body["aud"];
  if (aud !== undefined && typeof aud !== "string" && !(Array.isArray(aud) && aud.every((value) => typeof value === "string"))) {
    return refused("ERR_AUTH_TOKEN_INVALID", 'the introspection response\'s "aud" is neither a string nor an array of strings');
  }
  const iss = body["iss"];
  if (iss !== undefined && iss !== issuer) return refused("ERR_AUTH_TOKEN_INVALID", `the introspection response names the issuer ${show(iss)}, not ${show(issuer)}`);
  const exp = body["exp"];
  if (typeof exp !== "number" || !Number.isFinite(exp)) return refused("ERR_AUTH_TOKEN_INVALID", 'the introspection response for an active token has no numeric "exp"');
  const seconds = now / 1000;
  if (exp <= seconds - clockTolerance) return refused("ERR_AUTH_TOKEN_EXPIRED", `the introspection response says active, but its "exp" passed ${Math.round(seconds - exp)} s ago`);
  const nbf = body["nbf"];
  if (typeof nbf === "number" && nbf > seconds + clockTolerance) return refused("ERR_AUTH_TOKEN_INVALID", `the introspection response's "nbf" is ${Math.round(nbf - seconds)} s in the future`);
  const claims = Array.isArray(aud) ? { ...body, aud: Object.freeze([...aud]) } : { ...body };
  return { active: true, claims: Object.freeze(claims) as unknown as IntrospectionClaims };
}
