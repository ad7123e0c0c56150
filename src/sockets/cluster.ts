/**
 * What one app knows of its cluster: its Socket.IO server (so a revocation
 * can be broadcast through the adapter even before any socket connected to
 * this node), and what to stop when the server closes.
 */
import type { Server } from "socket.io";
import type { OidcAppHandle } from "../types.js";
import { appPart } from "../util/appState.js";
import { watchNamespaces } from "./registry.js";

export interface ClusterState {
  /** The Socket.IO server, once known (from `attachRedisAdapter`, or the first authenticated socket). */
  io: Server | undefined;
  /** Run when the server closes (Fastify `onClose`, registered by `attachRedisAdapter`). */
  readonly closers: Set<() => unknown>;
}

const cluster = appPart<ClusterState>("cluster", () => ({ io: undefined, closers: new Set() }));

export function clusterOf(appHandle: OidcAppHandle): ClusterState {
  return cluster.of(appHandle);
}

/** Remember the app's Socket.IO server (the first one seen wins), and keep the `oidc:` rooms of all its namespaces reserved. */
export function rememberServer(appHandle: OidcAppHandle, io: Server | undefined): void {
  if (io === undefined || io === null) return;
  const state = clusterOf(appHandle);
  if (state.io !== undefined) return;
  state.io = io;
  watchNamespaces(appHandle, io);
}
