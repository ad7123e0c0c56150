/** The HTTP front-end of the pipeline: a Fastify `preValidation` hook. */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { tryResolveConfig } from "../config/resolve.js";
import type { OidcAppHandle } from "../types.js";
import { runStep, type Step } from "./step.js";

const where = (request: FastifyRequest): string => `HTTP ${request.method} ${request.routeOptions?.url ?? "(unknown route)"}`;

/**
 * Fastify `preValidation` hook. IOServer's error handler drops an error's
 * `code` and headers, so a refusal is sent here, not thrown. A step that
 * decides at once lets the request go on within this call.
 */
export function httpHook(appHandle: OidcAppHandle, step: Step<FastifyRequest>) {
  return function oidcPreValidation(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    runStep(step, request, appHandle, where, (failure) => {
      if (failure === undefined) return done();
      const error = failure.withRealm(tryResolveConfig(appHandle)?.realm);
      reply.code(error.statusCode).headers(error.headers).send(error.toJSON());
    });
  };
}
