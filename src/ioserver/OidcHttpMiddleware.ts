import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import { authenticateNow } from "../pipeline/authenticate.js";
import { httpHook } from "../pipeline/httpHook.js";
import { setRequestContext } from "../pipeline/requestContext.js";
import { bearerToken, dpopToken } from "../pipeline/extractToken.js";
import { bearerBinding, dpopBinding } from "../pipeline/dpopBinding.js";

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
      let token = bearerToken(header);
      let binding = bearerBinding;
      if (token === undefined && (token = dpopToken(header)) !== undefined) binding = dpopBinding;
      // A cached token is decided at once; anything else resolves later. The DPoP step runs inside the
      // authentication, after verification and before the users manager: a proof is checked on every request.
      const result = authenticateNow(token, app, "http", request, binding);
      if (result instanceof Promise) return result.then((each) => setRequestContext(request, each.context));
      setRequestContext(request, result.context);
    });
  }
}
