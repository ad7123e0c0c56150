/// <reference lib="dom" />
/**
 * The admin panel, shown to users whose token has the `admin` role. Its data
 * come from routes and a namespace guarded by OidcHttpAdminMiddleware /
 * OidcSocketAdminMiddleware: hiding the panel from others is cosmetic, the
 * server is what refuses them (ERR_FORBIDDEN).
 */
import type { OidcClientToServerEvents, OidcServerToClientEvents } from "ioserver-oidc/client";
import type { Socket } from "socket.io-client";
import { describe } from "./errors.js";
import { $, time } from "./dom.js";
// The server's own wire types (type-only: nothing of the server reaches the page's bundle).
import type { SessionView } from "../app/sessions.js";
import type { DemoUser } from "../app/UsersManager.js";
import type { MetricsSummary } from "../app/MetricsManager.js";

/** A user row as `/admin/users` returns it. */
type UserView = Pick<DemoUser, "id" | "sub" | "email" | "name" | "isDisabled">;

export type AdminSocket = Socket<
  OidcServerToClientEvents & { "admin:sessions": (sessions: SessionView[]) => void },
  OidcClientToServerEvents & { sessions: (data: null, ack: (sessions: SessionView[]) => void) => void }
>;

export interface AdminPanelOptions {
  /** Calls the API with the current access token. */
  api: <T>(method: "GET" | "POST", path: string) => Promise<T>;
  /** Opens the /admin namespace with connectWithOidc. */
  openSocket: () => AdminSocket;
}

let socket: AdminSocket | null = null;
let timer: number | undefined;
let api: AdminPanelOptions["api"] | null = null;
let metricsTimer: number | undefined;
let previousMetrics: MetricsSummary | null = null;
let shownSessions = "";
let shownUsers = "";

function button(action: string, label: string, data: Record<string, string>): HTMLButtonElement {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "small";
  element.dataset.action = action;
  Object.assign(element.dataset, data);
  element.textContent = label;
  return element;
}

function row(cells: Array<string | Node>, data: Record<string, string>): HTMLTableRowElement {
  const tr = document.createElement("tr");
  Object.assign(tr.dataset, data);
  for (const cell of cells) {
    const td = document.createElement("td");
    td.append(cell); // text nodes: nothing from the server is parsed as HTML
    tr.append(td);
  }
  return tr;
}

/** Re-rendered only when the data changed, so buttons are not replaced under the pointer. */
function renderSessions(sessions: SessionView[]): void {
  const json = JSON.stringify(sessions);
  if (json === shownSessions) return;
  shownSessions = json;
  $("admin-sessions").replaceChildren(
    ...sessions.map((session) =>
      row(
        [
          session.name ?? session.email ?? session.sub,
          session.namespace,
          session.socketId,
          time(session.connectedAt),
          time(session.expiresAt),
          button("disconnect", "Disconnect", { socketId: session.socketId }),
        ],
        { socketId: session.socketId, userId: session.userId, sub: session.sub },
      ),
    ),
  );
}

function renderUsers(users: UserView[]): void {
  const json = JSON.stringify(users);
  if (json === shownUsers) return;
  shownUsers = json;
  $("admin-users").replaceChildren(
    ...users.map((user) => {
      const id = String(user.id);
      return row(
        [
          id,
          user.name ?? "",
          user.email ?? "",
          user.sub,
          user.isDisabled ? "disabled" : "active",
          user.isDisabled ? button("enable", "Enable", { userId: id }) : button("disable", "Disable", { userId: id }),
        ],
        // The demo provider uses the login name as `sub`.
        { userId: id, username: user.sub, disabled: String(user.isDisabled) },
      );
    }),
  );
}

function showError(error: unknown): void {
  const line = $("admin-error");
  line.hidden = error === null;
  line.textContent = error instanceof Error ? error.message : "";
}

