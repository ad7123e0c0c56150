/**
 * Tokens the issuer vouches for through introspection (RFC 7662): opaque
 * tokens, which name no issuer and go to the one issuer configured to
 * introspect, and, with `introspect: "always"`, JWTs of that issuer after
 * they verified locally.
 *
 * An active answer becomes a payload like a verified JWT's (its `iss` set to
 * the configured issuer), checked against the issuer's rules as a JWT's
 * claims are: a non-empty `sub` (a client_credentials token has none and is
 * refused), one of the configured audiences in `aud` (an answer without
 * `aud` is refused), `requiredClaims`, `maxTokenAge`, the access-token type
 * rules, and a `token_type` of Bearer, or DPoP for a token bound to a key.
 * The pipeline then maps it like any other payload (claim mapping, guards,
 * `expiresAt` from `exp`), and a binding in the answer (`cnf`) is the
 * token's, as a JWT's `cnf` claim is: a DPoP-bound token needs its proof,
 * and one bound to anything else is refused (RFC 9449 section 6.2).
 *
 * One introspector per issuer config (kept while the config lives, like the
 * issuer's key set): its cache and single flight are shared by every request
 * of the apps using that config.
 */
import type { JWTPayload } from "jose";
import { boundKey } from "../claims/confirmation.js";
import { notAnAccessToken } from "../claims/tokenType.js";
import { OidcAuthError } from "../errors.js";
import { createIntrospector, opaqueTokenProblem, type IntrospectionHealth, type Introspector } from "../introspection/createIntrospector.js";
import { hasAudience, type IntrospectionClaims } from "../introspection/introspectionClaims.js";
import { discoveredIntrospectionEndpoint } from "../keys/discovery.js";
import { KeySetUnavailableError } from "../keys/keySetUnavailableError.js";
import type { KeySetLog } from "../keys/remoteKeySet.js";
import type { OidcConfig, OidcIssuerConfig, OidcUserContext } from "../types.js";
import { show } from "../util/text.js";
import { wait, type Wait } from "./drive.js";
import { invalid } from "./invalid.js";
import { checkSub, sharePayload } from "./payload.js";

/** What the pipeline needs of a verified token (verifyAccessToken.ts's `VerifiedToken`, restated to avoid an import cycle). */
export interface IntrospectedToken {
  readonly payload: JWTPayload;
  readonly issuer: OidcIssuerConfig;
  context: OidcUserContext | undefined;
}

interface IssuerIntrospection {
  introspector: Introspector | undefined;
  pending: Promise<Introspector> | undefined;
  /** Where the introspector logs: the last app logger seen (introspectors outlive requests). */
  log: KeySetLog | undefined;
}

/** Process-wide, bounded by the configs: weak, an entry goes with its issuer config. */
const states = new WeakMap<OidcIssuerConfig, IssuerIntrospection>();

/** The issuer that takes opaque tokens (the one with an introspection block), if any. */
export function introspectingIssuer(config: OidcConfig): OidcIssuerConfig | undefined {
  for (const issuer of config.issuers) if (issuer.introspection !== undefined) return issuer;
  return undefined;
}

function stateOf(issuer: OidcIssuerConfig): IssuerIntrospection {
  let state = states.get(issuer);
  if (state === undefined) states.set(issuer, (state = { introspector: undefined, pending: undefined, log: undefined }));
  return state;
}

