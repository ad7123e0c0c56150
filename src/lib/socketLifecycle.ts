/**
 * Live sockets after the handshake: expiry (`oidc:expiring`, then
 * `oidc:expired` and a disconnect), in-band refresh (`oidc:refresh`),
 * revocation (`oidc:revoked`), and re-arming sockets restored by Socket.IO's
 * connection-state recovery (which skips middlewares).
 */
import type { Namespace, Socket } from "socket.io";
import { authenticate, reportFailure } from "../authenticate.js";
import { OidcAuthError, type OidcAuthErrorCode } from "../OidcAuthError.js";
import type { OidcAppHandle, OidcConfig, OidcUserContext } from "../types.js";
import { applyContext } from "./applyContext.js";
import { resolveConfig } from "./config.js";
import { disconnectWith, OIDC_EVENTS } from "./protocol.js";
import { registryOf, releaseSocket, stateOf } from "./socketRegistry.js";
import { registerSocketSession } from "./socketSession.js";
import { oidcLog } from "./log.js";

/** The longest delay `setTimeout` honours; later deadlines are reached in steps. */
const MAX_DELAY = 2_147_483_647;

export interface LifecycleOptions {
  /** Per-middleware override of `config.socketExpiry`. */
  expiry?: boolean;
}

/** Schedule `oidc:expiring` and then the expiry disconnect; replaces any earlier schedule. */
export function armExpiry(socket: Socket, appHandle: OidcAppHandle, config: OidcConfig, enabled: boolean): void {
  const state = stateOf(socket);
  if (state.timer !== undefined) clearTimeout(state.timer);
  state.timer = undefined;
  const context = socket.data.auth as OidcUserContext | undefined;
  if (!enabled || context === undefined) return;

  const expiresAt = context.expiresAt;
  const deadline = expiresAt + config.clockTolerance * 1000;
  const lead = Math.min(config.expiryLeadTime * 1000, Math.max(0, expiresAt - Date.now()) / 3);
  let warned = false;

  const step = (): void => {
    state.timer = undefined;
    if (socket.disconnected) return;
    const now = Date.now();
    if (!warned && now >= expiresAt - lead) {
      warned = true;
      socket.emit(OIDC_EVENTS.expiring, { expiresAt });
    }
    if (now >= deadline) {
      oidcLog(appHandle, 6, `socket ${socket.nsp.name} ${socket.id} (user ${context.userId}) disconnected: token expired`);
      disconnectWith(socket, OIDC_EVENTS.expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
      return;
    }
    const next = warned ? deadline : expiresAt - lead;
    state.timer = setTimeout(step, Math.min(Math.max(0, next - now), MAX_DELAY));
  };
  step();
}

type Ack = (reply: { ok: true; expiresAt: number } | { ok: false; code: OidcAuthErrorCode }) => void;

async function refresh(socket: Socket, appHandle: OidcAppHandle, payload: unknown, enabled: boolean): Promise<number> {
  const config = resolveConfig(appHandle);
  const state = stateOf(socket);
  const now = Date.now();
  state.refreshes = state.refreshes.filter((at) => now - at < config.refreshWindow);
  if (state.refreshes.length >= config.refreshLimit) {
    throw new OidcAuthError("ERR_AUTH_RATE_LIMITED", {
      reason: `more than ${config.refreshLimit} refresh attempts in ${config.refreshWindow} ms`,
    });
  }
  state.refreshes.push(now);

  const token = (payload as { token?: unknown } | null)?.token;
  const current = socket.data.auth as OidcUserContext;
  const { context } = await authenticate(typeof token === "string" ? token : undefined, appHandle);
  if (context.sub !== current.sub) {
    throw new OidcAuthError("ERR_AUTH_SUBJECT_MISMATCH", { reason: `refresh token is for another subject than ${current.sub}` });
  }
  if (socket.disconnected) return context.expiresAt;
  registryOf(appHandle).track(socket, context); // re-index: the session tracker keeps its entry
  applyContext(socket, context);
  socket.data.auth = context;
  armExpiry(socket, appHandle, config, enabled);
  return context.expiresAt;
}

function listenForRefresh(socket: Socket, appHandle: OidcAppHandle, enabled: boolean): void {
  socket.on(OIDC_EVENTS.refresh, (payload: unknown, ack?: unknown) => {
    const reply: Ack = typeof ack === "function" ? (ack as Ack) : () => undefined;
    refresh(socket, appHandle, payload, enabled).then(
      (expiresAt) => reply({ ok: true, expiresAt }),
      (error: unknown) => reply({ ok: false, code: reportFailure(appHandle, `refresh ${socket.nsp.name} ${socket.id}`, error).code }),
    );
  });
}

/** A socket restored by connection-state recovery: its context comes back from `socket.data.auth`. */
async function restore(socket: Socket, appHandle: OidcAppHandle): Promise<boolean> {
  const context = socket.data?.auth as OidcUserContext | undefined;
  if (context === undefined || typeof context.sub !== "string") {
    oidcLog(appHandle, 4, `recovered socket ${socket.id} has no authenticated context: disconnected`);
    disconnectWith(socket, OIDC_EVENTS.revoked, { code: "ERR_AUTH_REVOKED" });
    return false;
  }
  const config = resolveConfig(appHandle);
  if (Date.now() >= context.expiresAt + config.clockTolerance * 1000) {
    disconnectWith(socket, OIDC_EVENTS.expired, { code: "ERR_AUTH_TOKEN_EXPIRED" });
    return false;
  }
  applyContext(socket, context);
  await registerSocketSession(appHandle, socket, context, config);
  return true;
}

const wired = new WeakSet<Namespace>();

/**
 * Once per namespace: arm expiry and listen for refreshes on every socket
 * that connects (after all middlewares passed, or restored by recovery).
 */
export function ensureLifecycle(namespace: Namespace, appHandle: OidcAppHandle, options: LifecycleOptions): void {
  if (wired.has(namespace)) return;
  wired.add(namespace);
  namespace.on("connection", (socket: Socket) => {
    const run = async () => {
      if (socket.recovered && !(await restore(socket, appHandle))) return;
      if (socket.data?.auth === undefined) return; // not authenticated by us
      const config = resolveConfig(appHandle);
      const enabled = options.expiry ?? config.socketExpiry;
      listenForRefresh(socket, appHandle, enabled);
      armExpiry(socket, appHandle, config, enabled);
    };
    run().catch((error: unknown) => {
      const failure = reportFailure(appHandle, `connection ${namespace.name} ${socket.id}`, error);
      releaseSocket(socket);
      disconnectWith(socket, OIDC_EVENTS.revoked, { code: failure.code });
    });
  });
}
