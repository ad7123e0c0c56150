/**
 * Public types of ioserver-oidc.
 */

/** Feature flags and limits carried by the token's `features` claim. */
export type OidcFeatures = Record<string, unknown>;

/** The authenticated caller, as seen by handlers on both transports. */
export interface OidcUserContext {
  /** The token's `sub` claim. */
  sub: string;
  /** The users manager's id for this subject (as a string), else `sub`. */
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

/**
 * What you may pass to configure verification. Only `authServiceUrl` and
 * `appSlug` are required; everything else has a default (see README).
 */
export interface OidcConfigInput {
  /** Identity provider base URL (http or https). */
  authServiceUrl: string;
  /** OAuth client id of this application; the default audience. */
  appSlug: string;
  /** JWKS endpoint. Default `<authServiceUrl>/api/auth/jwks`. */
  jwksUri?: string;
  /** Expected `iss`. Default `authServiceUrl` without trailing slash. */
  issuer?: string;
  /** Expected `aud` (the token's `aud` must contain one of these). Default `appSlug`. */
  audience?: string | readonly string[];
  /** Allowed signature algorithms (asymmetric only). Default RS/PS/ES 256-512 and EdDSA/Ed25519. */
  algorithms?: readonly string[];
  /** Seconds of clock skew tolerated on `exp` / `nbf`. Default 5. */
  clockTolerance?: number;
  /** Tokens longer than this many characters are refused before parsing. Default 16384. */
  maxTokenLength?: number;
  /** JWKS fetch timeout in ms. Default 5000. */
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
}

/** A validated, normalised, frozen configuration. */
export interface OidcConfig {
  readonly authServiceUrl: string;
  readonly appSlug: string;
  readonly jwksUri: string;
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockTolerance: number;
  readonly maxTokenLength: number;
  readonly jwksTimeout: number;
  readonly jwksCooldown: number;
  readonly jwksCacheMaxAge: number;
  readonly realm: string | undefined;
  readonly socketExpiry: boolean;
  readonly expiryLeadTime: number;
  readonly refreshLimit: number;
  readonly refreshWindow: number;
}

/** What `appHandle.users.findOrCreate` returns. */
export interface OidcProvisionedUser {
  id: string | number;
  role?: string | null;
  isDisabled?: boolean | null;
}

/** The optional users manager (`appHandle.users`). */
export interface OidcUsersManager {
  findOrCreate(
    sub: string,
    profile: { email: string | null; name: string | null },
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
  oidcConfig?: { getConfig?: () => OidcConfigInput | OidcConfig } | unknown;
  users?: Partial<OidcUsersManager> | unknown;
  session?: Partial<OidcSessionTracker> | unknown;
  [manager: string]: unknown;
}

/**
 * What the middlewares set on a Fastify request or a Socket.IO socket: the
 * seed's six properties and the whole context as `auth`.
 */
export interface OidcDecorations {
  /** The token's `sub`. */
  sub: string;
  /** Local user id (users manager), else `sub`. */
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
