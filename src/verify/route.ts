/**
 * Routing a token to the trusted issuer its (unverified) `iss` names, before
 * any key is fetched: shared by access and logout tokens.
 */
import type { OidcAuthError } from "../errors.js";
import type { DecodedJws } from "../jwt/decode.js";
import type { Jose } from "../jwt/jose.js";
import type { OidcConfig, OidcIssuerConfig } from "../types.js";
import { show } from "../util/text.js";

/** A token's header, and the trusted issuer its (not yet verified) `iss` names. */
export interface RoutedToken {
  header: Record<string, unknown>;
  issuer: OidcIssuerConfig;
  /** The header's `alg`, in that issuer's allow-list. */
  alg: string;
}

/**
 * The checks before any key is fetched, shared by access and logout tokens:
 * decode the header and the unverified `iss`, route to the trusted issuer it
 * names (an unknown issuer costs no network call), and refuse an `alg` outside
 * that issuer's allow-list (`none`, HS*). The token must already be a compact
 * JWS; `decoded` is its `decodeJws` result when it has one.
 */
export function routeToken(token: string, config: OidcConfig, decoded: DecodedJws | Jose, refuse: (reason: string, cause?: unknown) => OidcAuthError): RoutedToken {
  let header: Record<string, unknown>;
  let iss: unknown;
  if ("payload" in decoded) {
    header = decoded.header;
    iss = decoded.payload["iss"];
  } else {
    const jose = decoded;
    try {
      header = jose.decodeProtectedHeader(token);
    } catch (error) {
      throw refuse("token header is not valid base64url JSON", error);
    }
    try {
      ({ iss } = jose.decodeJwt(token));
    } catch (error) {
      throw refuse("token payload is not a base64url JSON object", error);
    }
  }
  let issuer: OidcIssuerConfig | undefined;
  for (const candidate of config.issuers) {
    if (candidate.issuer === iss) {
      issuer = candidate;
      break;
    }
  }
  if (issuer === undefined) {
    throw refuse(`iss was ${show(iss)}, expected ${config.issuers.length === 1 ? show(config.issuer) : `one of ${show(config.issuers.map((i) => i.issuer))}`}`);
  }
  const { alg } = header;
  if (typeof alg !== "string" || !issuer.algorithms.includes(alg)) {
    throw refuse(`algorithm ${show(alg)} is not allowed (allowed: ${issuer.algorithms.join(", ")})`);
  }
  return { header, issuer, alg };
}
