import { BaseController } from "ioserver";
import type { FastifyReply, FastifyRequest } from "fastify";
import "ioserver-oidc"; // brings the typed request.userId, request.roles, … into scope

/** Every route of this controller is guarded by OidcHttpMiddleware (see server.ts). */
export class ApiController extends BaseController {
  async me(request: FastifyRequest, reply: FastifyReply) {
    return reply.send({ userId: request.userId, userRole: request.userRole, roles: request.roles, auth: request.auth });
  }
}
