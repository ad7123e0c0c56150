import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import { authenticateNow } from "../pipeline/authenticate.js";
import { httpHook } from "../pipeline/httpHook.js";
import { applyContext } from "../pipeline/applyContext.js";
import { bearerToken } from "../pipeline/extractToken.js";

/**
 * Guards every route of an IOServer controller: `Authorization: Bearer`
 * token verified and provisioned, then `request.sub`, `request.userId`,
 * `request.userRole`, `request.roles`, `request.permissions`,
 * `request.features` and `request.auth` are set. Refusals are JSON
 * `{ statusCode, error, code, message }` with an RFC 6750 challenge.
 */
export class OidcHttpMiddleware extends BaseMiddleware {
  handle(appHandle: AppHandle) {
    return httpHook(appHandle, (request, app) => {
      // A cached token is decided at once; anything else resolves later.
      const result = authenticateNow(bearerToken(request.headers.authorization), app, "http");
      if (result instanceof Promise) return result.then(({ context }) => applyContext(request, context));
      applyContext(request, result.context);
    });
  }
}
