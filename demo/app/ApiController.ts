import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";
import "ioserver-oidc"; // types request.auth, request.userId, … on guarded routes

/** GET /api/me's body. */
export interface MeView {
  userId: string;
  sub: string;
  name: string | null;
  email: string | null;
  roles: readonly string[];
  permissions: readonly string[];
  features: Readonly<Record<string, unknown>>;
  scopes: readonly string[];
  /** Epoch ms. */
  expiresAt: number;
}

/** `/api/*`: every route is guarded by OidcHttpMiddleware (see server.ts). */
export class ApiController extends BaseController {
  /** GET /api/me — who the bearer token says the caller is, as the middleware injected it. */
  async me(request: FastifyRequest, reply: FastifyReply) {
    const { userId, sub, name, email, roles, permissions, features, scopes, expiresAt } = request.auth;
    const body: MeView = { userId, sub, name, email, roles, permissions, features, scopes, expiresAt };
    return reply.header("cache-control", "no-store").send(body);
  }
}
