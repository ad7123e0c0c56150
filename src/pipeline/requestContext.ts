/**
 * The authenticated context of an HTTP request: one slot on the request,
 * read by the decorations (`request.userId`, `request.auth`, …: accessors on
 * Fastify's request prototype, see `decorations.ts`).
 */
import type { OidcUserContext } from "../types.js";
import { prototypeDecorations } from "./decorations.js";

const CONTEXT = Symbol("ioserver-oidc.context");

interface WithContext {
  [CONTEXT]?: OidcUserContext;
}

/** The context the package set on this request, if any. */
export function requestContextOf(request: object): OidcUserContext | undefined {
  return (request as WithContext)[CONTEXT];
}

const decorate = prototypeDecorations(requestContextOf);

/** Make `context` the request's authenticated context, readable as `request.auth`, `request.userId`, … */
export function setRequestContext(request: object, context: OidcUserContext): void {
  (request as WithContext)[CONTEXT] = context;
  decorate(request, context);
}
