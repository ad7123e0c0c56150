import type { AppHandle } from "ioserver";
import type { OidcSessionManager, OidcSessionRecord } from "ioserver-oidc";
import type { UsersManager } from "./UsersManager.js";

export interface SessionView extends OidcSessionRecord {
  name: string | null;
  email: string | null;
}

/** The live sockets (from OidcSessionManager) with the names of their users (from the app's table). */
export async function listSessions(appHandle: AppHandle): Promise<SessionView[]> {
  const session = appHandle.session as OidcSessionManager;
  const users = appHandle.users as UsersManager;
  const byId = new Map(users.list().map((user) => [String(user.id), user]));
  return (await session.list())
    .map((record) => {
      const user = byId.get(record.userId);
      return { ...record, name: user?.name ?? null, email: user?.email ?? null };
    })
    .sort((a, b) => a.connectedAt - b.connectedAt);
}
