/**
 * Public types of ioserver-oidc, kept in one file (over the usual size) so
 * that the API's shapes read in one place; they import nothing of the package.
 */
/** The fields a claim mapping produces. */
export interface OidcMappedClaims {
  roles?: string[];
  permissions?: string[];
  scopes?: string[];
  features?: OidcFeatures;
  email?: string | null;
  name?: string | null;
}

/** A custom mapping: from the verified claims to (some of) the context's fields. */
export type OidcClaimMapper = (claims: Readonly<Record<string, unknown>>) => OidcMappedClaims;

export type OidcClaimPreset = "auth-service" | "keycloak" | "auth0" | "entra" | "okta" | "google";

/** What an issuer accepts as an access token, resolved from its options. */
export interface TokenTypeRules {
  /** Normalised header `typ` values accepted (an absent `typ` always is). */
  readonly typs: readonly string[];
  /** Whether the ID-token claims `nonce`, `at_hash` and `c_hash` are accepted. */
  readonly nonce: boolean;
  /** The provider's marker: a reason when the claims name another kind of token. */
  readonly marker: ((claims: Readonly<Record<string, unknown>>) => string | undefined) | undefined;
}


/** Feature flags and limits carried by the token's `features` claim. */
export type OidcFeatures = Record<string, unknown>;

/**
 * The authenticated caller, as seen by handlers on both transports
 * (`request.auth`, `socket.data.auth`). Frozen, with its lists and `features`: the
 * context of a cached token is shared by every request and socket that
 * presents the token. Copy what you need to change.
 */
export interface OidcUserContext {
  /** The token's `sub` claim. */
  sub: string;
  /**
   * The users manager's id for this subject (as a string). Without a users
   * manager: `sub` when one issuer is trusted, `<iss>#<sub>` when several are.
   */
  userId: string;
  /** `email` claim when it is a string, else `null`. */
  email: string | null;
  /** `name` claim when it is a string, else `null`. */
  name: string | null;
  /** Primary role: `roles[0]`, else `"user"`. */
  userRole: string;
  /** The token's `roles` (strings only); or `[role]` from the users manager when the token has none. */
  roles: string[];
  /** The token's `permissions` (strings only), else `[]`. */
  permissions: string[];
  /** The token's `features` object, else `{}`. */
  features: OidcFeatures;
  /** OAuth scopes granted to the token: `scope` (space-delimited) or `scp` (string or array). */
  scopes: string[];
  /** When the token expires: its `exp` claim in epoch milliseconds. */
  expiresAt: number;
  /** The verified token's claims, read-only, for custom checks. */
  claims: Readonly<Record<string, unknown>>;
}

/** Verification options that may be set for all issuers or per issuer. */
export interface OidcVerificationOptions {
  /** Allowed signature algorithms (asymmetric only). Default RS/PS/ES 256-512 and EdDSA/Ed25519. */
  algorithms?: readonly string[];
  /** Seconds of clock skew tolerated on `exp` / `nbf` / `iat`. Default 5. */
  clockTolerance?: number;
  /** Refuse tokens whose `iat` is older than this many seconds (and tokens without `iat`). Default: no limit. */
  maxTokenAge?: number;
  /** Claims that must be present besides `exp` and `sub`. Default `[]`. */
  requiredClaims?: readonly string[];
  /**
   * RFC 9068 JWT access tokens only: header `typ` must be `at+jwt`, and
   * `client_id`, `iat`, `jti` must be present. Default false.
   */
  strict?: boolean;
  /** Where roles, permissions, scopes and features are read from: a preset name or a function. Default `"auth-service"`. */
  claimMapping?: OidcClaimPreset | OidcClaimMapper;
  /** The claim (name or dotted path) holding roles, for presets such as `auth0` (namespaced claim). */
  rolesClaim?: string;
  /** Keycloak: the client whose `resource_access[clientId].roles` count. Default: the first audience. */
  clientId?: string;
  /**
   * Loosen the rules that tell an access token from the issuer's other JWTs
   * (ID tokens, logout tokens). By default a token is refused when its header
   * `typ` is not absent, `JWT` or `at+jwt`, when its payload carries `events`
   * (a logout or other security event token) or `nonce`, `at_hash` or
   * `c_hash` (an ID token), and
   * when the preset's marker says it is another kind (Keycloak: payload `typ`
   * must be `Bearer`). Each option widens what is accepted as an access token,
   * so that an ID token, say, could then open the API: set only what your
   * provider breaks. `events` cannot be loosened; `strict` still requires
   * `at+jwt`.
   */
  relaxTokenType?: OidcRelaxTokenType;
}

