import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";
import type { OidcSessionManager } from "ioserver-oidc";
import { listSessions } from "./sessions.js";
import type { UsersManager } from "./UsersManager.js";

type UserRequest = FastifyRequest<{ Params: { id: string } }>;
type SocketRequest = FastifyRequest<{ Params: { socketId: string } }>;

/** `/admin/*`: OidcHttpMiddleware then OidcHttpAdminMiddleware — a valid token with the `admin` role. */
export class AdminController extends BaseController {
  private get session(): OidcSessionManager {
    return this.appHandle.session as OidcSessionManager;
  }

  private get users(): UsersManager {
    return this.appHandle.users as UsersManager;
  }

  /** GET /admin/sessions — every live socket, with its user's name. */
  async sessions(_request: FastifyRequest, reply: FastifyReply) {
    return reply.header("cache-control", "no-store").send(await listSessions(this.appHandle));
  }

  /** GET /admin/users — the app's user table. */
  async listUsers(_request: FastifyRequest, reply: FastifyReply) {
    return reply.header("cache-control", "no-store").send(this.users.list());
  }

  /**
   * POST /admin/users/:id/disable — from now on ioserver-oidc refuses this
   * user's tokens (ERR_USER_DISABLED), even unexpired ones, because it asks
   * `users.findOrCreate` on every request; and the sockets they already have
   * are closed now, each told why with `oidc:revoked`.
   */
  async disableUser(request: UserRequest, reply: FastifyReply) {
    const id = userIdOf(request);
    if (id === null) return fail(reply, 400, "The user id must be a positive integer");
    if (String(id) === request.userId) return fail(reply, 409, "You cannot disable your own account");
    if (!this.users.setDisabled(id, true)) return fail(reply, 404, `No user ${id}`);
    const disconnected = await this.session.disconnectUser(String(id), "disabled by an administrator");
    return reply.send({ ok: true, disconnected });
  }

  /** POST /admin/users/:id/enable — the user may sign in and connect again. */
  async enableUser(request: UserRequest, reply: FastifyReply) {
    const id = userIdOf(request);
    if (id === null) return fail(reply, 400, "The user id must be a positive integer");
    if (!this.users.setDisabled(id, false)) return fail(reply, 404, `No user ${id}`);
    return reply.send({ ok: true });
  }

  /** POST /admin/sessions/:socketId/disconnect — closes one socket; the client may reconnect. */
  async disconnectSession(request: SocketRequest, reply: FastifyReply) {
    const found = await this.session.disconnectSocket(request.params.socketId, "disconnected by an administrator");
    if (!found) return fail(reply, 404, "No such session");
    return reply.send({ ok: true });
  }
}

function userIdOf(request: UserRequest): number | null {
  const id = Number(request.params.id);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

const ERRORS: Record<number, string> = { 400: "Bad Request", 404: "Not Found", 409: "Conflict" };

function fail(reply: FastifyReply, statusCode: number, message: string) {
  return reply.code(statusCode).send({ statusCode, error: ERRORS[statusCode] ?? "Error", message });
}
