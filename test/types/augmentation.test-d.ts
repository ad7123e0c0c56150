/**
 * Type-level test, checked by `tsc --noEmit -p test/tsconfig.json` (npm test).
 * It imports the BUILT package by its own name, so it checks what a user
 * gets: the .d.ts, the exports map and the module augmentation.
 */
import type { FastifyRequest } from "fastify";
import type { Socket } from "socket.io";
import {
  OidcAuthError,
  OidcConfigManager,
  OidcHttpAdminMiddleware,
  OidcHttpMiddleware,
  OidcSocketAdminMiddleware,
  OidcSocketMiddleware,
  verifyOidcToken,
  type OidcAuthErrorCode,
  type OidcConfig,
  type OidcFeatures,
  type OidcUserContext,
} from "ioserver-oidc";
import { createTestIssuer } from "ioserver-oidc/testing";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_: T): void {}

// eslint-disable-next-line @typescript-eslint/no-unused-vars -- a type-level test: the declaration exists for `typeof` below
declare const request: FastifyRequest;
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- a type-level test: the declaration exists for `typeof` below
declare const socket: Socket;

// The user properties (sub, userId, userRole, roles, permissions, features, auth) on the request and the socket, without casts.
expectType<Equal<typeof request.userId, string>>(true);
expectType<Equal<typeof request.sub, string>>(true);
expectType<Equal<typeof request.userRole, string>>(true);
expectType<Equal<typeof request.roles, string[]>>(true);
expectType<Equal<typeof request.permissions, string[]>>(true);
expectType<Equal<typeof request.features, OidcFeatures>>(true);
expectType<Equal<typeof request.auth, OidcUserContext>>(true);
expectType<Equal<typeof socket.userId, string>>(true);
expectType<Equal<typeof socket.roles, string[]>>(true);
expectType<Equal<typeof socket.permissions, string[]>>(true);
expectType<Equal<typeof socket.features, Record<string, unknown>>>(true);
expectType<Equal<typeof socket.auth, OidcUserContext>>(true);

// The API's shapes.
expectType<Equal<ReturnType<typeof verifyOidcToken>, Promise<OidcUserContext>>>(true);
expectType<Equal<OidcUserContext["email"], string | null>>(true);
const code: OidcAuthErrorCode = new OidcAuthError("ERR_FORBIDDEN").code;
switch (code) {
  case "ERR_AUTH_TOKEN_REQUIRED":
  case "ERR_AUTH_TOKEN_INVALID":
  case "ERR_USER_DISABLED":
  case "ERR_USER_PROVISION_FAILED":
  case "ERR_FORBIDDEN":
  case "ERR_AUTH_MISCONFIGURED":
  case "ERR_AUTH_UNAVAILABLE":
  case "ERR_AUTH_TOKEN_EXPIRED":
  case "ERR_AUTH_SUBJECT_MISMATCH":
  case "ERR_AUTH_RATE_LIMITED":
  case "ERR_AUTH_REVOKED":
  case "ERR_AUTH_DPOP_INVALID":
  case "ERR_AUTH_DPOP_NONCE":
    break;
  default: {
    const exhaustive: never = code;
    void exhaustive;
  }
}
// @ts-expect-error not a code of this package
new OidcAuthError("ERR_NOPE");

declare const config: OidcConfig;
// @ts-expect-error the resolved config is read-only
config.issuer = "x";

// The classes fit IOServer's registration options.
import type { ControllerOptions, ManagerOptions, ServiceOptions } from "ioserver";
const m: ManagerOptions["manager"] = OidcConfigManager;
const c: NonNullable<ControllerOptions["middlewares"]> = [OidcHttpMiddleware, OidcHttpAdminMiddleware];
const s: NonNullable<ServiceOptions["middlewares"]> = [OidcSocketMiddleware, OidcSocketAdminMiddleware];
const configured: ManagerOptions["manager"] = OidcConfigManager.configure({ authServiceUrl: "https://idp.test", appSlug: "app" });
void [m, c, s, configured];

// The test kit.
async function kit(): Promise<void> {
  const issuer = await createTestIssuer({ appSlug: "app" });
  const token: string = await issuer.mint({ roles: ["admin"] }, { alg: "ES256" });
  const context: OidcUserContext = await verifyOidcToken(token, issuer.config);
  void context;
  await issuer.close();
}
void kit;
