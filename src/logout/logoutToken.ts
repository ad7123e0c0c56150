/**
 * OpenID Connect Back-Channel Logout 1.0, section 2.6: validation of a
 * Logout Token. The token is checked with the same trusted issuers, keys and
 * algorithm allow-lists as access tokens, then against the rules of sections
 * 2.4 and 4.1 that tell a Logout Token apart from every other JWT the
 * provider signs (ID tokens, access tokens).
 *
 * A refusal is an `OidcAuthError`: `ERR_AUTH_TOKEN_INVALID` whose `reason`
 * says why (for the server log, never for the caller), or
 * `ERR_AUTH_UNAVAILABLE` when the provider's keys cannot be obtained.
 */
import type { JWTPayload } from "jose";
import { OidcAuthError } from "../errors.js";
import type { OidcConfig, OidcIssuerConfig } from "../types.js";
import { normalizeTyp } from "../jwt/typ.js";
import { jwksUriOf } from "../keys/discovery.js";
import { COMPACT_JWS } from "../jwt/decode.js";
import { loadJose } from "../jwt/jose.js";
import { getKeyResolver } from "../keys/keyFunction.js";
import { KeySetUnavailableError } from "../keys/keySetUnavailableError.js";
import { explain } from "../verify/explain.js";
import { routeToken } from "../verify/route.js";
import { show } from "../util/text.js";
import { isObject } from "../util/text.js";
import { invalid } from "../verify/invalid.js";

/** The member of `events` that makes a JWT a Logout Token (section 2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";

/** Default of `maxAge`: seconds a Logout Token is accepted after its `iat`. */
export const DEFAULT_LOGOUT_TOKEN_MAX_AGE = 300;

const COMPACT_JWE = /^[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$/;

/** A validated Logout Token: who is logged out, and the data needed to refuse its replay. */
export interface OidcLogoutToken {
  /** The issuer that signed it (one of the configured issuers). */
  iss: string;
  /** The End-User logged out, when the token names one. */
  sub?: string;
  /** The provider session logged out, when the token names one. */
  sid?: string;
  /** The token's unique id. */
  jti: string;
  /** Issued at, epoch seconds. */
  iat: number;
  /** Expiry, epoch seconds, when the token has one. */
  exp?: number;
}

export interface VerifyLogoutTokenOptions {
  /**
   * Seconds after its `iat` a Logout Token is still accepted (plus the
   * issuer's `clockTolerance`). Bounds how long a `jti` must be remembered.
   * Default 300.
   */
  maxAge?: number;
  /**
   * The client id(s) the provider addresses Logout Tokens to: `aud` must
   * contain one. Default: the issuer's `audience` and the config's `appSlug`.
   */
  audience?: string | readonly string[];
  /**
   * Also accept the generic header `typ: "JWT"` (sent by some providers,
   * e.g. Keycloak before 25). Default false: a `typ`, when present, must be
   * `logout+jwt`.
   */
  allowJwtTyp?: boolean;
}

/** The logout token is refused: the reason says so. */
function refused(reason: string, cause?: unknown): OidcAuthError {
  return invalid(`logout token refused: ${reason}`, cause);
}



/** The audiences a Logout Token may be addressed to, for this issuer. */
function audiencesFor(issuer: OidcIssuerConfig, config: OidcConfig, option: string | readonly string[] | undefined): string[] {
  if (option !== undefined) return typeof option === "string" ? [option] : [...option];
  const list = [...issuer.audience];
  if (config.appSlug !== undefined && !list.includes(config.appSlug)) list.push(config.appSlug);
  return list;
}

/**
 * A claim that must be, when present, a non-empty string of whole
 * characters: it keys rooms and the deny-list, as the access tokens' do.
 */
function optionalString(payload: JWTPayload, claim: "sub" | "sid"): string | undefined {
  if (!Object.hasOwn(payload, claim)) return undefined;
  const value = payload[claim];
  if (typeof value !== "string" || value === "") throw refused(`${claim} must be a non-empty string, got ${show(value)}`);
  if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) throw refused(`${claim} ${show(value)} is not a well-formed string (lone surrogate)`);
  return value;
}

/**
 * Validate a Logout Token (Back-Channel Logout 1.0, section 2.6) against the
 * configured issuers. Resolves to its `iss`, `sub` and/or `sid`, `jti`,
 * `iat` and `exp`. Does not check `jti` replay: that is the caller's store.
 */
