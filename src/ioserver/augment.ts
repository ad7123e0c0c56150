/**
 * Type augmentation shipped with the package. On routes and namespaces
 * guarded by the middlewares these properties are set before any handler
 * runs; on unguarded ones they are absent.
 */
import type { OidcDecorations } from "../types.js";

declare module "fastify" {
  interface FastifyRequest extends OidcDecorations {}
}

declare module "socket.io" {
  interface Socket extends OidcDecorations {}
}

export {};
