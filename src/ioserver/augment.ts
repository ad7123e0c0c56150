/**
 * Type augmentation shipped with the package. On routes and namespaces
 * guarded by the middlewares these properties are set before any handler
 * runs; on unguarded ones they are absent.
 */
import type { OidcDecorations } from "../types.js";

declare module "fastify" {
  interface FastifyRequest extends OidcDecorations {
    /** A DPoP request: the RFC 7638 thumbprint of the key that signed the proof (the token's `cnf.jkt`); absent for Bearer. See docs/dpop.md. */
    dpopJkt?: string;
  }
}

declare module "socket.io" {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- module augmentation: the empty interface merges OidcDecorations into the library's own interface
  interface Socket extends OidcDecorations {}
}

export {};
