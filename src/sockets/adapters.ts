/**
 * The two transport adapters. Each turns one asynchronous step (which throws
 * `OidcAuthError` to refuse) into the callback shape IOServer wires in:
 * a Fastify `preValidation` hook, or a Socket.IO namespace middleware.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import type { Socket } from "socket.io";
import { reportFailure } from "../pipeline/authenticate.js";
import type { OidcAuthError } from "../errors.js";
import type { OidcAppHandle } from "../types.js";
import { resolveConfig } from "../config/resolve.js";
import { releaseSocket } from "./registry.js";

export type Step<T> = (target: T, appHandle: OidcAppHandle) => Promise<void>;

/** Run a step; `settle` receives `undefined` on success or the logged failure. */
function run<T>(step: Step<T>, target: T, appHandle: OidcAppHandle, where: () => string, settle: (failure?: OidcAuthError) => void): void {
  let failure: OidcAuthError | undefined;
  step(target, appHandle)
    .catch((error: unknown) => {
      failure = reportFailure(appHandle, where(), error);
    })
    .then(() => settle(failure))
    .catch((error: unknown) => reportFailure(appHandle, `${where()} (after the auth decision)`, error));
}

function realmOf(appHandle: OidcAppHandle): string | undefined {
  try {
    return resolveConfig(appHandle).realm;
  } catch {
    return undefined;
  }
}

/**
 * Fastify `preValidation` hook. IOServer's error handler drops an error's
 * `code` and headers, so a refusal is sent here, not thrown.
 */
export function httpHook(appHandle: OidcAppHandle, step: Step<FastifyRequest>) {
  return function oidcPreValidation(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const where = () => `HTTP ${request.method} ${request.routeOptions?.url ?? "(unknown route)"}`;
    run(step, request, appHandle, where, (failure) => {
      if (failure === undefined) return done();
      const error = failure.withRealm(realmOf(appHandle));
      reply.code(error.statusCode).headers(error.headers).send(error.toJSON());
    });
  };
}

/** Error given to Socket.IO's `next()`: the client's `connect_error` sees `message` (the code) and `data`. */
export interface OidcConnectError extends Error {
  data: { code: OidcAuthError["code"]; message: string };
}

/** Socket.IO namespace middleware. */
export function socketHook(appHandle: OidcAppHandle, step: Step<Socket>) {
  return function oidcNamespaceMiddleware(socket: Socket, next: (err?: Error) => void): void {
    const where = () => `socket ${socket.nsp?.name ?? "?"} ${socket.id}`;
    run(step, socket, appHandle, where, (failure) => {
      if (failure === undefined) return next();
      releaseSocket(socket); // a later guard refused: the socket never opens
      const error = new Error(failure.code) as OidcConnectError;
      error.data = { code: failure.code, message: failure.message };
      next(error);
    });
  };
}
