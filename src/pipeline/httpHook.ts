/** The HTTP front-end of the pipeline: a Fastify `preValidation` hook. */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { tryResolveConfig } from "../config/resolve.js";
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import type { RefusalSource } from "../util/refusalLog.js";
import { issOf } from "../claims/identity.js";
import { bearerToken, dpopToken } from "./extractToken.js";
import { DPOP_NONCE, withDpopChallenge } from "./dpopBinding.js";
import { runStep, type Settle, type Step } from "./step.js";

/**
 * A refused request, for the log: Fastify's request id and client address,
 * the route's pattern (never the requested URL), and what names the issuer:
 * the verified context a guard refused, else the presented token.
 */
function sourceOf(request: FastifyRequest, guard: string | undefined): RefusalSource {
  const route = `${request.method} ${request.routeOptions?.url ?? "(unknown route)"}`;
  const auth = (request as { auth?: OidcUserContext | null }).auth;
  const context = auth !== null && typeof auth === "object" && typeof auth.claims === "object" ? auth : undefined;
  return {
    where: `HTTP ${route}`,
    transport: "http",
    requestId: request.id,
    address: request.ip,
    route,
    guard,
    issuer: context === undefined ? undefined : issOf(context),
    token: context === undefined ? (bearerToken(request.headers?.authorization) ?? dpopToken(request.headers?.authorization)) : undefined,
  };
}

/**
 * Fastify `preValidation` hook. IOServer's error handler drops an error's
 * `code` and headers, so a refusal is sent here, not thrown. A step that
 * decides at once lets the request go on within this call. `guard` names
 * the guard class running the step, for the log.
 */
export function httpHook(appHandle: OidcAppHandle, step: Step<FastifyRequest>, guard?: string) {
  const where = (request: FastifyRequest): RefusalSource => {
    try {
      return sourceOf(request, guard);
    } catch {
      return { where: "HTTP (unreadable request)", transport: "http", guard }; // a throwing getter must not stop the refusal
    }
  };
  /** Let the request go on, or send the refusal. */
  const answer: Settle<FastifyRequest, FastifyReply, HookHandlerDoneFunction> = (failure, request, reply, done) => {
    if (failure === undefined) {
      // A DPoP proof accepted with a nonce about to expire: the client learns the next one (RFC 9449 section 8).
      const nonce = (request as { [DPOP_NONCE]?: string })[DPOP_NONCE];
      if (nonce !== undefined) reply.header("dpop-nonce", nonce);
      return done();
    }
    const config = tryResolveConfig(appHandle);
    let error = failure.withRealm(config?.realm);
    // RFC 9449 section 7.1: where DPoP is in use, a 401 names the DPoP scheme too (or alone, where Bearer is not accepted).
    if (error.statusCode === 401 && config !== undefined) {
      const scheme = dpopToken(request.headers?.authorization) === undefined ? "bearer" : "dpop";
      error = error.withChallengeFrom((bearer) => withDpopChallenge(bearer, error, scheme, appHandle, config));
    }
    reply.code(error.statusCode).headers(error.headers).send(error.toJSON());
  };
  return function oidcPreValidation(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    runStep(step, request, appHandle, where, answer, reply, done);
  };
}
