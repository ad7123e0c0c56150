/**
 * The claim checks of jose's lib/jwt_claims_set.js (validateClaimsSet), in
 * the accept direction only, for the options the package passes: true means
 * jose would accept, false means "let jose decide" (and explain).
 */
import { normalizeTyp } from "./typ.js";

/**
 * What a token must satisfy besides its signature. The member names are
 * jose's `JWTVerifyOptions`, so the same object serves both paths.
 */
export interface FastPolicy {
  /** Exact `iss`. */
  issuer: string;
  /** The token's `aud` (string or array) must contain one of these. */
  audience: readonly string[];
  /** Allow-list. */
  algorithms: readonly string[];
  /** Seconds. */
  clockTolerance: number;
  /** Seconds; implies `iat` required. */
  maxTokenAge?: number;
  /** Always includes "exp" and "sub" from the caller. */
  requiredClaims: readonly string[];
  /** E.g. "at+jwt" in strict mode, compared like jose (normalizeTyp). */
  typ?: string;
}

const hasOwn = Object.hasOwn;

/** jose's checkAudiencePresence, with the option already an array. */
function audienceMatches(aud: unknown, audience: readonly string[]): boolean {
  if (typeof aud === "string") return audience.includes(aud);
  if (Array.isArray(aud)) {
    for (let i = 0; i < audience.length; i++) if (aud.includes(audience[i])) return true;
  }
  return false;
}

/** validateClaimsSet's decision for the options the package passes; true = jose would accept. */
export function claimsValid(header: Record<string, unknown>, payload: Record<string, unknown>, policy: FastPolicy, now: number): boolean {
  const { typ, maxTokenAge, requiredClaims, audience } = policy;
  if (!Array.isArray(requiredClaims) || !Array.isArray(audience)) return false;
  if (typ !== undefined) {
    const headerTyp = header["typ"];
    if (typeof typ !== "string" || typeof headerTyp !== "string" || normalizeTyp(headerTyp) !== normalizeTyp(typ)) return false;
  }
  for (let i = 0; i < requiredClaims.length; i++) if (!hasOwn(payload, requiredClaims[i] as string)) return false;
  if (maxTokenAge !== undefined && !hasOwn(payload, "iat")) return false;
  if (!hasOwn(payload, "aud") || !hasOwn(payload, "iss")) return false;
  if (typeof policy.issuer !== "string" || payload["iss"] !== policy.issuer) return false;
  if (!audienceMatches(payload["aud"], audience)) return false;

  const tolerance = policy.clockTolerance;
  if (typeof tolerance !== "number" || !Number.isFinite(tolerance) || tolerance < 0) return false;
  if (typeof now !== "number" || !Number.isFinite(now)) return false;

  // validateNumericDate: present means a number (property access, as jose reads it).
  const iat = payload["iat"];
  if ((iat !== undefined || maxTokenAge !== undefined) && typeof iat !== "number") return false;
  const nbf = payload["nbf"];
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + tolerance)) return false;
  const exp = payload["exp"];
  if (exp !== undefined && (typeof exp !== "number" || exp <= now - tolerance)) return false;
  if (maxTokenAge !== undefined) {
    if (typeof maxTokenAge !== "number" || !Number.isFinite(maxTokenAge) || maxTokenAge < 0) return false;
    const age = now - (iat as number);
    if (age - tolerance > maxTokenAge) return false;
    if (age < -tolerance) return false;
  }
  return true;
}
