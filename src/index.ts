export type * from "./ioserver/augment.js"; // type-only: keeps the fastify/socket.io augmentation in the .d.ts, emits no runtime import

export { verifyOidcToken } from "./pipeline/verifyOidcToken.js";
export { OidcConfigManager } from "./ioserver/OidcConfigManager.js";
export { OidcHttpMiddleware } from "./ioserver/OidcHttpMiddleware.js";
export { OidcSocketMiddleware } from "./ioserver/OidcSocketMiddleware.js";
export { OidcHttpAdminMiddleware } from "./ioserver/OidcHttpAdminMiddleware.js";
export { OidcSocketAdminMiddleware } from "./ioserver/OidcSocketAdminMiddleware.js";
export { OidcSessionManager } from "./ioserver/OidcSessionManager.js";
export { MemorySessionStore } from "./stores/sessionStore.js";
export { redisSessionStore } from "./redis/redisSessionStore.js";
export type { RedisSessionStore, RedisSessionStoreOptions, RedisSessionStoreClient, RedisSessionStoreMulti } from "./redis/redisSessionStore.js";
export { redisRevocationStore } from "./redis/redisRevocationStore.js";
export { redisDpopReplayStore, DPOP_REPLAY_PREFIX } from "./redis/redisDpopReplayStore.js";
export type { RedisDpopReplayStoreOptions } from "./redis/redisDpopReplayStore.js";
export type { RedisRevocationStore, RedisRevocationStoreOptions, RedisRevocationClient, RedisRevocationMulti, RedisRevocationSubscriber } from "./redis/redisRevocationStore.js";
export { MemoryRevocationStore } from "./stores/revocationStore.js";
export type { OidcRevocationStore } from "./stores/revocationStore.js";
export type { OidcRevocation } from "./stores/denyList.js";
export { attachRedisAdapter } from "./redis/attachRedisAdapter.js";
export type { AttachRedisAdapterOptions, RedisAdapterOptions, RedisAdapterFactory } from "./redis/attachRedisAdapter.js";
export { oidcRoom } from "./sockets/rooms.js";
export { OIDC_EVENTS } from "./sockets/protocol.js";
export { OIDC_CHANNELS } from "./diagnostics.js";
export type {
  OidcAuthTransport,
  OidcAuthMessage,
  OidcAuthTraceContext,
  OidcVerificationPath,
  OidcKeySetState,
  OidcJwksFailure,
  OidcJwksMessage,
  OidcDiscoveryMessage,
  OidcSocketRevokedKind,
  OidcSocketMessage,
  OidcRevocationMessage,
  OidcLogoutOutcome,
  OidcLogoutMessage,
  OidcBackendMessage,
} from "./diagnostics.js";
export { OidcAuthError, isOidcAuthError } from "./errors.js";
export { OidcConfigError } from "./config/errors.js";
export type { OidcAuthErrorCode, OidcAuthErrorBody, OidcAuthErrorOptions } from "./errors.js";
export type { OidcConnectError } from "./sockets/socketHook.js";
export type { OidcSessionManagerOptions, OidcDisconnectSubjectOptions } from "./ioserver/OidcSessionManager.js";
export type { OidcSessionRecord, OidcSessionStore } from "./stores/sessionStore.js";
export type { OidcSocketMiddlewareOptions } from "./ioserver/OidcSocketMiddleware.js";
export type { OidcHealth, OidcIssuerHealth, OidcIntrospectionHealth } from "./ioserver/OidcConfigManager.js";
export type { TokenCacheStats as OidcTokenCacheStats } from "./verify/tokenCache.js";
export { OidcBackchannelLogoutController, backchannelLogoutHandler } from "./ioserver/OidcBackchannelLogout.js";
export type { OidcBackchannelLogoutOptions, OidcBackchannelLogoutHandler, OidcLogoutContext } from "./logout/options.js";
export { verifyLogoutToken, BACKCHANNEL_LOGOUT_EVENT } from "./logout/logoutToken.js";
export type { OidcLogoutToken, VerifyLogoutTokenOptions } from "./logout/logoutToken.js";
export { MemoryReplayStore, redisReplayStore } from "./stores/replayStore.js";
export type { OidcReplayStore, OidcReplayRedisClient, MemoryReplayStoreOptions, RedisReplayStoreOptions } from "./stores/replayStore.js";
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
  OidcIntrospectionInput,
  OidcIntrospectionOptions,
  OidcIntrospectionConfig,
  OidcVerificationOptions,
  OidcRelaxTokenType,
  OidcDpopConfig,
  OidcDpopPolicy,
  OidcDpopNonceOptions,
  OidcLogger,
  OidcClaimMapper,
  OidcClaimPreset,
  OidcMappedClaims,
} from "./types.js";
export { requireRoles, requirePermissions, requireScopes, requireClaims, guardEvent, guarded } from "./ioserver/guards.js";
export type { OidcGuard, OidcGuardFactory, OidcGuardMiddleware, OidcGuardHook } from "./ioserver/guards.js";
export type { OidcClaimsPredicate } from "./guards/checks.js";
export type { OidcGuardedEvent, OidcGuardedEventRefusal } from "./guards/guardEvent.js";