/** See `OidcVerificationOptions.relaxTokenType`. */
export interface OidcRelaxTokenType {
  /** More header `typ` values to accept (compared case-insensitively, `application/` optional). */
  typ?: readonly string[];
  /** `true`: accept the ID-token claims `nonce`, `at_hash` and `c_hash` (tokens that may be ID tokens). */
  nonce?: boolean;
  /** `false`: skip the preset's marker check. */
  presetMarker?: boolean;
}

/**
 * Token introspection (RFC 7662) for one issuer: how this resource server
 * asks the provider whether a token is active. See docs/introspection.md.
 */
export interface OidcIntrospectionInput {
  /** The introspection endpoint. Default: the discovery document's `introspection_endpoint` (required when `jwksUri` is set, as there is no discovery then). */
  endpoint?: string;
  /** This resource server's client id at the provider. */
  clientId: string;
  /** Default: `client_secret_basic` with a `clientSecret`, `private_key_jwt` with a `privateKey`. */
  clientAuthMethod?: "client_secret_basic" | "client_secret_post" | "private_key_jwt";
  /** For `client_secret_basic` and `client_secret_post`. */
  clientSecret?: string;
  /** For `private_key_jwt`: a private JWK (with `d`), a private `KeyObject` or a `CryptoKey`. */
  privateKey?: object;
  /** The client assertion's `alg` (`private_key_jwt`). Default: the JWK's `alg`, else from its key type. */
  signingAlg?: string;
  /** Deadline of one introspection request, in ms. Default 5000. */
  timeout?: number;
  /** Longest time an active answer is reused, in ms (also bounded by the token's `exp` and the response's `max-age`). Default 60000; 0 asks every time. */
  cacheTtl?: number;
  /** How long an inactive answer is reused, in ms. Default 10000; 0 turns it off. */
  negativeCacheTtl?: number;
  /** Most tokens whose active answers are kept (refusals are kept apart, in a tenth of that). Default 10000. */
  maxEntries?: number;
  /** Longest opaque token sent to the endpoint, in characters; a longer one (or one outside RFC 6750's `b64token` characters) is refused without a request. Default 2048. */
  maxTokenLength?: number;
  /** Most introspection requests in flight at once; a new token needing another is refused with `ERR_AUTH_UNAVAILABLE` (cached answers still served). Default 64. */
  maxConcurrent?: number;
}

/** The introspection options of an issuer (see `OidcIntrospectionInput`). */
export interface OidcIntrospectionOptions {
  /** How to reach the issuer's introspection endpoint. */
  introspection?: OidcIntrospectionInput;
  /**
   * Which tokens are introspected: `"opaque"` (default with an
   * `introspection` block): tokens that are not JWTs; `"always"`: those, and
   * JWTs too, after they verified locally (both must pass). At most one
   * issuer may have an `introspection` block: an opaque token names no issuer.
   */
  introspect?: "opaque" | "always";
}

/** One trusted issuer in `issuers`. */
export interface OidcIssuerInput extends OidcVerificationOptions, OidcIntrospectionOptions {
  /** Expected `iss`, exactly. */
  issuer: string;
  /** Expected `aud` (the token's `aud` must contain one of these). */
  audience: string | readonly string[];
  /** JWKS endpoint. Default: `jwks_uri` of the issuer's discovery document. */
  jwksUri?: string;
  /** DPoP (RFC 9449) for this issuer's tokens on HTTP. Default: the top-level `dpop.policy`, else `"allowed"`. See docs/dpop.md. */
  dpop?: OidcDpopPolicy;
}

/**
 * Whether an issuer's tokens may or must be DPoP-bound: `"allowed"` (Bearer
 * and DPoP both accepted), `"required"` (Bearer refused), `"disabled"` (the
 * `DPoP` scheme refused). A token bound to a key (`cnf.jkt`) is refused as
 * Bearer under every policy.
 */
export type OidcDpopPolicy = "allowed" | "required" | "disabled";

/** Server nonces shared by the nodes of a cluster (`dpop.nonce`). See docs/dpop.md. */
export interface OidcDpopNonceOptions {
  /** The HMAC-SHA-256 key: at least 32 bytes (a string counts its UTF-8 bytes), the same on every node. */
  secret: string | Uint8Array;
  /** The longest a nonce is accepted, in seconds (2 to 86400): handed out for the first half, still accepted in the second. Default 120. */
  lifetime?: number;
}

