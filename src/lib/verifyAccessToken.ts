/**
 * Token verification: structural pre-checks, algorithm allow-list, signature
 * against the provider's JWKS, registered claims. Produces the verified
 * payload or an `OidcAuthError` whose `reason` says why (for the log).
 */
import type { JWTPayload } from "jose";
import { OidcAuthError } from "../OidcAuthError.js";
import type { OidcConfig, OidcIssuerConfig } from "../types.js";
import { jwksUriOf } from "./discovery.js";
import { loadJose } from "./jose.js";
import { getKeyResolver, KeySetUnavailableError } from "./keySets.js";

/** Three non-empty base64url segments: a compact JWS. Anything else (JWE, JSON, junk) is refused before parsing. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Attacker-controlled values go into logs quoted, escaped and short. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function invalid(reason: string, cause?: unknown): OidcAuthError {
  return new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason, cause });
}

interface ClaimError {
  code?: unknown;
  claim?: unknown;
  reason?: unknown;
  payload?: JWTPayload;
  message?: unknown;
}

/** Turn a jose failure into a sentence for the server log. */
function explain(error: unknown, config: OidcIssuerConfig, kid: unknown): string {
  const e = (error ?? {}) as ClaimError;
  const now = Math.floor(Date.now() / 1000);
  const payload = e.payload ?? {};
  switch (e.code) {
    case "ERR_JWT_EXPIRED":
      if (e.claim === "iat") return `token issued ${now - Number(payload.iat)} s ago, over the maxTokenAge of ${String(config.maxTokenAge)} s`;
      return `token expired ${now - Number(payload.exp)} s ago (clock tolerance ${config.clockTolerance} s)`;
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (e.reason === "missing") return `required claim "${String(e.claim)}" is missing`;
      if (e.claim === "iss") return `iss was ${show(payload.iss)}, expected ${show(config.issuer)}`;
      if (e.claim === "aud") return `aud was ${show(payload.aud)}, expected one of ${show(config.audience)}`;
      if (e.claim === "nbf" && e.reason === "check_failed") return `token not valid before nbf, ${Number(payload.nbf) - now} s from now`;
      if (e.claim === "typ") return `header typ is not at+jwt (strict mode)`;
      return `claim "${String(e.claim)}" failed (${String(e.reason)}): ${String(e.message)}`;
    case "ERR_JWKS_NO_MATCHING_KEY":
      return `no key in the JWKS matches kid ${show(kid)}`;
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return `several keys in the JWKS match kid ${show(kid)}`;
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return `signature verification failed (kid ${show(kid)})`;
    default:
      return `${typeof e.code === "string" ? e.code : "verification failed"}: ${String(e.message ?? error)}`;
  }
}

/** A verified token and the trusted issuer that signed it. */
export interface VerifiedToken {
  payload: JWTPayload;
  issuer: OidcIssuerConfig;
}

/**
 * Verify a raw access token against a normalised config. Resolves to the
 * verified payload (with `exp` and a non-empty string `sub` guaranteed) and
 * the issuer it was routed to by its `iss`.
 */
export async function verifyAccessToken(token: unknown, config: OidcConfig): Promise<VerifiedToken> {
  if (typeof token !== "string" || token.length === 0) {
    throw new OidcAuthError("ERR_AUTH_TOKEN_REQUIRED", { reason: "no token was presented" });
  }
  if (token.length > config.maxTokenLength) {
    throw invalid(`token is ${token.length} characters, over the ${config.maxTokenLength} limit`);
  }
  if (!COMPACT_JWS.test(token)) throw invalid("token is not a compact JWS (three base64url segments)");

  const jose = await loadJose();
  let alg: unknown;
  let kid: unknown;
  let iss: unknown;
  try {
    ({ alg, kid } = jose.decodeProtectedHeader(token));
  } catch (error) {
    throw invalid("token header is not valid base64url JSON", error);
  }
  try {
    ({ iss } = jose.decodeJwt(token));
  } catch (error) {
    throw invalid("token payload is not a base64url JSON object", error);
  }
  // Routed by the (not yet verified) `iss`; an unknown issuer costs no network call.
  const issuer = config.issuers.find((candidate) => candidate.issuer === iss);
  if (issuer === undefined) {
    throw invalid(`iss was ${show(iss)}, expected ${config.issuers.length === 1 ? show(config.issuer) : `one of ${show(config.issuers.map((i) => i.issuer))}`}`);
  }
  // Checked here, before any key is fetched: `none`, HS* and anything not allowed.
  if (typeof alg !== "string" || !issuer.algorithms.includes(alg)) {
    throw invalid(`algorithm ${show(alg)} is not allowed (allowed: ${issuer.algorithms.join(", ")})`);
  }

  let payload: JWTPayload;
  try {
    const jwksUri = await jwksUriOf(issuer, config);
    ({ payload } = await jose.jwtVerify(token, await getKeyResolver(jwksUri, config), {
      issuer: issuer.issuer,
      audience: issuer.audience as string[],
      algorithms: issuer.algorithms as string[],
      clockTolerance: issuer.clockTolerance,
      requiredClaims: ["exp", "sub", ...issuer.requiredClaims],
      ...(issuer.maxTokenAge === undefined ? {} : { maxTokenAge: issuer.maxTokenAge }),
      ...(issuer.strict ? { typ: "at+jwt" } : {}),
    }));
  } catch (error) {
    if (error instanceof KeySetUnavailableError) {
      throw new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: error.message, cause: error });
    }
    throw invalid(explain(error, issuer, kid), error);
  }
  if (typeof payload.sub !== "string" || payload.sub === "") {
    throw invalid(`sub must be a non-empty string, got ${show(payload.sub)}`);
  }
  return { payload, issuer };
}
