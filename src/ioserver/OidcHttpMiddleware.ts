import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import type { FastifyRequest } from "fastify";
import type { OidcAppHandle } from "../types.js";
import { authenticateNow, type AuthenticateResult } from "../pipeline/authenticate.js";
import { httpHook } from "../pipeline/httpHook.js";
import { applyContext } from "../pipeline/applyContext.js";
import { bearerToken, dpopToken } from "../pipeline/extractToken.js";
import { checkDpopBinding, type AuthScheme } from "../pipeline/dpopBinding.js";

/**
 * Guards every route of an IOServer controller: an `Authorization: Bearer`
 * token, or an `Authorization: DPoP` token with its `DPoP` proof header
 * (RFC 9449; see docs/dpop.md), verified and provisioned, then
 * `request.sub`, `request.userId`, `request.userRole`, `request.roles`,
 * `request.permissions`, `request.features` and `request.auth` are set
 * (and `request.dpopJkt` for DPoP). Refusals are JSON
 * `{ statusCode, error, code, message }` with an RFC 6750 (or RFC 9449) challenge.
 */
export class OidcHttpMiddleware extends BaseMiddleware {
  handle(appHandle: AppHandle) {
    return httpHook(appHandle, (request, app) => {
      const header = request.headers.authorization;
      let scheme: AuthScheme = "bearer";
      let token = bearerToken(header);
      if (token === undefined && (token = dpopToken(header)) !== undefined) scheme = "dpop";
      // A cached token is decided at once; anything else resolves later. The DPoP step runs either way: a proof is per request.
      const result = authenticateNow(token, app, "http");
      if (result instanceof Promise) return result.then((each) => accept(request, app, scheme, token as string, each));
      return accept(request, app, scheme, token as string, result);
    });
  }
}

/** After verification: the DPoP step (nothing to wait for unless a proof is checked), then the context on the request. */
function accept(request: FastifyRequest, app: OidcAppHandle, scheme: AuthScheme, token: string, { context, config }: AuthenticateResult): void | Promise<void> {
  const bound = checkDpopBinding(request, app, { scheme, token }, context, config);
  if (bound === undefined) return applyContext(request, context);
  return bound.then(() => applyContext(request, context));
}