/** The app-wide DPoP proof settings (`dpop` at the top level). See docs/dpop.md. */
export interface OidcDpopConfig {
  /** The policy of every issuer that sets none (with one issuer: its policy). Default `"allowed"`. */
  policy?: OidcDpopPolicy;
  /** Proof algorithms accepted (asymmetric JWS only). Default RS/PS/ES 256-512, EdDSA, Ed25519. */
  algorithms?: readonly string[];
  /** How old a proof's `iat` may be, in seconds (1 to 3600). Default 60. */
  maxAge?: number;
  /** Clock difference allowed between client and server for a proof's `iat`, in seconds (0 to 300). Default 5. */
  clockTolerance?: number;
  /**
   * Require a server nonce in every proof (`DPoP-Nonce`, `use_dpop_nonce`).
   * `true`: nonces made with a random secret of this process; `{ secret }`:
   * with that secret (at least 32 bytes; give every node of a cluster the
   * same), accepted for at most `lifetime` seconds (2 to 86400, default 120).
   * Default false.
   */
  nonce?: boolean | OidcDpopNonceOptions;
  /** The origin(s) clients address, e.g. `"https://api.example.com"`: needed behind a proxy that rewrites the scheme or `Host`. Default: the request's own. */
  publicOrigin?: string | readonly string[];
  /** Where the `jti` of accepted proofs are remembered (`claim(key, ttlMs)`). Default a `MemoryReplayStore` per app; a cluster needs a shared one (`redisDpopReplayStore`). */
  replayStore?: { claim(key: string, ttlMs: number): Promise<boolean> };
}

/**
 * What you may pass to configure verification. Either one issuer
 * (`authServiceUrl` + `appSlug`, or `issuer` + `audience`) or several
 * (`issuers`); everything else has a default (see README).
 *
 * Give plain data. Once an object has been validated (by `verifyOidcToken`,
 * `OidcConfigManager.configure` or a `getConfig()` the package resolves) it
 * is frozen, with the plain objects and arrays inside it, so a later change
 * throws a `TypeError` in strict mode instead of being silently ignored; to
 * change the configuration, pass a new object. A new object equal in content
 * to a recent one (functions such as a custom `claimMapping` compared by
 * identity) shares that one's validated form and token cache.
 */
