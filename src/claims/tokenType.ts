/**
 * Only access tokens are access tokens (RFC 8725 section 3.11, RFC 9068).
 * An issuer signs other JWTs with the same keys, often for the same
 * audience: ID tokens, back-channel logout tokens, other security event
 * tokens. Their signature, `iss`, `aud` and `exp` check out, so what tells
 * them apart is explicit typing and the claims only they carry:
 *
 * - header `typ`: absent, `JWT` or `at+jwt` (RFC 7515 section 4.1.9: compared
 *   case-insensitively, `application/` optional); any other type is another
 *   kind of token (`logout+jwt`, `secevent+jwt`, `dpop+jwt`, ...);
 * - a payload `events` claim: a security event token (RFC 8417), e.g. a
 *   back-channel logout token;
 * - a payload `nonce`, `at_hash` or `c_hash` claim: an ID token (OpenID
 *   Connect Core sections 2, 3.1.3.6, 3.3.2.11; an ID token of the
 *   authorization code flow often has no `nonce`, but carries `at_hash`);
 * - a provider's own marker, where it has one (Keycloak: payload `typ`
 *   `Bearer` for access tokens, `ID`, `Refresh`, `Logout` for the others).
 *
 * `relaxTokenType` loosens the rules a provider breaks; `events` is never
 * loosened (nothing that carries it is an access token).
 */
import { normalizeTyp } from "../jwt/typ.js";
import { show } from "../util/text.js";
import type { OidcClaimPreset, TokenTypeRules } from "../types.js";

export type { TokenTypeRules };

/** Claims only ID tokens carry. */
const ID_TOKEN_CLAIMS = ["nonce", "at_hash", "c_hash"] as const;

/** Header `typ` values of access tokens, normalised. */
export const ACCESS_TOKEN_TYPS: readonly string[] = Object.freeze(["application/jwt", "application/at+jwt"]);

/** Markers of the presets whose provider has one. */
const PRESET_MARKERS: Partial<Record<OidcClaimPreset, (claims: Readonly<Record<string, unknown>>) => string | undefined>> = {
  keycloak: (claims) => (claims["typ"] === "Bearer" ? undefined : `payload typ ${show(claims["typ"], 40)} is not "Bearer" (keycloak: only Bearer tokens are access tokens)`),
};

/** The marker of a preset, when its provider has one. */
export function presetMarker(preset: OidcClaimPreset | "custom"): TokenTypeRules["marker"] {
  return preset === "custom" ? undefined : PRESET_MARKERS[preset];
}

/**
 * Why this verified token is not an access token, or undefined when it is
 * one. `header` and `payload` are the token's own (already verified).
 */
export function notAnAccessToken(header: Readonly<Record<string, unknown>>, payload: Readonly<Record<string, unknown>>, rules: TokenTypeRules): string | undefined {
  const typ = header["typ"];
  if (typ !== undefined && (typeof typ !== "string" || !rules.typs.includes(normalizeTyp(typ)))) {
    return `header typ ${show(typ, 40)} is not an access token type (${rules.typs.join(", ")})`;
  }
  if (Object.hasOwn(payload, "events")) return `payload carries "events": a security event token (e.g. a logout token), not an access token`;
  if (!rules.nonce) {
    for (let i = 0; i < ID_TOKEN_CLAIMS.length; i++) {
      const claim = ID_TOKEN_CLAIMS[i]!;
      if (Object.hasOwn(payload, claim)) return `payload carries "${claim}": an ID token, not an access token`;
    }
  }
  return rules.marker?.(payload);
}
