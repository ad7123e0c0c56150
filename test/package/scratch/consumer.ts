// Type-checked by test/package/tarball.test.ts in a scratch project that
// installs the packed tarball, once per flavour (esm/, cjs/, bundler/: same
// file, different tsconfig and package "type"). It must also compile under
// test/tsconfig.json, which includes it.
import type { FastifyRequest } from "fastify";
import type { ControllerOptions, ManagerOptions, ServiceOptions } from "ioserver";
import type { Socket } from "socket.io";
import {
  OidcAuthError,
  OidcConfigManager,
  OidcHttpMiddleware,
  OidcSocketMiddleware,
  isOidcAuthError,
  verifyOidcToken,
  type OidcAuthErrorCode,
  type OidcUserContext,
} from "ioserver-oidc";
import { createTestIssuer, type TestIssuer } from "ioserver-oidc/testing";
import { OIDC_EVENTS, connectWithOidc, type OidcClientSocket } from "ioserver-oidc/client";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_: T): void {}

// The augmentation reaches the consumer's own fastify and socket.io.
declare const request: FastifyRequest;
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- declared only to read the augmented types off it
declare const socket: Socket;
expectType<Equal<typeof request.userId, string>>(true);
expectType<Equal<typeof request.roles, string[]>>(true);
expectType<Equal<typeof request.auth, OidcUserContext>>(true);
expectType<Equal<typeof socket.userId, string>>(true);
expectType<Equal<typeof socket.auth, OidcUserContext>>(true);
// @ts-expect-error FastifyRequest is a real type here, not `any`
void request.notAnOidcProperty;

// The main entry.
expectType<Equal<ReturnType<typeof verifyOidcToken>, Promise<OidcUserContext>>>(true);
expectType<Equal<OidcUserContext["email"], string | null>>(true);
const code: OidcAuthErrorCode = new OidcAuthError("ERR_FORBIDDEN").code;
const known: boolean = isOidcAuthError(new Error(code));
const manager: ManagerOptions["manager"] = OidcConfigManager.configure({ authServiceUrl: "https://idp.test", appSlug: "app" });
const http: NonNullable<ControllerOptions["middlewares"]> = [OidcHttpMiddleware];
const sockets: NonNullable<ServiceOptions["middlewares"]> = [OidcSocketMiddleware];

// ./testing
async function kit(): Promise<string> {
  const issuer: TestIssuer = await createTestIssuer({ appSlug: "app" });
  const token: string = await issuer.mint({ roles: ["admin"] });
  const context: OidcUserContext = await verifyOidcToken(token, issuer.config);
  await issuer.close();
  return context.userId;
}

// ./client
function client(): OidcClientSocket {
  return connectWithOidc("http://127.0.0.1:1/chat", { getToken: async () => "token" });
}
const expiring: "oidc:expiring" = OIDC_EVENTS.expiring;

export const used = [known, manager, http, sockets, kit, client, expiring];
