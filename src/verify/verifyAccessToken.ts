/**
 * Token verification: structural pre-checks, algorithm allow-list, signature
 * against the provider's JWKS, registered claims. Produces the verified
 * payload or an `OidcAuthError` whose `reason` says why (for the log).
 *
 * Three paths, one decision:
 * - a token string verified before (and still valid, its key still
 *   published) is answered from the verified-token cache;
 * - an ordinary token (header `alg`/`kid`/`typ` only, one matching key) is
 *   verified synchronously with node:crypto (`fastVerify`), which only ever
 *   accepts or defers;
 * - everything else, and every rejection, is decided by jose's `jwtVerify`,
 *   the reference. A differential test holds the two to the same answers.
 */
import type { JWTPayload } from "jose";
import { OidcAuthError } from "../errors.js";
import type { OidcConfig, OidcIssuerConfig } from "../types.js";
import { jwksUriOf } from "../keys/discovery.js";
import { loadJose } from "../jwt/jose.js";
import { fastAlgorithm } from "../jwt/algorithms.js";
import type { FastPolicy } from "../jwt/claims.js";
import { COMPACT_JWS, decodeJws, type DecodedJws } from "../jwt/decode.js";
import { fastVerify } from "../jwt/fastVerify.js";
import { isUsableJwk } from "../jwt/usableKey.js";
import { keyFunction, keySetFor, KeySetUnavailableError, type KeySetLog, type KeySetSnapshot, type RemoteKeySet, type StoredKey } from "../keys/keySets.js";
import { TokenCache } from "./tokenCache.js";
import { notAnAccessToken } from "../claims/tokenType.js";
import { show } from "../util/text.js";


function invalid(reason: string, cause?: unknown): OidcAuthError {
  return new OidcAuthError("ERR_AUTH_TOKEN_INVALID", { reason, cause });
}

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

/** A verified token and the trusted issuer that signed it. */
export interface VerifiedToken {
  payload: JWTPayload;
  issuer: OidcIssuerConfig;
}

/**
 * The one published key jose would consider for this token (jose verifies
 * only when there is exactly one, and only then may the fast path run):
 * undefined when there is none, null when there are several.
 */
function onlyCandidate(snapshot: KeySetSnapshot, alg: string, kid: unknown): StoredKey | null | undefined {
  let found: StoredKey | undefined;
  for (const stored of snapshot.keys) {
    if (!isUsableJwk(stored.jwk as Readonly<Record<string, unknown>>, alg, kid)) continue;
    if (found !== undefined) return null;
    found = stored;
  }
  return found;
}

type Jose = Awaited<ReturnType<typeof loadJose>>;

/** The key set of an issuer with a configured JWKS URI, looked up once per issuer config. */
const issuerKeySets = new WeakMap<OidcIssuerConfig, RemoteKeySet>();

function keySetOf(issuer: OidcIssuerConfig, config: OidcConfig): RemoteKeySet | undefined {
  if (issuer.jwksUri === undefined) return undefined;
  let set = issuerKeySets.get(issuer);
  if (set === undefined) issuerKeySets.set(issuer, (set = keySetFor(issuer.jwksUri, config)));
  return set;
}

const policies = new WeakMap<OidcIssuerConfig, FastPolicy>();

function policyOf(issuer: OidcIssuerConfig): FastPolicy {
  let policy = policies.get(issuer);
  if (policy === undefined) {
    policy = Object.freeze({
      issuer: issuer.issuer,
      audience: issuer.audience,
      algorithms: issuer.algorithms,
      clockTolerance: issuer.clockTolerance,
      requiredClaims: Object.freeze(["exp", "sub", ...issuer.requiredClaims]),
      ...(issuer.maxTokenAge === undefined ? {} : { maxTokenAge: issuer.maxTokenAge }),
      ...(issuer.strict ? { typ: "at+jwt" } : {}),
    });
    policies.set(issuer, policy);
  }
  return policy;
}

const caches = new WeakMap<OidcConfig, TokenCache>();

/** The verified-token cache of this config (one per config object), or undefined when turned off. */
export function tokenCacheOf(config: OidcConfig): TokenCache | undefined {
  if (config.tokenCache === false) return undefined;
  let cache = caches.get(config);
  if (cache === undefined) caches.set(config, (cache = new TokenCache(config.tokenCache)));
  return cache;
}

