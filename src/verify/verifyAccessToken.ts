/**
 * Token verification: structural pre-checks, algorithm allow-list, signature
 * against the provider's JWKS, registered claims. Produces the verified
 * payload or an `OidcAuthError` whose `reason` says why (for the log).
 *
 * Three paths, one decision:
 * - a token string verified before (and still valid, its key still
 *   published) is answered from the verified-token cache, and an opaque
 *   token whose introspection answer is cached, from that cache;
 * - an ordinary token (header `alg`/`kid`/`typ` only, one matching key) is
 *   verified synchronously with node:crypto (`fastVerify`), which only ever
 *   accepts or defers;
 * - everything else, and every rejection, is decided by jose's `jwtVerify`,
 *   the reference. A differential test holds the two to the same answers.
 */
import type { JWTPayload, JWTVerifyOptions } from "jose";
import { notAnAccessToken } from "../claims/tokenType.js";
import { OidcAuthError } from "../errors.js";
import { fastAlgorithm } from "../jwt/algorithms.js";
import type { FastPolicy } from "../jwt/claims.js";
import { COMPACT_JWS, decodeJws, type DecodedJws } from "../jwt/decode.js";
import { fastVerify } from "../jwt/fastVerify.js";
import { loadJose } from "../jwt/jose.js";
import { jwksUriOf } from "../keys/discovery.js";
import { keyFunction } from "../keys/keyFunction.js";
import { KeySetUnavailableError } from "../keys/keySetUnavailableError.js";
import { onlyCandidate } from "../keys/onlyCandidate.js";
import type { KeySetLog, KeySetSnapshot, RemoteKeySet, StoredKey } from "../keys/remoteKeySet.js";
import type { OidcConfig, OidcIssuerConfig, OidcUserContext } from "../types.js";
import type { OidcVerificationReport } from "../diagnostics.js";
import { drive, wait, type Clock, type Wait } from "./drive.js";
import { explain } from "./explain.js";
import { invalid } from "./invalid.js";
import { discoveredKeySet, issuerStateOf, tokenCacheOf } from "./issuerState.js";
import type { TokenCache } from "./tokenCache.js";
import { checkSub, sharePayload } from "./payload.js";
import { confirmActive, introspectedAtOnce, introspectingIssuer, introspectOpaque } from "./opaque.js";
import { routeToken } from "./route.js";

/** A verified token and the trusted issuer that signed it. */
export interface VerifiedToken {
  readonly payload: JWTPayload;
  readonly issuer: OidcIssuerConfig;
  /**
   * Where the pipeline keeps the user context it builds from this
   * verification. A cached token answers with its cache entry, so the
   * context built the first time is found again on every hit.
   */
  context: OidcUserContext | undefined;
}

/**
 * Verify a raw access token against a normalised config. Resolves to the
 * verified payload (with `exp` and a non-empty string `sub` guaranteed; the
 * object is frozen and may be shared) and the issuer it was routed to by its
 * `iss`. `log` receives key-set events (stale keys in use, recovery).
 */
