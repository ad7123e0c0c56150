/**
 * The DPoP step of the pipeline (RFC 9449 section 7), for HTTP requests and
 * for Socket.IO handshakes and in-band refreshes, run after the access token
 * was verified (cached or not): how the token came (the scheme on HTTP, a
 * proof in `auth` or not on Socket.IO), the issuer's policy and the token's
 * binding (`cnf.jkt`) decide whether a proof is needed, and the proof is
 * checked against this request on every request (a proof is per request,
 * whatever the token cache knows).
 *
 * - A token bound to a key, sent as `Bearer`: refused, whatever the policy
 *   (the downgrade that would make a stolen bound token usable).
 * - `DPoP` scheme with a token bound to no key: refused (a proof would bind
 *   nothing).
 * - Policy `required` and `Bearer`: refused; policy `disabled` and `DPoP`:
 *   refused.
 * - Otherwise, with the `DPoP` scheme: one `DPoP` header, a proof of the
 *   request's method and URL, for this token (`ath`), by the key the token
 *   is bound to.
 *
 * A Bearer token without `cnf` under a policy other than `required` costs
 * one property read and one comparison.
 */
import { boundKey } from "../claims/confirmation.js";
import type { FastifyRequest } from "fastify";
import { OidcAuthError, type OidcAuthErrorCode } from "../errors.js";
import type { OidcAppHandle, OidcConfig, OidcDpopPolicy, OidcUserContext } from "../types.js";
import { appPart } from "../util/appState.js";
import { describeError } from "../util/text.js";
import { oidcLog } from "../util/log.js";
import { MemoryReplayStore } from "../stores/replayStore.js";
import { resolveDpopOptions, type DpopSettings } from "../dpop/dpopOptions.js";
import { createNonceIssuer, type DpopNonceIssuer } from "../dpop/nonceIssuer.js";
import { dpopChallenge, isDpopProofError, type DpopErrorCode } from "../dpop/DpopProofError.js";
import { dpopRequestUrl, type DpopRequestTarget } from "../dpop/dpopRequestUrl.js";
import { verifyDpopProof, type DpopProof } from "../dpop/verifyDpopProof.js";
import type { TokenBinding } from "./authenticate.js";

/** The `Authorization` scheme a token came with. */
export type AuthScheme = "bearer" | "dpop";

/** Where the step leaves a fresh nonce for the HTTP front-end to send in `DPoP-Nonce`. */
export const DPOP_NONCE: unique symbol = Symbol("ioserver-oidc.dpopNonce");

/**
 * Replay store entries of the default store (one app): more proofs than one
 * process can verify within a proof's lifetime (a signature check each, about
 * 5,000 a second per core here, each kept 70 s), about 110 bytes each when full.
 * A full store refuses new proofs rather than forget live ones.
 */
const REPLAY_ENTRIES = 500_000;
const NO_OPTIONS = Object.freeze({});

interface DpopState {
  /** The `config.dpop` the settings were made from. */
  source: object | undefined;
  settings: DpopSettings | undefined;
  /** Kept across reconfigurations: a new config must not forget the proofs already seen, nor the nonces handed out. */
  memoryStore: MemoryReplayStore | undefined;
  nonces: DpopNonceIssuer | undefined;
}

const dpopState = appPart<DpopState>("dpop", () => ({ source: undefined, settings: undefined, memoryStore: undefined, nonces: undefined }));

