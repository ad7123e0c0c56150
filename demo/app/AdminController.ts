import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";
import { disableUser, disconnectSession, enableUser, type AdminResult } from "./adminActions.js";
import type { MetricsManager } from "./MetricsManager.js";
import { listSessions } from "./sessions.js";
import type { UsersManager } from "./UsersManager.js";

type UserRequest = FastifyRequest<{ Params: { id: string } }>;
type SocketRequest = FastifyRequest<{ Params: { socketId: string } }>;

/** `/admin/*`: OidcHttpMiddleware then OidcHttpAdminMiddleware — a valid token with the `admin` role. */
export class AdminController extends BaseController {
  private get users(): UsersManager {
    return this.appHandle.users as UsersManager;
  }

  /** GET /admin/sessions — every live socket, with its user's name. */
  async sessions(_request: FastifyRequest, reply: FastifyReply) {
    return reply.header("cache-control", "no-store").send(await listSessions(this.appHandle));
  }

  /** GET /admin/metrics — the live panel's figures (see MetricsManager.summary). */
  async metrics(_request: FastifyRequest, reply: FastifyReply) {
    return reply.header("cache-control", "no-store").send(await (this.appHandle.metrics as MetricsManager).summary());
  }

  /** GET /admin/users — the app's user table. */
  async listUsers(_request: FastifyRequest, reply: FastifyReply) {
    return reply.header("cache-control", "no-store").send(this.users.list());
  }

  /** POST /admin/users/:id/disable — see adminActions.disableUser. */
  async disableUser(request: UserRequest, reply: FastifyReply) {
    return send(reply, await disableUser(this.appHandle, request.params.id, request.userId));
  }

  /** POST /admin/users/:id/enable — the user may sign in and connect again. */
  async enableUser(request: UserRequest, reply: FastifyReply) {
    return send(reply, await enableUser(this.appHandle, request.params.id));
  }

  /** POST /admin/sessions/:socketId/disconnect — closes one socket; the client may reconnect. */
  async disconnectSession(request: SocketRequest, reply: FastifyReply) {
    return send(reply, await disconnectSession(this.appHandle, request.params.socketId));
  }
}

function send(reply: FastifyReply, result: AdminResult) {
  return reply.code(result.status).send(result.body);
}
