/**
 * Type augmentation shipped with the package. On routes and namespaces
 * guarded by the middlewares these properties are set before any handler
 * runs; on unguarded ones they are absent.
 */
import type { OidcDecorations } from "../types.js";

declare module "fastify" {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- module augmentation: the empty interface merges OidcDecorations into the library's own interface
  interface FastifyRequest extends OidcDecorations {}
}

declare module "socket.io" {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- module augmentation: the empty interface merges OidcDecorations into the library's own interface
  interface Socket extends OidcDecorations {}
}

export {};