/** The app's proof settings for `config`, resolved once per app (again only when the app's `dpop` options change). */
export function dpopSettingsOf(appHandle: OidcAppHandle, config: OidcConfig): DpopSettings {
  const state = dpopState.of(appHandle);
  const source = config.dpop ?? NO_OPTIONS;
  if (state.settings !== undefined && state.source === source) return state.settings;
  const given = config.dpop ?? {};
  try {
    state.settings = resolveDpopOptions({
      algorithms: given.algorithms,
      maxAgeSeconds: given.maxAge,
      clockToleranceSeconds: given.clockTolerance,
      replayStore: given.replayStore ?? (state.memoryStore ??= new MemoryReplayStore({ maxEntries: REPLAY_ENTRIES })),
      nonces: given.nonce === undefined || given.nonce === false ? undefined : (state.nonces = createNonceIssuer({ ...(given.nonce === true ? {} : given.nonce), previous: state.nonces })),
      publicOrigin: given.publicOrigin,
    });
  } catch (error) {
    throw new OidcAuthError("ERR_AUTH_MISCONFIGURED", { reason: describeError(error), cause: error });
  }
  state.source = source;
  if (state.settings.publicOrigins === undefined || state.settings.publicOrigins.length === 0) {
    oidcLog(
      appHandle,
      4,
      "dpop: no publicOrigin is set, so each request's own scheme and Host header name the URL a DPoP proof must be for; behind a proxy, or where another server accepts the same tokens, set dpop.publicOrigin to this app's public origin(s)",
    );
  }
  return state.settings;
}

/** The policy of the issuer that issued `context`'s token. */
function policyOf(config: OidcConfig, context: OidcUserContext): OidcDpopPolicy {
  const { issuers } = config;
  if (issuers.length === 1) return issuers[0]!.dpop;
  const iss = context.claims["iss"];
  for (const issuer of issuers) if (issuer.issuer === iss) return issuer.dpop;
  return "allowed";
}

/**
 * The DPoP step for one HTTP request whose token was verified (a
 * `TokenBinding` of the pipeline: it runs before the deny-list and the users
 * manager): nothing (at once) when no proof is involved, a promise when a
 * proof is checked; throws or rejects with an `OidcAuthError` carrying the
 * challenge. On success with a proof, sets `request.dpopJkt`, and
 * `request[DPOP_NONCE]` when the client should move to a new nonce. One for
 * each scheme the `Authorization` header used.
 */
export const bearerBinding: TokenBinding<FastifyRequest> = (_request, appHandle, _token, context, config) => checkBearer(appHandle, context, config, "presented as a Bearer token");
export const dpopBinding: TokenBinding<FastifyRequest> = (request, appHandle, token, context, config) =>
  checkProof(appHandle, token, context, config, request.method, { secure: request.protocol === "https", host: request.headers.host, url: request.url }, request.headers.dpop).then((proof) => {
    (request as { dpopJkt?: string }).dpopJkt = proof.jkt;
    if (proof.nonce !== undefined) (request as { [DPOP_NONCE]?: string })[DPOP_NONCE] = proof.nonce;
  });

/** The parts of a Socket.IO handshake a proof is checked against. */
export interface HandshakeRequest {
  /** Whether the handshake request came over TLS. */
  secure: boolean;
  headers: { host?: string | undefined };
  /** The handshake request's target: the engine endpoint's path and query (`/socket.io/?EIO=4&...`). */
  url: string;
}

/**
 * What a Socket.IO proof is checked against: the connection's handshake
 * (the engine endpoint it opened), the proof that came with `auth.dpop` or
 * with the refresh, and, on an in-band refresh, the connection's current
 * context (its token's key binds the connection for its life).
 */
export interface SocketProofTarget {
  handshake: HandshakeRequest;
  /** `undefined` when none came. */
  proof: unknown;
  /** On a refresh: the context the connection holds; at a handshake, that of the session it restores (connection-state recovery), else absent. */
  current?: OidcUserContext;
}

/**
 * The DPoP step of a Socket.IO handshake or in-band refresh. Browsers cannot
 * set headers on a WebSocket, so the proof comes in the handshake's `auth`
 * (or the refresh's payload) as `dpop`, made for `GET` and the URL of the
 * Socket.IO engine endpoint without its query (`https://host/socket.io/`):
 * the request that opens the connection, whatever the namespace. Then the
 * same checks as on HTTP. Without a proof, the Bearer rules: a bound token,
 * or a token of an issuer that requires DPoP, is refused. On a refresh, the
 * new token must be bound to the key the connection's token was bound to
 * (or, like it, to none): a connection keeps one key for its life.
 */
