import type { Server, Socket } from "socket.io";
import type { OidcAuthErrorCode } from "../errors.js";
import type { OidcAppHandle, OidcConfig } from "../types.js";
import { subjectsOfDerivedUserId } from "../claims/identity.js";
import { OIDC_EVENTS, revokedPayload, revokeWith } from "./protocol.js";
import { registryOf } from "./registry.js";
import { contextOf } from "./socketState.js";
import { tryResolveConfig } from "../config/resolve.js";
import { denyListOf, type OidcRevocation } from "../stores/denyList.js";
import { withTimeout } from "../util/withTimeout.js";
import type { OidcSocketRevokedKind } from "../diagnostics.js";
import { publishSocket, socketChannel } from "./observe.js";

/**
 * Disconnect this app's sockets whose `userId` is `userId` with
 * `oidc:revoked` (on this node). Returns how many. `config` tells whether a
 * derived id is a `sub` (see `identity.ts`).
 */
export function revokeUserSockets(appHandle: OidcAppHandle, userId: string, config: OidcConfig | undefined, reason?: string): number {
  const registry = registryOf(appHandle);
  const sockets = new Set(registry.ofUserId(userId));
  for (const [iss, sub] of subjectsOfDerivedUserId(appHandle, userId, config)) for (const socket of registry.ofSubject(iss, sub)) sockets.add(socket);
  for (const socket of sockets) revokeWith(socket, revokedPayload(reason), "user");
  return sockets.size;
}

/** Disconnect one socket of this app with `oidc:revoked`. Returns whether it was found. */
export function revokeSocket(appHandle: OidcAppHandle, socketId: string, reason?: string): boolean {
  const socket = registryOf(appHandle).get(socketId);
  if (socket === undefined) return false;
  revokeWith(socket, revokedPayload(reason), "socket");
  return true;
}

/**
 * This node's live sockets that an entry covers (a revocation made on another
 * node, or while this one could not hear it), disconnected with
 * `oidc:revoked`. Without an entry: every socket, against the whole list.
 * Returns how many were ended.
 */
export function endRevokedSockets(appHandle: OidcAppHandle, entry?: OidcRevocation, reason?: string): number {
  const registry = registryOf(appHandle);
  let candidates: Socket[];
  if (entry === undefined || entry.kind === "session") candidates = registry.all();
  else if (entry.kind === "subject") candidates = registry.ofSubject(entry.iss, entry.value);
  else candidates = registry.ofUserId(entry.value);
  if (candidates.length === 0) return 0;
  const tolerance = tryResolveConfig(appHandle)?.clockTolerance ?? 0;
  const list = denyListOf(appHandle);
  let ended = 0;
  for (const socket of candidates) {
    const context = contextOf(socket);
    if (context === undefined || list.check(context, { clockTolerance: tolerance }) === undefined) continue;
    revokeWith(socket, revokedPayload(reason), "deny-list");
    ended++;
  }
  return ended;
}

/** What `revokeInRooms` did. */
export interface RoomRevocation {
  /** Distinct sockets found in the rooms: this node's, plus those the other nodes reported in time. */
  count: number;
  /** This node's sockets found in the rooms. */
  local: number;
  /** Why the other nodes could not be counted (Redis down, a node too slow); the broadcast was sent anyway. */
  clusterError?: unknown;
}

/**
 * Revoke every socket in any of `rooms` and in none of `except`, on every
 * namespace of `io`, through
 * the namespaces' adapters — Socket.IO's own path, so with
 * `@socket.io/redis-adapter` it reaches every node:
 *
 * 1. this node's sockets at once (`.local`: no Redis round trip, so it works
 *    while Redis is down): `oidc:revoked`, then disconnect;
 * 2. the other nodes' sockets are counted with `fetchSockets()`, bounded by
 *    `clusterTimeout`;
 * 3. `oidc:revoked` and `disconnectSockets(true)` are broadcast to the rooms
 *    (published in this order on one connection, so every node emits before
 *    it disconnects).
 *
 * `kind` names the revocation in the `socket` channel's messages of this
 * node's sockets (the other nodes' sockets end through their adapters).
 */
export async function revokeInRooms(
  io: Server,
  rooms: string[],
  payload: { code: OidcAuthErrorCode; reason?: string },
  clusterTimeout: number,
  except: string[] = [],
  kind: OidcSocketRevokedKind = "user",
): Promise<RoomRevocation> {
  const namespaces = [...io._nsps.values()];
  let clusterError: unknown;
  let local = 0;
  const counts = await Promise.all(
    namespaces.map(async (nsp) => {
      const found = new Set<string>();
      try {
        const here = await nsp.local.in(rooms).except(except).fetchSockets();
        for (const socket of here) found.add(socket.id);
        local += found.size;
        if (found.size > 0) {
          // This node's sockets are Socket.IO's own Socket objects (only other nodes' are stand-ins).
          if (socketChannel.hasSubscribers) for (const socket of here) publishSocket(socket as unknown as Socket, { event: "revoked", code: payload.code, kind });
          nsp.local.to(rooms).except(except).emit(OIDC_EVENTS.revoked, payload);
          nsp.local.to(rooms).except(except).disconnectSockets(true);
        }
      } catch (error) {
        clusterError ??= error;
      }
      try {
        const everywhere = await withTimeout(() => nsp.in(rooms).except(except).fetchSockets(), clusterTimeout, `fetchSockets on ${nsp.name}`);
        for (const socket of everywhere) found.add(socket.id);
      } catch (error) {
        clusterError ??= error;
      }
      try {
        nsp.to(rooms).except(except).emit(OIDC_EVENTS.revoked, payload);
        nsp.to(rooms).except(except).disconnectSockets(true);
      } catch (error) {
        clusterError ??= error;
      }
      return found.size;
    }),
  );
  const count = counts.reduce((sum, n) => sum + n, 0);
  return clusterError === undefined ? { count, local } : { count, local, clusterError };
}