export async function verifyLogoutToken(token: unknown, config: OidcConfig, options: VerifyLogoutTokenOptions = {}): Promise<OidcLogoutToken> {
  const maxAge = options.maxAge ?? DEFAULT_LOGOUT_TOKEN_MAX_AGE;
  if (typeof maxAge !== "number" || !Number.isFinite(maxAge) || maxAge <= 0) {
    throw new TypeError(`verifyLogoutToken: maxAge must be a positive number of seconds, got ${String(maxAge)}`);
  }
  if (typeof token !== "string" || token.length === 0) throw refused("no token");
  if (token.length > config.maxTokenLength) throw refused(`${token.length} characters, over the ${config.maxTokenLength} limit`);
  if (!COMPACT_JWS.test(token)) {
    // Section 2.4 allows encrypted Logout Tokens; this package never holds a decryption key.
    throw refused(COMPACT_JWE.test(token) ? "encrypted (JWE) logout tokens are not supported" : "not a compact JWS (three base64url segments)");
  }

  // 2.6 steps 3-4 (alg and iss as for ID tokens): routed by the unverified iss (an unknown issuer costs
  // nothing), then the issuer's asymmetric allow-list, so never `none` nor HS*.
  const jose = await loadJose();
  const { header, issuer } = routeToken(token, config, jose, refused);
  const { kid, typ } = header;
  // 2.4 and 4.1 (explicit typing, RFC 8725 section 3.11): a typed token must say it is a Logout Token.
  if (typ !== undefined) {
    const normalized = typeof typ === "string" ? normalizeTyp(typ) : undefined;
    if (normalized !== "application/logout+jwt" && !(options.allowJwtTyp === true && normalized === "application/jwt")) {
      throw refused(`header typ ${show(typ)} is not logout+jwt`);
    }
  }

  const audiences = audiencesFor(issuer, config, options.audience);
  let payload: JWTPayload;
  try {
    // 2.6 steps 2-4: signature with the issuer's keys; iss; aud contains the client id; iat present, not
    // in the future and at most maxAge old; exp (and nbf) when present; jti and events present.
    const jwksUri = await jwksUriOf(issuer, config);
    ({ payload } = await jose.jwtVerify(token, await getKeyResolver(jwksUri, config), {
      issuer: issuer.issuer,
      audience: audiences,
      algorithms: issuer.algorithms as string[],
      clockTolerance: issuer.clockTolerance,
      maxTokenAge: maxAge,
      requiredClaims: ["iat", "jti", "events"],
    }));
  } catch (error) {
    if (error instanceof KeySetUnavailableError) {
      throw new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: `logout token not verified: ${error.message}`, cause: error });
    }
    throw refused(explain(error, { issuer, audiences, maxAge, maxAgeName: "max age", kid }), error);
  }

  // 2.4: jti is the token's unique identifier.
  const { jti, iat, exp, events } = payload;
  if (typeof jti !== "string" || jti === "") throw refused(`jti must be a non-empty string, got ${show(jti)}`);
  // 2.6 step 6: events is a JSON object with the back-channel logout member, itself a JSON object.
  if (!isObject(events)) throw refused(`events must be a JSON object, got ${show(events)}`);
  if (!Object.hasOwn(events, BACKCHANNEL_LOGOUT_EVENT)) throw refused(`events has no ${BACKCHANNEL_LOGOUT_EVENT} member (members: ${show(Object.keys(events))})`);
  if (!isObject(events[BACKCHANNEL_LOGOUT_EVENT])) {
    throw refused(`events member ${BACKCHANNEL_LOGOUT_EVENT} must be a JSON object, got ${show(events[BACKCHANNEL_LOGOUT_EVENT])}`);
  }
  // 2.6 step 7 (2.4: prohibited, so an ID token can never pass for a Logout Token).
  if (Object.hasOwn(payload, "nonce")) throw refused("a nonce claim is present");
  // 2.6 step 5: sub, sid, or both.
  const sub = optionalString(payload, "sub");
  const sid = optionalString(payload, "sid");
  if (sub === undefined && sid === undefined) throw refused("neither sub nor sid is present");

  const verified: OidcLogoutToken = { iss: issuer.issuer, jti, iat: iat as number };
  if (sub !== undefined) verified.sub = sub;
  if (sid !== undefined) verified.sid = sid;
  if (exp !== undefined) verified.exp = exp;
  return verified;
}

/**
 * How long (ms) a `jti` must be remembered so the token is refused for as
 * long as any node could still accept it: until `iat + maxAge` seen with a
 * clock up to `clockTolerance` behind, measured from a clock up to
 * `clockTolerance` ahead, plus a margin for nodes whose clocks differ.
 */
export function replayWindowMs(logout: OidcLogoutToken, config: OidcConfig, maxAge: number = DEFAULT_LOGOUT_TOKEN_MAX_AGE): number {
  const tolerance = config.issuers.find((issuer) => issuer.issuer === logout.iss)?.clockTolerance ?? config.clockTolerance;
  return Math.ceil((maxAge + 2 * tolerance) * 1000) + REPLAY_MARGIN_MS;
}

/** Extra time a `jti` is remembered beyond the acceptance window. */
export const REPLAY_MARGIN_MS = 30_000;