export function verifyAccessToken(token: unknown, config: OidcConfig, log?: KeySetLog): Promise<VerifiedToken> {
  try {
    return Promise.resolve(verifyAccessTokenNow(token, config, log));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * verifyAccessToken without a promise when none is needed: the verified token
 * itself when every step completed at once (a cache hit; or fresh keys and
 * the fast path accepting), else a promise of it. Throws (synchronously, or
 * through the promise) what verifyAccessToken rejects with.
 */
export function verifyAccessTokenNow(token: unknown, config: OidcConfig, log?: KeySetLog, report?: OidcVerificationReport): VerifiedToken | Promise<VerifiedToken> {
  const now = Date.now();
  const cache = tokenCacheOf(config);
  let decoded: DecodedJws | undefined;
  if (typeof token === "string" && token.length > 0) {
    // A cached token costs one map lookup: no generator, no clock object.
    if (cache !== undefined) {
      const hit = cache.get(token, now);
      if (hit !== undefined) {
        if (report !== undefined) report.path = "cache";
        return hit.issuer.introspect === "always" ? confirmActive(token, hit, config, log) : hit;
      }
    }
    if (token.length <= config.maxTokenLength) {
      decoded = decodeJws(token);
      // An ordinary token with fresh keys is verified here and now: no generator either.
      if (decoded !== undefined) {
        const verified = verifiedAtOnce(token, decoded, config, cache, now, report);
        if (verified !== undefined) return verified.issuer.introspect === "always" ? confirmActive(token, verified, config, log) : verified;
      } else if (token.indexOf(".") === -1) {
        // Not a JWT (a compact JWS has two dots): an opaque token whose introspection answer is cached is decided here and now too.
        const introspected = introspectedAtOnce(token, config);
        if (introspected !== undefined) {
          if (report !== undefined) report.path = "introspection";
          return introspected;
        }
      }
    }
  }
  const clock: Clock = { now };
  const pipeline = verification(token, decoded, config, cache, log, clock, report);
  return drive(pipeline, clock, pipeline.next());
}

/**
 * The common case without the generator: a decoded token of a configured
 * issuer whose key set is fresh, with one candidate key, that the fast path
 * accepts. Undefined whenever anything is otherwise (an unknown issuer, an
 * alg outside the allow-list, keys to fetch, no single candidate, the fast
 * path deferring): `verification` then runs the whole flow from the start
 * and gives every refusal its reason, so this function refuses nothing
 * itself, except what `accepted` refuses after a valid signature, as
 * `verification` would.
 */
function verifiedAtOnce(token: string, decoded: DecodedJws, config: OidcConfig, cache: TokenCache | undefined, now: number, report: OidcVerificationReport | undefined): VerifiedToken | undefined {
  const iss = decoded.payload["iss"];
  const issuers = config.issuers;
  let issuer: OidcIssuerConfig | undefined;
  for (let i = 0; i < issuers.length; i++) {
    if (issuers[i]!.issuer === iss) {
      issuer = issuers[i];
      break;
    }
  }
  if (issuer === undefined) return undefined;
  const header = decoded.header;
  const alg = header["alg"];
  if (typeof alg !== "string" || !issuer.algorithms.includes(alg)) return undefined;
  let keySet: RemoteKeySet | undefined;
  let only: StoredKey | null | undefined;
  let payload: JWTPayload | undefined;
  try {
    const state = issuerStateOf(issuer, config);
    keySet = state.keySet;
    const snapshot = keySet?.freshSnapshot(now);
    if (snapshot === undefined) return undefined;
    only = onlyCandidate(snapshot, alg, header["kid"]);
    if (only === undefined || only === null || only.key === undefined) return undefined;
    payload = fastVerify(decoded, only.key, state.policy, Math.floor(now / 1000));
  } catch {
    // `verification` meets the same error and explains it.
    return undefined;
  }
  if (payload === undefined) return undefined;
  if (report !== undefined) report.path = "fast";
  return accepted(token, decoded, header, payload, issuer, cache, keySet!, only, now);
}

/**
 * The one verification flow, as a generator: each `yield* wait(x)` is an
 * `await x` that only happens when a step must wait. `clock.now` is the
 * current time for each step (see Clock). `decoded` is the token's
 * `decodeJws` result when the caller has it (it decodes every string token
 * within the length limit).
 */
function* verification(
  token: unknown,
  decoded: DecodedJws | undefined,
  config: OidcConfig,
  cache: TokenCache | undefined,
  log: KeySetLog | undefined,
  clock: Clock,
  report: OidcVerificationReport | undefined,
): Generator<Wait, VerifiedToken, unknown> {
  if (typeof token !== "string" || token.length === 0) {
    throw new OidcAuthError("ERR_AUTH_TOKEN_REQUIRED", { reason: "no token was presented" });
  }
  // (The cache was asked before this started: see verifyAccessTokenNow.)
  if (token.length > config.maxTokenLength) {
    throw invalid(`token is ${token.length} characters, over the ${config.maxTokenLength} limit`);
  }
  // decodeJws proves the compact form itself; the regex runs only for the tokens it declines.
  if (decoded === undefined && !COMPACT_JWS.test(token)) {
    // Not a JWT: an opaque token, which only an introspecting issuer can vouch for (see opaque.ts).
    const introspecting = introspectingIssuer(config);
    if (introspecting === undefined) throw invalid("token is not a compact JWS (three base64url segments)");
    if (report !== undefined) report.path = "introspection";
    return yield* introspectOpaque(token, introspecting, config, log);
  }
  // Synchronous when the fast decoder took the token; jose (loaded once) decodes the others.
  const { header, issuer, alg } = routeToken(token, config, decoded ?? (yield* wait(loadJose())), invalid);
  const { kid } = header;

  let payload: JWTPayload;
  let verifiedWith: StoredKey | undefined;
  let set: RemoteKeySet;
  try {
    const { policy, keySet } = issuerStateOf(issuer, config);
    set = keySet ?? discoveredKeySet(issuer, yield* wait(jwksUriOf(issuer, config)), config);
    let snapshot = set.freshSnapshot(clock.now) ?? (yield* wait(set.keys(log)));
    let only = onlyCandidate(snapshot, alg, kid);
    if (only === undefined) {
      const next = yield* wait(set.refreshForUnknownKid(snapshot, log));
      if (next !== snapshot) only = onlyCandidate((snapshot = next), alg, kid);
    }
    verifiedWith = only ?? undefined;
    const fast =
      decoded !== undefined && verifiedWith?.key !== undefined && fastAlgorithm(alg)
        ? fastVerify(decoded, verifiedWith.key, policy, Math.floor(clock.now / 1000))
        : undefined;
    if (report !== undefined) report.path = fast !== undefined ? "fast" : "jose";
    payload = fast !== undefined ? fast : yield* wait(joseVerify(token, policy, set, snapshot, log));
  } catch (error) {
    throw failure(error, issuer, kid);
  }
  const verified = accepted(token, decoded, header, payload, issuer, cache, set, verifiedWith, clock.now);
  // introspect: "always": the provider must also say the token is active.
  return issuer.introspect === "always" ? yield* wait(confirmActive(token, verified, config, log)) : verified;
}

/**
 * What follows a valid signature and valid registered claims, on every path:
 * the subject and the token type checked (a refusal throws), the payload
 * made shareable, the verification remembered by the cache (when it admits
 * it). `verifiedWith` is the key that verified it, when known.
 */
function accepted(
  token: string,
  decoded: DecodedJws | undefined,
  header: Record<string, unknown>,
  payload: JWTPayload,
  issuer: OidcIssuerConfig,
  cache: TokenCache | undefined,
  set: RemoteKeySet,
  verifiedWith: StoredKey | undefined,
  now: number,
): VerifiedToken {
  checkSub(payload);
  const other = notAnAccessToken(header, payload, issuer.tokenType);
  if (other !== undefined) throw invalid(other);
  sharePayload(payload, issuer);
  if (cache !== undefined && verifiedWith !== undefined) {
    const payloadChars = decoded === undefined ? token.length : decoded.signingInputEnd - token.indexOf(".") - 1;
    const kept = cache.set(token, payload, issuer, set, verifiedWith, payloadChars, now);
    if (kept !== undefined) return kept;
  }
  return { payload, issuer, context: undefined };
}

/**
 * The reference: jose's jwtVerify over the snapshot's keys, with the
 * issuer's rules (the fast path's policy: its members are jose's options, so
 * both paths check the same rules). Resolves to the payload.
 */
async function joseVerify(token: string, policy: FastPolicy, set: RemoteKeySet, snapshot: KeySetSnapshot, log: KeySetLog | undefined): Promise<JWTPayload> {
  const jose = await loadJose();
  const { payload } = await jose.jwtVerify(token, keyFunction(set, snapshot, log), policy as JWTVerifyOptions);
  return payload;
}

/** A failure while getting the keys or verifying: the key set unavailable (503), else the token invalid, explained. */
function failure(error: unknown, issuer: OidcIssuerConfig, kid: unknown): OidcAuthError {
  if (error instanceof KeySetUnavailableError) {
    return new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: error.message, cause: error });
  }
  return invalid(explain(error, { issuer, audiences: issuer.audience, maxAge: issuer.maxTokenAge, maxAgeName: "maxTokenAge", kid }), error);
}