function build(issuer: OidcIssuerConfig, endpoint: string, state: IssuerIntrospection): Introspector {
  const options = issuer.introspection!;
  try {
    return createIntrospector({
      issuer: issuer.issuer,
      endpoint,
      clientId: options.clientId,
      clientAuthMethod: options.clientAuthMethod,
      clientSecret: options.clientSecret,
      privateKey: options.privateKey, // checked in config/introspectionOptions.ts
      signingAlg: options.signingAlg,
      timeout: options.timeout,
      cacheTtl: options.cacheTtl,
      negativeCacheTtl: options.negativeCacheTtl,
      maxEntries: options.maxEntries,
      maxTokenLength: options.maxTokenLength,
      maxConcurrent: options.maxConcurrent,
      clockTolerance: issuer.clockTolerance,
      log: (level, text) => state.log?.(level, text),
    });
  } catch (error) {
    throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: `introspection of ${issuer.issuer}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
  }
}

/** The issuer's introspector, created on first use (after discovery when the endpoint comes from there). */
function introspectorOf(issuer: OidcIssuerConfig, config: OidcConfig, log: KeySetLog | undefined): Introspector | Promise<Introspector> {
  const state = stateOf(issuer);
  if (log !== undefined) state.log = log;
  if (state.introspector !== undefined) return state.introspector;
  const configured = issuer.introspection!.endpoint;
  if (configured !== undefined) return (state.introspector = build(issuer, configured, state));
  state.pending ??= discoveredIntrospectionEndpoint(issuer, config).then(
    (endpoint) => {
      state.pending = undefined;
      if (endpoint === undefined) {
        throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", {
          reason: `the discovery document of ${issuer.issuer} names no usable introspection_endpoint (http(s), https for an https issuer): set introspection.endpoint`,
        });
      }
      return (state.introspector ??= build(issuer, endpoint, state));
    },
    (error: unknown) => {
      state.pending = undefined;
      if (error instanceof KeySetUnavailableError) throw new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: error.message, cause: error });
      throw error;
    },
  );
  return state.pending;
}

/** The health of the issuer's introspector, or undefined while none was created (no token introspected yet). */
export function introspectionHealthOf(issuer: OidcIssuerConfig): IntrospectionHealth | undefined {
  return states.get(issuer)?.introspector?.health();
}

/** Payloads built from answers, by answer: a cached answer maps to the same token (and so the same user context). */
const built = new WeakMap<IntrospectionClaims, IntrospectedToken>();

/** An opaque token's active answer checked against the issuer's rules, as a verified token. */
function accepted(claims: Readonly<IntrospectionClaims>, issuer: OidcIssuerConfig, now: number): IntrospectedToken {
  // Bearer, or DPoP (RFC 9449 section 6.2) for a token bound to a key: anything else (a refresh token, say) is not an access token.
  const tokenType = claims.token_type?.toLowerCase();
  if (tokenType !== undefined && tokenType !== "bearer" && !(tokenType === "dpop" && boundKey(claims["cnf"]) !== undefined)) {
    throw invalid(`the introspection response's token_type is ${show(claims.token_type, 40)}, not Bearer (nor DPoP with a cnf.jkt)`);
  }
  if (claims.sub === undefined) throw invalid("the introspection response has no sub (a token without a subject, e.g. client_credentials, is refused)");
  if (!hasAudience(claims, issuer.audience)) throw invalid(`the introspection response's aud is ${show(claims.aud)}, expected one of ${show(issuer.audience)}`);
  for (const claim of issuer.requiredClaims) if (claims[claim] === undefined) throw invalid(`required claim ${show(claim)} is missing from the introspection response`);
  if (issuer.maxTokenAge !== undefined) {
    if (claims.iat === undefined) throw invalid("the introspection response has no iat, and maxTokenAge is set");
    const age = now / 1000 - claims.iat;
    if (age > issuer.maxTokenAge + issuer.clockTolerance) throw invalid(`token issued ${Math.round(age)} s ago, over the maxTokenAge of ${issuer.maxTokenAge} s`);
    // As for a JWT with maxTokenAge: an iat ahead of now, beyond the clock tolerance, is refused too.
    if (age < -issuer.clockTolerance) throw invalid(`token issued ${Math.round(-age)} s in the future (iat), beyond the clock tolerance`);
  }
  let token = built.get(claims);
  if (token === undefined) {
    const payload = { ...claims, iss: issuer.issuer } as JWTPayload;
    checkSub(payload);
    const other = notAnAccessToken({}, payload, issuer.tokenType);
    if (other !== undefined) throw invalid(other);
    // Shared by every request that presents the token, as a verified JWT's payload: frozen all the way down, lists shared.
    sharePayload(payload, issuer);
    built.set(claims, (token = { payload, issuer, context: undefined }));
  }
  return token;
}