function item(text: string, detail: string): HTMLLIElement {
  const li = document.createElement("li");
  const span = document.createElement("span");
  span.textContent = detail;
  li.append(text, span); // text nodes only
  return li;
}

/** Rates from the difference with the previous reading; live sockets and key sets as they are now. */
function renderMetrics(now: MetricsSummary): void {
  const previous = previousMetrics;
  previousMetrics = now;
  const seconds = previous === null ? 0 : (now.at - previous.at) / 1000;
  const outcomes = Object.keys(now.authentications).sort((a, b) => (a === "success" ? -1 : b === "success" ? 1 : a.localeCompare(b)));
  $("metrics-auth").replaceChildren(
    ...(outcomes.length === 0
      ? [item("none yet", "")]
      : outcomes.map((outcome) => {
          const total = now.authentications[outcome] ?? 0;
          const rate = seconds > 0 && previous !== null ? (total - (previous.authentications[outcome] ?? 0)) / seconds : 0;
          const li = item(`${rate.toFixed(1)} ${outcome}`, `${total} in all`);
          li.dataset.outcome = outcome;
          return li;
        })),
  );
  const namespaces = Object.entries(now.liveSockets).sort(([a], [b]) => a.localeCompare(b));
  $("metrics-sockets").replaceChildren(...(namespaces.length === 0 ? [item("none yet", "")] : namespaces.map(([namespace, count]) => item(`${count} ${namespace}`, ""))));
  $("metrics-keys").replaceChildren(
    ...(now.keySets.length === 0 ? [item("not fetched yet", "")] : now.keySets.map((set) => item(set.state, `${set.keys} key${set.keys === 1 ? "" : "s"}, ${set.issuer}`))),
  );
}

async function refreshMetrics(): Promise<void> {
  if (api === null) return;
  try {
    renderMetrics(await api<MetricsSummary>("GET", "/admin/metrics"));
  } catch (error) {
    showError(error);
  }
}

async function refresh(): Promise<void> {
  if (api === null) return;
  try {
    const [sessions, users] = await Promise.all([api<SessionView[]>("GET", "/admin/sessions"), api<UserView[]>("GET", "/admin/users")]);
    renderSessions(sessions);
    renderUsers(users);
  } catch (error) {
    showError(error);
  }
}

export function startAdmin(options: AdminPanelOptions): void {
  stopAdmin();
  api = options.api;
  $("admin-panel").hidden = false;
  // The /admin namespace pushes the session list whenever a socket connects or disconnects.
  const live = options.openSocket();
  socket = live;
  live.on("connect", () => live.emit("sessions", null, renderSessions));
  live.on("admin:sessions", renderSessions);
  live.on("connect_error", (error) => showError(new Error(`Live updates: ${describe(error.message)}`)));
  // Users, and expiries moved forward by in-band refreshes, are polled.
  timer = window.setInterval(() => void refresh(), 5000);
  metricsTimer = window.setInterval(() => void refreshMetrics(), 2000);
  void refresh();
  void refreshMetrics();
}

export function stopAdmin(): void {
  window.clearInterval(timer);
  window.clearInterval(metricsTimer);
  previousMetrics = null;
  socket?.disconnect();
  socket = api = null;
  shownSessions = shownUsers = "";
  $("admin-sessions").replaceChildren();
  $("admin-users").replaceChildren();
  for (const id of ["metrics-auth", "metrics-sockets", "metrics-keys"]) $(id).replaceChildren();
  $("admin-panel").hidden = true;
}

// Disable / Enable / Disconnect: one listener for every row's buttons.
$("admin-panel").addEventListener("click", (event) => {
  const target = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-action]");
  if (target === null || api === null) return;
  const { action, userId, socketId } = target.dataset;
  const path = action === "disconnect" ? `/admin/sessions/${encodeURIComponent(socketId ?? "")}/disconnect` : `/admin/users/${userId}/${action}`;
  target.disabled = true;
  api("POST", path)
    .then(() => showError(null), showError)
    .finally(() => void refresh());
});
