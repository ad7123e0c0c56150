import "./augment.js";

export { verifyOidcToken } from "./verifyOidcToken.js";
export { OidcConfigManager } from "./OidcConfigManager.js";
export { OidcHttpMiddleware } from "./OidcHttpMiddleware.js";
export { OidcSocketMiddleware } from "./OidcSocketMiddleware.js";
export { OidcHttpAdminMiddleware } from "./OidcHttpAdminMiddleware.js";
export { OidcSocketAdminMiddleware } from "./OidcSocketAdminMiddleware.js";
export { OidcSessionManager, MemorySessionStore } from "./OidcSessionManager.js";
export { OIDC_EVENTS } from "./lib/protocol.js";
export { OidcAuthError, isOidcAuthError } from "./OidcAuthError.js";
export { OidcConfigError } from "./lib/config.js";
export type { OidcAuthErrorCode, OidcAuthErrorBody, OidcAuthErrorOptions } from "./OidcAuthError.js";
export type { OidcConnectError } from "./lib/adapters.js";
export type { OidcSessionRecord, OidcSessionStore, OidcSessionManagerOptions } from "./OidcSessionManager.js";
export type { OidcSocketMiddlewareOptions } from "./OidcSocketMiddleware.js";
export type {
  OidcConfig,
  OidcConfigInput,
  OidcUserContext,
  OidcFeatures,
  OidcProvisionedUser,
  OidcUsersManager,
  OidcSessionTracker,
  OidcAppHandle,
  OidcDecorations,
  OidcIssuerInput,
  OidcIssuerConfig,
  OidcVerificationOptions,
  OidcClaimMapper,
  OidcClaimPreset,
  OidcMappedClaims,
} from "./types.js";
export { requireRoles, requirePermissions, requireScopes, requireClaims, guardEvent, guarded } from "./guards.js";
export type {
  OidcGuard,
  OidcGuardFactory,
  OidcGuardMiddleware,
  OidcGuardHook,
  OidcClaimsPredicate,
  OidcGuardedEvent,
  OidcGuardedEventRefusal,
} from "./guards.js";
