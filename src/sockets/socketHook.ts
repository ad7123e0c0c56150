/** The Socket.IO front-end of the pipeline: a namespace middleware. */
import type { Socket } from "socket.io";
import type { OidcAuthError } from "../errors.js";
import { runStep, type Step } from "../pipeline/step.js";
import type { OidcAppHandle } from "../types.js";
import { releaseSocket } from "./registry.js";

/** Error given to Socket.IO's `next()`: the client's `connect_error` sees `message` (the code) and `data`. */
export interface OidcConnectError extends Error {
  data: { code: OidcAuthError["code"]; message: string };
}

const where = (socket: Socket): string => `socket ${socket.nsp?.name ?? "?"} ${socket.id}`;

/** Socket.IO namespace middleware. */
export function socketHook(appHandle: OidcAppHandle, step: Step<Socket>) {
  return function oidcNamespaceMiddleware(socket: Socket, next: (err?: Error) => void): void {
    runStep(step, socket, appHandle, where, (failure) => {
      if (failure === undefined) return next();
      releaseSocket(socket); // a later guard refused: the socket never opens
      const error = new Error(failure.code) as OidcConnectError;
      error.data = { code: failure.code, message: failure.message };
      next(error);
    });
  };
}