export const socketBinding: TokenBinding<SocketProofTarget> = (target, appHandle, token, context, config) => {
  if (target.current !== undefined) {
    const held = boundKey(target.current.claims["cnf"]);
    const presented = boundKey(context.claims["cnf"]);
    if (held !== presented) {
      const reason = held === undefined ? "the refreshed token is bound to a key (cnf.jkt) and the connection was opened without DPoP" : presented === undefined ? "the connection is bound to a DPoP key and the refreshed token is bound to none" : "the refreshed token is bound to another key than the connection's";
      throw refusal("ERR_AUTH_TOKEN_INVALID", reason, policyOf(config, context), "invalid_token", config.realm, appHandle, config);
    }
  }
  if (target.proof === undefined) return checkBearer(appHandle, context, config, "presented without a DPoP proof");
  const { handshake } = target;
  return checkProof(appHandle, token, context, config, "GET", { secure: handshake.secure, host: handshake.headers.host, url: handshake.url }, target.proof).then(() => undefined);
};

/**
 * Why a token presented without a proof must be refused, or `undefined`
 * when it may be used so. Fail closed: any confirmation (`cnf`, RFC 7800)
 * means the token is only good with something the client proves, and the
 * package checks only DPoP's `jkt`, with a proof.
 */
export function prooflessRefusal(context: OidcUserContext, config: OidcConfig, how: string): string | undefined {
  const cnf = context.claims["cnf"];
  if (cnf === undefined && config.issuers.length === 1 && config.issuers[0]!.dpop !== "required") return undefined;
  if (boundKey(cnf) !== undefined) return `a DPoP-bound token (cnf.jkt) was ${how}`;
  // RFC 8705: a certificate-bound token is only good with the client's TLS certificate, which the package does not check.
  if (cnf !== null && typeof cnf === "object" && "x5t#S256" in cnf) return "a certificate-bound token (cnf.x5t#S256) was presented; TLS client certificates are not checked here";
  if (cnf !== undefined) return "a token with a confirmation (cnf) the package does not check (only a string cnf.jkt, with a DPoP proof) was presented";
  if (policyOf(config, context) === "required") return `the issuer requires DPoP and the token was ${how}`;
  return undefined;
}

/** A token presented without a proof: refused when bound to a key (or to anything), or when its issuer requires DPoP. */
function checkBearer(appHandle: OidcAppHandle, context: OidcUserContext, config: OidcConfig, how: string): void {
  const reason = prooflessRefusal(context, config, how);
  if (reason !== undefined) throw refusal("ERR_AUTH_TOKEN_INVALID", reason, policyOf(config, context), "invalid_token", config.realm, appHandle, config);
}

/**
 * One proof for one verified token, whatever the transport: the issuer's
 * policy allows DPoP, the token is bound to a key, and the proof is valid
 * for `method` and the URL of `request`, for this token, by that key.
 * Rejects with an `OidcAuthError` carrying the challenge (and a fresh nonce
 * when the proof lacked a current one).
 */
function checkProof(appHandle: OidcAppHandle, token: string, context: OidcUserContext, config: OidcConfig, method: string, request: DpopRequestTarget, proof: unknown): Promise<DpopProof> {
  const policy = policyOf(config, context);
  const jkt = boundKey(context.claims["cnf"]);
  const realm = config.realm;
  if (policy === "disabled") return Promise.reject(refusal("ERR_AUTH_TOKEN_INVALID", "a DPoP proof came and the issuer's DPoP policy is \"disabled\"", policy, undefined, realm, appHandle, config));
  if (jkt === undefined) return Promise.reject(refusal("ERR_AUTH_TOKEN_INVALID", "a DPoP proof came with a token bound to no key (no cnf.jkt)", policy, "invalid_token", realm, appHandle, config));

  let settings: DpopSettings;
  try {
    settings = dpopSettingsOf(appHandle, config);
  } catch (error) {
    return Promise.reject(error);
  }
  const url = dpopRequestUrl(request, settings.publicOrigins);
  if (url === undefined) return Promise.reject(refusal("ERR_AUTH_DPOP_INVALID", "the request URL cannot be compared with an htu (no usable Host header, or dot segments or backslashes in its path)", policy, "invalid_dpop_proof", realm, appHandle, config));
  return verifyDpopProof(proof, { method, url, accessToken: token, expectedJkt: jkt }, settings).catch((error: unknown) => {
    if (!isDpopProofError(error)) {
      throw new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: `DPoP: ${describeError(error)}`, cause: error });
    }
    const code: OidcAuthErrorCode = error.error === "use_dpop_nonce" ? "ERR_AUTH_DPOP_NONCE" : error.error === "invalid_token" ? "ERR_AUTH_TOKEN_INVALID" : "ERR_AUTH_DPOP_INVALID";
    throw refusal(code, error.reason, policy, error.error, realm, appHandle, config, error.nonce, error);
  });
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * A refusal with its challenges (RFC 9449 section 7.1): the `DPoP` one where
 * the issuer accepts DPoP (with the error and the accepted `algs`), and the
 * `Bearer` one where it accepts Bearer (with `error="invalid_token"` when
 * the token itself is refused).
 */