export interface OidcConfigInput extends OidcVerificationOptions, OidcIntrospectionOptions {
  /** Identity provider base URL (http or https): the default issuer, and `<authServiceUrl>/api/auth/jwks` the default JWKS. */
  authServiceUrl?: string;
  /** OAuth client id of this application; the default audience. */
  appSlug?: string;
  /** JWKS endpoint. Default `<authServiceUrl>/api/auth/jwks`, or discovery when only `issuer` is given. */
  jwksUri?: string;
  /** Expected `iss`. Default `authServiceUrl` without trailing slash. With no `authServiceUrl`, keys are found by discovery. */
  issuer?: string;
  /** Expected `aud` (the token's `aud` must contain one of these). Default `appSlug`. */
  audience?: string | readonly string[];
  /** Several trusted issuers; a token is routed by its `iss`. Not combined with the single-issuer fields. */
  issuers?: readonly OidcIssuerInput[];
  /** DPoP-bound tokens on HTTP (RFC 9449): the proof settings and the default policy. See docs/dpop.md. */
  dpop?: OidcDpopConfig;
  /** Tokens longer than this many characters are refused before parsing. Default 16384. */
  maxTokenLength?: number;
  /** JWKS and discovery fetch timeout in ms. Default 5000. */
  jwksTimeout?: number;
  /** Minimum ms between two JWKS re-fetches caused by an unknown `kid`. Default 30000. */
  jwksCooldown?: number;
  /** Max age in ms of the cached key set before a refresh. Default 600000. */
  jwksCacheMaxAge?: number;
  /** `realm` of the `WWW-Authenticate` challenge on HTTP errors. Default: none. */
  realm?: string;
  /** Disconnect sockets whose token expired and was not refreshed. Default true. */
  socketExpiry?: boolean;
  /** Seconds before `exp` at which `oidc:expiring` is sent (capped at a third of the token's remaining lifetime). Default 60. */
  expiryLeadTime?: number;
  /** In-band refresh attempts allowed per socket per `refreshWindow`. Default 5. */
  refreshLimit?: number;
  /** Window of the refresh rate limit, in ms. Default 60000. */
  refreshWindow?: number;
  /** Longest wait, in ms, for `users.findOrCreate` and `session.registerSocket` before `ERR_USER_PROVISION_FAILED`. Default 10000. */
  provisionTimeout?: number;
  /**
   * How long, in ms past `jwksCacheMaxAge`, cached keys keep verifying while
   * the JWKS endpoint fails (stale-if-error; logged once per outage). `0`
   * turns it off. Default 3600000 (1 h).
   */
  jwksStaleIfError?: number;
  /**
   * The verified-token cache: a token string seen before is not verified
   * again until its `exp` (bounded by `maxTtl`), unless its key left the
   * JWKS. A token is kept from its `admitAfter`-th verification (2: the
   * second; 1: the first). `false` turns it off.
   * Default `{ maxEntries: 10000, maxBytes: 8 MiB, maxTtl: 300000, admitAfter: 2 }`.
   */
  tokenCache?: boolean | { maxEntries?: number; maxBytes?: number; maxTtl?: number; admitAfter?: 1 | 2 };
  /**
   * Reuse a `users.findOrCreate` result for the same `sub` for this many ms.
   * Default 0 (off): every authentication asks the users manager, so a
   * disabled account is refused at once. Concurrent authentications of the
   * same `sub` always share one call.
   */
  provisionCacheTtl?: number;
  /**
   * Seconds a revocation (`disconnectUser`, `disconnectSubject`,
   * `disconnectSessionId`, a back-channel logout, a disabled user) keeps
   * refusing the tokens issued before it: as long as such a token could still
   * be accepted. Default: the longest `maxTokenAge` plus `clockTolerance`
   * when every issuer sets `maxTokenAge` (exact), else 86400 (24 h: tokens
   * that live longer are refused by the revocation only for that long).
   */
  revocationTtl?: number;
  /**
   * A logger that takes objects, such as Fastify's `app.log` or a pino
   * logger: authentication refusals go to it as
   * `logger.warn({ ...fields }, "authentication refused")` (the method their
   * syslog level maps to), the package's other messages as
   * `({ component: "ioserver-oidc" }, text)`. Without it each is one text
   * line through IOServer's `appHandle.log`. Set in code only; never frozen;
   * a logger that throws is ignored (the text line is written instead). See
   * docs/observability.md, "Logs".
   */
  logger?: OidcLogger;
  /**
   * Refusal log sampling: per client address, transport, code and reason,
   * the first `limit` refusals of each `window` (ms) are logged, the rest
   * counted and reported in one line when the window ends. A number is the
   * `limit`; `false` or `0` logs every refusal. Default `{ limit: 10, window: 60000 }`.
   */
  logSampling?: false | number | { limit?: number; window?: number };
}

/**
 * What `logger` needs: pino's and Fastify's logger shape, an object with the
 * fields first and the message second.
 */
export interface OidcLogger {
  error(fields: object, message: string): unknown;
  warn(fields: object, message: string): unknown;
  info(fields: object, message: string): unknown;
  debug(fields: object, message: string): unknown;
}

/** One trusted issuer, validated and frozen. */
export interface OidcIssuerConfig {
  readonly issuer: string;
  readonly audience: readonly string[];
  /** `undefined`: found through discovery. */
  readonly jwksUri: string | undefined;
  readonly algorithms: readonly string[];
  readonly clockTolerance: number;
  readonly maxTokenAge: number | undefined;
  readonly requiredClaims: readonly string[];
  readonly strict: boolean;
  /** The preset's name, or `"custom"`. */
  readonly claimMapping: OidcClaimPreset | "custom";
  readonly mapClaims: OidcClaimMapper;
  /** What is accepted as an access token (defaults and `relaxTokenType`). */
  readonly tokenType: TokenTypeRules;
  /** Introspection (validated, defaults applied), or undefined when the issuer has none. */
  readonly introspection?: OidcIntrospectionConfig | undefined;
  /** Which tokens are introspected; undefined without `introspection`. */
  readonly introspect?: "opaque" | "always" | undefined;
  /** Whether this issuer's tokens may or must be DPoP-bound on HTTP. */
  readonly dpop: OidcDpopPolicy;
}