/**
 * `iss` (and a string `aud`) equal the configured issuer (and one of its
 * audiences): point them at the config's strings, so the payloads kept by
 * the token cache and by live sockets share one copy instead of one per token.
 */
function shareIssuerStrings(payload: JWTPayload, issuer: OidcIssuerConfig): void {
  if (payload.iss === issuer.issuer) payload.iss = issuer.issuer;
  const aud = payload.aud;
  if (typeof aud === "string") {
    const audiences = issuer.audience;
    for (let i = 0; i < audiences.length; i++) {
      if (audiences[i] === aud) {
        payload.aud = audiences[i];
        break;
      }
    }
  }
}

/**
 * Cached payloads are shared by every request that presents the token:
 * nothing may change them. A payload comes from JSON.parse (plain objects and
 * arrays, no cycles); arrays are walked by index, not by for-in.
 */
function deepFreeze(value: object): void {
  if (Object.isFrozen(value)) return;
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const member: unknown = value[i];
      if (member !== null && typeof member === "object") deepFreeze(member);
    }
  } else {
    const record = value as Record<string, unknown>;
    for (const name in record) {
      const member = record[name];
      if (member !== null && typeof member === "object") deepFreeze(member);
    }
  }
}

/** ES2024 `String.prototype.isWellFormed` (Node 20+), not yet in the compiler's lib. */
type WellFormed = { isWellFormed(): boolean };

/**
 * The subject keys users, rooms and stores: a non-empty string of whole
 * characters (a lone surrogate would turn into U+FFFD in UTF-8 keys and so
 * collide with another subject). So does a string `sid` (rooms).
 */
function checkSub(payload: JWTPayload): void {
  if (typeof payload.sub !== "string" || payload.sub === "") {
    throw invalid(`sub must be a non-empty string, got ${show(payload.sub)}`);
  }
  if (!(payload.sub as unknown as WellFormed).isWellFormed()) throw invalid(`sub ${show(payload.sub)} is not a well-formed string (lone surrogate)`);
  // A string `sid` names a room (see rooms.ts): one that cannot be encoded refuses the token rather than counting as absent.
  if (typeof payload["sid"] === "string" && !(payload["sid"] as unknown as WellFormed).isWellFormed()) {
    throw invalid(`sid ${show(payload["sid"])} is not a well-formed string (lone surrogate)`);
  }
}

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
      header = jose.decodeProtectedHeader(token) as Record<string, unknown>;
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

/** What a pipeline waits for. */
type Wait = Promise<unknown>;

/**
 * `yield* wait(promise)` in a generator run by `drive` reads and behaves like
 * `await promise` in an async function: it evaluates to the promise's value,
 * or throws its rejection at that point.
 */
function* wait<T>(promise: Promise<T>): Generator<Wait, T, unknown> {
  return (yield promise) as T;
}

/**
 * Date.now() when the pipeline last started or resumed after a wait. The
 * steps between two waits run at once, one after the other, so they share
 * this one reading (a clock read is not free, and most tokens never wait).
 */
interface Clock {
  now: number;
}

/**
 * Run a generator written with `yield* wait(...)` as an async function would
 * run, but without a promise while it does not wait: its return value, or its
 * exception thrown, when it finishes without waiting; otherwise a promise of
 * the rest. `clock` is read again each time it resumes.
 */