function refusal(
  code: OidcAuthErrorCode,
  reason: string,
  policy: OidcDpopPolicy,
  error: DpopErrorCode | undefined,
  realm: string | undefined,
  appHandle: OidcAppHandle,
  config: OidcConfig,
  nonce?: string,
  cause?: unknown,
): OidcAuthError {
  const challenges: string[] = [];
  if (policy !== "disabled") {
    const algs = dpopAlgorithms(appHandle, config);
    challenges.push(dpopChallenge({ error, algs, realm }));
  }
  if (policy !== "required") {
    const params: string[] = [];
    if (realm !== undefined) params.push(`realm=${quote(realm)}`);
    if (code === "ERR_AUTH_TOKEN_INVALID") params.push('error="invalid_token"', 'error_description="The access token is invalid"');
    challenges.push(params.length === 0 ? "Bearer" : `Bearer ${params.join(", ")}`);
  }
  return new OidcAuthError(code, {
    reason: `DPoP: ${reason}`,
    cause,
    challenge: challenges.join(", "),
    extraHeaders: nonce === undefined ? undefined : { "dpop-nonce": nonce },
  });
}

/**
 * The challenge of a 401 the DPoP step did not answer itself (no token, a
 * token that failed verification, a revoked one), where DPoP is in use: the
 * request used the `DPoP` scheme, an issuer requires DPoP, or the app set
 * `dpop` options. Then the `DPoP` challenge with `algs` (and
 * `error="invalid_token"` unless no token came), followed by the derived
 * `Bearer` one where some issuer still accepts Bearer. Otherwise `undefined`:
 * the Bearer challenge stays as it is.
 */
export function withDpopChallenge(bearer: string | undefined, failure: OidcAuthError, scheme: AuthScheme, appHandle: OidcAppHandle, config: OidcConfig): string | undefined {
  let requires = false;
  let acceptsBearer = false;
  let acceptsDpop = false;
  for (const issuer of config.issuers) {
    if (issuer.dpop === "required") requires = true;
    else acceptsBearer = true;
    if (issuer.dpop !== "disabled") acceptsDpop = true;
  }
  if (!acceptsDpop || (!requires && scheme !== "dpop" && config.dpop === undefined)) return undefined;
  const refused = failure.code !== "ERR_AUTH_TOKEN_REQUIRED";
  const dpop = dpopChallenge({ error: refused ? "invalid_token" : undefined, description: refused ? failure.message : undefined, algs: dpopAlgorithms(appHandle, config), realm: config.realm });
  return acceptsBearer && bearer !== undefined ? `${dpop}, ${bearer}` : dpop;
}

/** The accepted proof algorithms, for `algs`; the defaults' when the settings cannot be made (the refusal stands). */
function dpopAlgorithms(appHandle: OidcAppHandle, config: OidcConfig): readonly string[] | undefined {
  try {
    return dpopSettingsOf(appHandle, config).algorithms;
  } catch {
    return undefined;
  }
}
