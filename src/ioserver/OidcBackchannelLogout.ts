import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";
import type { AppHandle } from "ioserver";
import { createLogoutHandler } from "../logout/handler.js";
import type { OidcAppHandle } from "../types.js";
import { settingsOf, type OidcBackchannelLogoutHandler, type OidcBackchannelLogoutOptions } from "../logout/options.js";
import { configuredClass } from "./configure.js";

/**
 * A Fastify handler for the back-channel logout URI of this app. Use it as
 * the route's `onRequest` hook (and handler) so it reads the form body
 * itself, or as the handler of a route whose app already parses forms.
 * Answers 200 (empty), 400 `{ error, error_description }`, 503 when the
 * keys are unavailable, 500 when unconfigured; always with
 * `Cache-Control: no-store`.
 */
export function backchannelLogoutHandler(appHandle: AppHandle | OidcAppHandle, options: OidcBackchannelLogoutOptions = {}): OidcBackchannelLogoutHandler {
  return createLogoutHandler(appHandle, options);
}

/**
 * An IOServer controller serving the back-channel logout URI. Map a POST
 * route to `logout` both as `onRequest` and `handler` in its route file:
 *
 * ```json
 * [{ "method": "POST", "url": "/backchannel-logout", "onRequest": "logout", "handler": "logout" }]
 * ```
 *
 * and register it without the bearer-token middleware (the provider sends
 * no access token; the signed logout token is the authentication):
 * `server.addController({ name: "oidc", controller: OidcBackchannelLogoutController })`.
 */
export class OidcBackchannelLogoutController extends BaseController {
  protected static readonly options: OidcBackchannelLogoutOptions = {};
  private readonly handler: OidcBackchannelLogoutHandler;

  /** A controller class with options: `OidcBackchannelLogoutController.configure({ replayStore, maxAge, ... })`. Validated now. */
  static configure(options: OidcBackchannelLogoutOptions): typeof OidcBackchannelLogoutController {
    settingsOf(options);
    return configuredClass(OidcBackchannelLogoutController, options);
  }

  constructor(appHandle: AppHandle) {
    super(appHandle);
    this.handler = backchannelLogoutHandler(appHandle, (this.constructor as typeof OidcBackchannelLogoutController).options);
  }

  /** The route handler (and `onRequest` hook). */
  async logout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return this.handler(request, reply);
  }
}