/** An issuer's introspection options, validated, defaults applied (durations in ms). */
export interface OidcIntrospectionConfig {
  /** `undefined`: from the discovery document. */
  readonly endpoint: string | undefined;
  readonly clientId: string;
  readonly clientAuthMethod: "client_secret_basic" | "client_secret_post" | "private_key_jwt";
  readonly clientSecret: string | undefined;
  readonly privateKey: object | undefined;
  readonly signingAlg: string | undefined;
  readonly timeout: number;
  readonly cacheTtl: number;
  readonly negativeCacheTtl: number;
  readonly maxEntries: number;
  readonly maxTokenLength: number;
  readonly maxConcurrent: number;
}

/** A validated, normalised, frozen configuration. The single-issuer fields describe the first issuer. */
export interface OidcConfig {
  readonly authServiceUrl: string | undefined;
  readonly appSlug: string | undefined;
  readonly jwksUri: string | undefined;
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockTolerance: number;
  /** Every trusted issuer (one unless `issuers` was given). */
  readonly issuers: readonly OidcIssuerConfig[];
  readonly maxTokenLength: number;
  readonly jwksTimeout: number;
  readonly jwksCooldown: number;
  readonly jwksCacheMaxAge: number;
  readonly realm: string | undefined;
  readonly socketExpiry: boolean;
  readonly expiryLeadTime: number;
  readonly refreshLimit: number;
  readonly refreshWindow: number;
  readonly provisionTimeout: number;
  readonly jwksStaleIfError: number;
  /** `false` when turned off. */
  readonly tokenCache: Readonly<{ maxEntries: number; maxBytes: number; maxTtl: number; admitAfter: 1 | 2 }> | false;
  readonly provisionCacheTtl: number;
  /** Seconds, see `OidcConfigInput.revocationTtl`. */
  readonly revocationTtl: number;
  /** See `OidcConfigInput.logger`. */
  readonly logger: OidcLogger | undefined;
  /** `false` when every refusal is logged; see `OidcConfigInput.logSampling`. */
  readonly logSampling: Readonly<{ limit: number; window: number }> | false;
  /** The app-wide DPoP settings as given (validated, frozen), or `undefined` for the defaults. */
  readonly dpop: Readonly<OidcDpopConfig> | undefined;
}

/** What `appHandle.users.findOrCreate` returns. */
export interface OidcProvisionedUser {
  id: string | number;
  role?: string | null;
  isDisabled?: boolean | null;
}

/** The optional users manager (`appHandle.users`). */
export interface OidcUsersManager {
  /**
   * The local record of the subject `sub` of issuer `profile.iss`. A user is
   * the pair (issuer, `sub`): with several trusted issuers, two issuers' equal
   * `sub` values are different people, so key your records on both.
   */
  findOrCreate(
    sub: string,
    profile: { email: string | null; name: string | null; iss: string },
  ): OidcProvisionedUser | Promise<OidcProvisionedUser>;
}

/** The optional session tracker (`appHandle.session`). */
export interface OidcSessionTracker {
  registerSocket(userId: string, socketId: string, sub: string): unknown;
  unregisterSocket?(socketId: string): unknown;
}

/**
 * The parts of IOServer's `appHandle` this package reads. Every manager is
 * optional: IOServer sets `appHandle[name]` only when one is registered.
 */
export interface OidcAppHandle {
  log?: (level: number, text: string) => void;
  /* eslint-disable @typescript-eslint/no-redundant-type-constituents -- `X | unknown` is `unknown` on purpose (IOServer's appHandle holds anything); X documents what the package reads */
  oidcConfig?: { getConfig?: () => OidcConfigInput | OidcConfig; getResolvedConfig?: () => OidcConfig } | unknown;
  users?: Partial<OidcUsersManager> | unknown;
  session?: Partial<OidcSessionTracker> | unknown;
  /* eslint-enable @typescript-eslint/no-redundant-type-constituents */
  [manager: string]: unknown;
}

/**
 * What the middlewares set on a Fastify request or a Socket.IO socket: the
 * identity and authorization fields, and the whole context as `auth`.
 */
export interface OidcDecorations {
  /** The token's `sub`. */
  sub: string;
  /** Local user id (users manager), else `sub` (one trusted issuer) or `<iss>#<sub>` (several). */
  userId: string;
  /** `roles[0]`, else `"user"`. */
  userRole: string;
  roles: string[];
  permissions: string[];
  features: OidcFeatures;
  /** Granted OAuth scopes. */
  scopes: string[];
  /** The whole authenticated context (on sockets also in `socket.data.auth`). */
  auth: OidcUserContext;
}
