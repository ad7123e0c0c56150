/**
 * Type augmentation shipped with the package: on routes and namespaces
 * guarded by the middlewares, these properties are set before any handler
 * runs. (They are absent on unguarded routes and namespaces.)
 */
import type { OidcFeatures, OidcUserContext } from "./types.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The token's `sub`. Set by `OidcHttpMiddleware`. */
    sub: string;
    /** Local user id (users manager), else `sub`. */
    userId: string;
    /** `roles[0]`, else `"user"`. */
    userRole: string;
    roles: string[];
    permissions: string[];
    features: OidcFeatures;
    /** The whole authenticated context. */
    auth: OidcUserContext;
  }
}

declare module "socket.io" {
  interface Socket {
    /** The token's `sub`. Set by `OidcSocketMiddleware`. */
    sub: string;
    /** Local user id (users manager), else `sub`. */
    userId: string;
    /** `roles[0]`, else `"user"`. */
    userRole: string;
    roles: string[];
    permissions: string[];
    features: OidcFeatures;
    /** The whole authenticated context (also in `socket.data.auth`). */
    auth: OidcUserContext;
  }
}

export {};
