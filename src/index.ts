import "./augment.js";

export { verifyOidcToken } from "./verifyOidcToken.js";
export { OidcConfigManager } from "./OidcConfigManager.js";
export { OidcHttpMiddleware } from "./OidcHttpMiddleware.js";
export { OidcSocketMiddleware } from "./OidcSocketMiddleware.js";
export { OidcHttpAdminMiddleware } from "./OidcHttpAdminMiddleware.js";
export { OidcSocketAdminMiddleware } from "./OidcSocketAdminMiddleware.js";
export { OidcSessionManager, MemorySessionStore } from "./OidcSessionManager.js";
export { redisSessionStore } from "./redisSessionStore.js";
export type { RedisSessionStore, RedisSessionStoreOptions, RedisSessionStoreClient, RedisSessionStoreMulti } from "./redisSessionStore.js";
export { redisRevocationStore } from "./redisRevocationStore.js";
export type { RedisRevocationStore, RedisRevocationStoreOptions, RedisRevocationClient, RedisRevocationMulti, RedisRevocationSubscriber } from "./redisRevocationStore.js";
export { MemoryRevocationStore } from "./lib/revocationStore.js";
export type { OidcRevocationStore } from "./lib/revocationStore.js";
export type { OidcRevocation } from "./lib/denyList.js";
export { attachRedisAdapter } from "./attachRedisAdapter.js";
export type { AttachRedisAdapterOptions, RedisAdapterOptions, RedisAdapterFactory } from "./attachRedisAdapter.js";
export { oidcRoom } from "./lib/rooms.js";
export { OIDC_EVENTS } from "./lib/protocol.js";
export { OidcAuthError, isOidcAuthError } from "./OidcAuthError.js";
export { OidcConfigError } from "./lib/config.js";
export type { OidcAuthErrorCode, OidcAuthErrorBody, OidcAuthErrorOptions } from "./OidcAuthError.js";
export type { OidcConnectError } from "./lib/adapters.js";
export type { OidcSessionRecord, OidcSessionStore, OidcSessionManagerOptions, OidcDisconnectSubjectOptions } from "./OidcSessionManager.js";
export type { OidcSocketMiddlewareOptions } from "./OidcSocketMiddleware.js";
export type { OidcHealth, OidcIssuerHealth } from "./OidcConfigManager.js";
export type { TokenCacheStats as OidcTokenCacheStats } from "./lib/tokenCache.js";
export { OidcBackchannelLogoutController, backchannelLogoutHandler } from "./OidcBackchannelLogout.js";
export type { OidcBackchannelLogoutOptions, OidcBackchannelLogoutHandler, OidcLogoutContext } from "./OidcBackchannelLogout.js";
export { verifyLogoutToken, BACKCHANNEL_LOGOUT_EVENT } from "./lib/logoutToken.js";
export type { OidcLogoutToken, VerifyLogoutTokenOptions } from "./lib/logoutToken.js";
export { MemoryReplayStore, redisReplayStore } from "./lib/replayStore.js";
export type { OidcReplayStore, OidcReplayRedisClient, MemoryReplayStoreOptions, RedisReplayStoreOptions } from "./lib/replayStore.js";
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
  OidcRelaxTokenType,
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