/**
 * The introspector's answer for the token. An answer saying active with an
 * `exp` already passed is refused as `ERR_AUTH_TOKEN_INVALID`, as an expired
 * JWT is: a client sees one code for every token it must replace.
 */
async function claimsOf(token: string, issuer: OidcIssuerConfig, config: OidcConfig, log: KeySetLog | undefined, verified: boolean): Promise<Readonly<IntrospectionClaims>> {
  try {
    return await (await introspectorOf(issuer, config, log)).introspect(token, verified);
  } catch (error) {
    if (error instanceof OidcAuthError && error.code === "ERR_AUTH_TOKEN_EXPIRED") throw invalid(error.reason, error);
    throw error;
  }
}

/**
 * Verify an opaque token through the issuer's introspection endpoint. A
 * token that cannot be a Bearer token (characters outside RFC 6750's
 * `b64token`, over `introspection.maxTokenLength`) is refused here, before
 * discovery or any request.
 */
export function* introspectOpaque(token: string, issuer: OidcIssuerConfig, config: OidcConfig, log: KeySetLog | undefined): Generator<Wait, IntrospectedToken, unknown> {
  const problem = opaqueTokenProblem(token, issuer.introspection!.maxTokenLength);
  if (problem !== undefined) throw invalid(problem);
  // A fresh active answer in the cache decides at once, like a cached JWT: no promise, no wait.
  const introspector = stateOf(issuer).introspector;
  const cached = introspector?.cachedClaims(token);
  const claims = cached ?? (yield* wait(claimsOf(token, issuer, config, log, false)));
  return accepted(claims, issuer, Date.now());
}

/**
 * `introspectOpaque` without a generator, for a token its cache answers: the
 * introspecting issuer's fresh active answer, checked as there. Undefined
 * whenever the cache cannot decide (no introspecting issuer or introspector
 * yet, a token `opaqueTokenProblem` refuses, no fresh answer): the full flow
 * then runs and decides. Throws what `introspectOpaque` throws for the same
 * answer. The caller has made sure the token is not a JWT.
 */
export function introspectedAtOnce(token: string, config: OidcConfig): IntrospectedToken | undefined {
  const issuer = introspectingIssuer(config);
  if (issuer === undefined) return undefined;
  const introspector = states.get(issuer)?.introspector;
  if (introspector === undefined || opaqueTokenProblem(token, issuer.introspection!.maxTokenLength) !== undefined) return undefined;
  const claims = introspector.cachedClaims(token);
  return claims === undefined ? undefined : accepted(claims, issuer, Date.now());
}

/**
 * `introspect: "always"`: a JWT that verified locally must also be active at
 * the provider, for the same subject, and bound to the same DPoP key (or to
 * nothing, the JWT's own `cnf` then standing). Resolves to `verified`
 * unchanged.
 */
export async function confirmActive<T extends IntrospectedToken>(token: string, verified: T, config: OidcConfig, log: KeySetLog | undefined): Promise<T> {
  const { issuer, payload } = verified;
  // The JWT verified locally: its form is the issuer's, not an attacker's, and may exceed the opaque-token limit.
  const claims = await claimsOf(token, issuer, config, log, true);
  if (claims.sub !== undefined && claims.sub !== payload.sub) {
    throw invalid(`the introspection response names sub ${show(claims.sub)}, the token ${show(payload.sub)}`);
  }
  // The JWT's own `cnf` is what the pipeline checks a proof against: the provider must bind the token to the same key, or to none.
  const cnf = claims["cnf"];
  const key = boundKey(cnf);
  if (cnf !== undefined && (key === undefined || key !== boundKey(payload["cnf"]) || Object.keys(cnf as object).length !== 1)) {
    throw invalid(`the introspection response binds the token (cnf ${show(cnf)}) otherwise than the token's own cnf ${show(payload["cnf"])}`);
  }
  return verified;
}
