import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";

export interface WebAssets {
  html: string;
  css: string;
  /** The browser bundle of demo/web/app.ts. */
  js: string;
  /** What the page needs to start a sign-in: `GET /config.json`. */
  config: { issuer: string; clientId: string; resource: string };
}

/**
 * The page, at the root (registered with `prefix: ""`) and without auth
 * middleware: it is public; what it shows comes from the guarded API and
 * namespaces, called with the user's token.
 */
export class WebController extends BaseController {
  protected static readonly assets: WebAssets | undefined;

  /** IOServer constructs controllers with the appHandle only: bind the assets to a subclass. */
  static serving(assets: WebAssets): typeof WebController {
    return class ServingWebController extends WebController {
      protected static override readonly assets = assets;
    };
  }

  private get assets(): WebAssets {
    const assets = (this.constructor as typeof WebController).assets;
    if (assets === undefined) throw new TypeError("WebController: register WebController.serving(assets)");
    return assets;
  }

  /** GET / and GET /callback (the OAuth redirect URI: the page itself handles `?code=…&state=…`). */
  async page(_request: FastifyRequest, reply: FastifyReply) {
    const issuerOrigin = new URL(this.assets.config.issuer).origin;
    reply
      .header(
        "content-security-policy",
        // Tokens live in this page's JavaScript: allow no script but our own
        // bundle, and let it talk only to us and to the identity provider.
        `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ${issuerOrigin}; ` +
          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      )
      // `/callback?code=…` must not leak to other sites through the Referer header.
      .header("referrer-policy", "no-referrer");
    return send(reply, "text/html; charset=utf-8", this.assets.html);
  }

  async script(_request: FastifyRequest, reply: FastifyReply) {
    return send(reply, "text/javascript; charset=utf-8", this.assets.js);
  }

  async styles(_request: FastifyRequest, reply: FastifyReply) {
    return send(reply, "text/css; charset=utf-8", this.assets.css);
  }

  async config(_request: FastifyRequest, reply: FastifyReply) {
    return send(reply, "application/json; charset=utf-8", JSON.stringify(this.assets.config));
  }
}

function send(reply: FastifyReply, contentType: string, body: string): FastifyReply {
  return reply.header("content-type", contentType).header("cache-control", "no-store").send(body);
}
