/**
 * What an administrator can do, in one place: the `/admin/*` HTTP routes and
 * the `/admin` namespace's events both call these (each behind its own admin
 * guard), so the two doors behave the same.
 */
import type { AppHandle } from "ioserver";
import type { OidcSessionManager } from "ioserver-oidc";
import type { UsersManager } from "./UsersManager.js";

/** An HTTP-like outcome: status and JSON body. */
export interface AdminResult {
  status: number;
  body: Record<string, unknown>;
}

const ERRORS: Record<number, string> = { 400: "Bad Request", 404: "Not Found", 409: "Conflict" };

function fail(status: number, message: string): AdminResult {
  return { status, body: { statusCode: status, error: ERRORS[status] ?? "Error", message } };
}

function parseUserId(value: unknown): number | null {
  const id = Number(value);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

const session = (app: AppHandle) => app.session as OidcSessionManager;
const users = (app: AppHandle) => app.users as UsersManager;

/**
 * From now on ioserver-oidc refuses this user's tokens (ERR_USER_DISABLED),
 * even unexpired ones, because it asks `users.findOrCreate` on every request;
 * and the sockets they already have are closed now, each told why with
 * `oidc:revoked`.
 */
export async function disableUser(app: AppHandle, userId: unknown, actingUserId: string): Promise<AdminResult> {
  const id = parseUserId(userId);
  if (id === null) return fail(400, "The user id must be a positive integer");
  if (String(id) === actingUserId) return fail(409, "You cannot disable your own account");
  if (!users(app).setDisabled(id, true)) return fail(404, `No user ${id}`);
  const disconnected = await session(app).disconnectUser(String(id), "disabled by an administrator");
  return { status: 200, body: { ok: true, disconnected } };
}

/** The user may sign in and connect again. */
export async function enableUser(app: AppHandle, userId: unknown): Promise<AdminResult> {
  const id = parseUserId(userId);
  if (id === null) return fail(400, "The user id must be a positive integer");
  if (!users(app).setDisabled(id, false)) return fail(404, `No user ${id}`);
  return { status: 200, body: { ok: true } };
}

/** Closes one socket; its client may reconnect (its token is still good). */
export async function disconnectSession(app: AppHandle, socketId: unknown): Promise<AdminResult> {
  if (typeof socketId !== "string" || socketId === "") return fail(400, "A socket id is required");
  const found = await session(app).disconnectSocket(socketId, "disconnected by an administrator");
  return found ? { status: 200, body: { ok: true } } : fail(404, "No such session");
}
