import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";
import "ioserver-oidc"; // types request.auth, request.userId, … on guarded routes

/** `/api/*`: every route is guarded by OidcHttpMiddleware (see server.ts). */
export class ApiController extends BaseController {
  /** GET /api/me — who the bearer token says the caller is, as the middleware injected it. */
  async me(request: FastifyRequest, reply: FastifyReply) {
    const { userId, sub, name, email, roles, permissions, features, scopes, expiresAt } = request.auth;
    return reply.header("cache-control", "no-store").send({ userId, sub, name, email, roles, permissions, features, scopes, expiresAt });
  }
}
