/**
 * Per-app cluster state: the app's Socket.IO server (so the session manager
 * can broadcast revocations even before any socket connected to this node),
 * the "Redis is down / back" log (one line when an outage starts, one when it
 * ends, whichever of the session store and the adapter's publisher notices),
 * and what to stop when the server closes.
 */
import type { Server } from "socket.io";
import type { OidcAppHandle } from "../types.js";
import { oidcLog } from "../util/log.js";
import { describeError } from "../util/text.js";

export interface RedisHealth {
  /** Whether some source's last outcome was a failure. */
  readonly down: boolean;
  /**
   * Report a failure of `source` (e.g. "session store", "adapter publish").
   * Logs at level 4 when it starts an outage (no source was down before).
   */
  failed(source: string, error: unknown, operation?: string): void;
  /**
   * Report a success of `source`. Logs at level 6, and returns true, when it
   * ends the outage (no source is down any more).
   */
  ok(source: string, detail?: string): boolean;
}

export interface ClusterState {
  /** The Socket.IO server, once known (from `attachRedisAdapter`, or the first authenticated socket). */
  io: Server | undefined;
  readonly health: RedisHealth;
  /** Run when the server closes (Fastify `onClose`, registered by `attachRedisAdapter`). */
  readonly closers: Set<() => unknown>;
}

const states = new WeakMap<object, ClusterState>();

export function clusterOf(appHandle: OidcAppHandle): ClusterState {
  let state = states.get(appHandle);
  if (state !== undefined) return state;
  const down = new Set<string>();
  const health: RedisHealth = {
    get down() {
      return down.size > 0;
    },
    failed(source, error, operation) {
      const wasUp = down.size === 0;
      down.add(source);
      if (!wasUp) return;
      oidcLog(
        appHandle,
        4,
        `Redis unavailable (${source}${operation ? ` ${operation}` : ""}: ${describeError(error)}): sessions are node-local and revocations reach this node only until it returns`,
      );
    },
    ok(source, detail) {
      if (!down.delete(source) || down.size > 0) return false;
      oidcLog(appHandle, 6, `Redis available again (${source})${detail ? `: ${detail}` : ""}`);
      return true;
    },
  };
  state = { io: undefined, health, closers: new Set() };
  states.set(appHandle, state);
  return state;
}

/** Remember the app's Socket.IO server (the first one seen wins). */
export function rememberServer(appHandle: OidcAppHandle, io: Server | undefined): void {
  if (io === undefined || io === null) return;
  const state = clusterOf(appHandle);
  state.io ??= io;
}
