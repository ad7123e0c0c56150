/** The Socket.IO front-end of the pipeline: a namespace middleware. */
import type { Socket } from "socket.io";
import type { OidcAuthError } from "../errors.js";
import { runStep, type Settle, type Step } from "../pipeline/step.js";
import type { OidcAppHandle } from "../types.js";
import { releaseSocket } from "./registry.js";
import type { RefusalSource } from "../util/refusalLog.js";
import { socketSource } from "./refusalSource.js";

/** Error given to Socket.IO's `next()`: the client's `connect_error` sees `message` (the code) and `data`. */
export interface OidcConnectError extends Error {
  /** `dpopNonce`: the server nonce a DPoP proof must carry (RFC 9449 section 8), with `ERR_AUTH_DPOP_NONCE`. */
  data: { code: OidcAuthError["code"]; message: string; dpopNonce?: string };
}

/** Socket.IO namespace middleware. `guard` names the guard class running the step, for the log. */
export function socketHook(appHandle: OidcAppHandle, step: Step<Socket>, guard?: string) {
  const where = (socket: Socket): RefusalSource => socketSource(socket, "handshake", { guard });
  return function oidcNamespaceMiddleware(socket: Socket, next: (err?: Error) => void): void {
    runStep(step, socket, appHandle, where, answer, next, undefined);
  };
}

/** Let the socket through, or refuse it with the failure's code. */
const answer: Settle<Socket, (err?: Error) => void, undefined> = (failure, socket, next) => {
  if (failure === undefined) return next();
  releaseSocket(socket); // a later guard refused: the socket never opens
  const error = new Error(failure.code) as OidcConnectError;
  const dpopNonce = failure.headers["dpop-nonce"];
  error.data = dpopNonce === undefined ? { code: failure.code, message: failure.message } : { code: failure.code, message: failure.message, dpopNonce };
  next(error);
};
