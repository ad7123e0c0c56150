/**
 * A real IOServer with one route protected by `OidcHttpMiddleware` (`GET|POST
 * /api/me`, answering `{ sub, dpopJkt }`), for DPoP tests that need several
 * apps (the nodes of a cluster); proofs come from `./dpop.js`.
 */
import { BaseController } from "ioserver";
import { OidcConfigManager, OidcHttpMiddleware, type OidcConfigInput } from "../../src/index.js";
import { createServerBase, routesFolder, type ServerBase } from "./app.js";

let routes: string | undefined;

class DpopApiController extends BaseController {
  async me(request: Record<string, unknown>, reply: { send(body: unknown): unknown }) {
    return reply.send({ sub: request.sub, dpopJkt: request.dpopJkt ?? null });
  }
}

/** A real IOServer on 127.0.0.1 configured with `config`, serving `/api/me`. */
export async function startDpopApp(config: OidcConfigInput): Promise<ServerBase> {
  routes ??= routesFolder("ioserver-oidc-dpop-helper-", {
    api: [
      { method: "GET", url: "/me", handler: "me" },
      { method: "POST", url: "/me", handler: "me" },
    ],
  });
  const base = await createServerBase(routes);
  base.server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(config) });
  base.server.addController({ name: "api", controller: DpopApiController, middlewares: [OidcHttpMiddleware] });
  await base.server.start();
  return base;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** `GET <base>/api/me` (or `method`) with `headers`, bounded to 8 s. */
export async function callApi(base: ServerBase, headers: Record<string, string> | [string, string][], method = "GET"): Promise<ApiResponse> {
  const response = await fetch(`${base.url}/api/me`, { method, headers, signal: AbortSignal.timeout(8_000) });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, body };
}