function drive<T>(pipeline: Generator<Wait, T, unknown>, clock: Clock, step: IteratorResult<Wait, T>): T | Promise<T> {
  if (step.done === true) return step.value;
  return step.value.then(
    (value) => {
      clock.now = Date.now();
      return drive(pipeline, clock, pipeline.next(value));
    },
    (error: unknown) => {
      clock.now = Date.now();
      return drive(pipeline, clock, pipeline.throw(error));
    },
  );
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
export function verifyAccessTokenNow(token: unknown, config: OidcConfig, log?: KeySetLog): VerifiedToken | Promise<VerifiedToken> {
  const clock: Clock = { now: Date.now() };
  const pipeline = verification(token, config, log, clock);
  return drive(pipeline, clock, pipeline.next());
}

/**
 * The one verification flow, as a generator: each `yield* wait(x)` is an
 * `await x` that only happens when a step must wait. `clock.now` is the
 * current time for each step (see Clock).
 */
function* verification(token: unknown, config: OidcConfig, log: KeySetLog | undefined, clock: Clock): Generator<Wait, VerifiedToken, unknown> {
  if (typeof token !== "string" || token.length === 0) {
    throw new OidcAuthError("ERR_AUTH_TOKEN_REQUIRED", { reason: "no token was presented" });
  }
  const cache = tokenCacheOf(config);
  if (cache !== undefined) {
    const hit = cache.get(token, clock.now);
    if (hit !== undefined) return { payload: hit.payload as JWTPayload, issuer: hit.issuer };
  }
  if (token.length > config.maxTokenLength) {
    throw invalid(`token is ${token.length} characters, over the ${config.maxTokenLength} limit`);
  }
  // decodeJws proves the compact form itself; the regex runs only for the tokens it declines.
  const decoded: DecodedJws | undefined = decodeJws(token);
  if (decoded === undefined && !COMPACT_JWS.test(token)) throw invalid("token is not a compact JWS (three base64url segments)");
  // Synchronous when the fast decoder took the token; jose (loaded once) decodes the others.
  const { header, issuer, alg } = routeToken(token, config, decoded ?? (yield* wait(loadJose())), invalid);
  const { kid } = header;

  let payload: JWTPayload;
  let verifiedWith: StoredKey | undefined;
  let set;
  try {
    set = keySetOf(issuer, config) ?? keySetFor(yield* wait(jwksUriOf(issuer, config)), config);
    let snapshot = set.freshSnapshot(clock.now) ?? (yield* wait(set.keys(log)));
    let only = onlyCandidate(snapshot, alg, kid);
    if (only === undefined) {
      const next = yield* wait(set.refreshForUnknownKid(snapshot, log));
      if (next !== snapshot) only = onlyCandidate((snapshot = next), alg, kid);
    }
    verifiedWith = only ?? undefined;
    const fast =
      decoded !== undefined && verifiedWith?.key !== undefined && fastAlgorithm(alg)
        ? fastVerify(decoded, verifiedWith.key, policyOf(issuer), Math.floor(clock.now / 1000))
        : undefined;
    payload = fast !== undefined ? (fast as JWTPayload) : yield* wait(joseVerify(token, issuer, set, snapshot, log));
  } catch (error) {
    throw failure(error, issuer, kid);
  }
  checkSub(payload);
  const other = notAnAccessToken(header, payload, issuer.tokenType);
  if (other !== undefined) throw invalid(other);
  shareIssuerStrings(payload, issuer);
  deepFreeze(payload);
  if (cache !== undefined && verifiedWith !== undefined) {
    const payloadChars = decoded === undefined ? token.length : decoded.signingInput.length - decoded.signingInput.indexOf(".") - 1;
    cache.set(token, payload as Readonly<Record<string, unknown>>, issuer, set, verifiedWith, payloadChars, clock.now);
  }
  return { payload, issuer };
}

/** The reference: jose's jwtVerify over the snapshot's keys, with the issuer's rules. Resolves to the payload. */
async function joseVerify(token: string, issuer: OidcIssuerConfig, set: RemoteKeySet, snapshot: KeySetSnapshot, log: KeySetLog | undefined): Promise<JWTPayload> {
  const jose = await loadJose();
  const { payload } = await jose.jwtVerify(token, keyFunction(set, snapshot, log), {
    issuer: issuer.issuer,
    audience: issuer.audience as string[],
    algorithms: issuer.algorithms as string[],
    clockTolerance: issuer.clockTolerance,
    requiredClaims: ["exp", "sub", ...issuer.requiredClaims],
    ...(issuer.maxTokenAge === undefined ? {} : { maxTokenAge: issuer.maxTokenAge }),
    ...(issuer.strict ? { typ: "at+jwt" } : {}),
  });
  return payload;
}

/** A failure while getting the keys or verifying: the key set unavailable (503), else the token invalid, explained. */
function failure(error: unknown, issuer: OidcIssuerConfig, kid: unknown): OidcAuthError {
  if (error instanceof KeySetUnavailableError) {
    return new OidcAuthError("ERR_AUTH_UNAVAILABLE", { reason: error.message, cause: error });
  }
  return invalid(explain(error, { issuer, audiences: issuer.audience, maxAge: issuer.maxTokenAge, maxAgeName: "maxTokenAge", kid }), error);
}
