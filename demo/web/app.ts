/// <reference lib="dom" />
/**
 * The demo page: signs in with the identity provider (./oidc.ts), then uses
 * the DPoP-bound access token for the app's HTTP API (`Authorization: DPoP`
 * plus a proof by the page's key, through `key.fetch`) and its Socket.IO
 * namespaces (`connectWithOidc` with `dpop: key`: a proof in every handshake,
 * and in the answer to the server's `oidc:expiring`, a fresh token handed
 * over on the same connection).
 */
import { connectWithOidc, type OidcClientToServerEvents, type OidcServerToClientEvents } from "ioserver-oidc/client";
import type { Socket } from "socket.io-client";
import { startAdmin, stopAdmin, type AdminSocket } from "./admin.js";
import { $, time } from "./dom.js";
import { ApiError, describe } from "./errors.js";
import { OidcClient, OidcError, type OidcSettings } from "./oidc.js";
// The server's own wire types (type-only: nothing of the server reaches the page's bundle).
import type { MeView as Me } from "../app/ApiController.js";
import type { ChatMessage } from "../app/ChatService.js";

/** The protocol's events plus the chat's own. */
type ChatSocket = Socket<
  OidcServerToClientEvents & {
    "chat:message": (message: ChatMessage) => void;
    "chat:system": (message: { text: string; at: number }) => void;
  },
  OidcClientToServerEvents & {
    message: (data: { text: string }, ack: (reply: { ok: boolean; error?: string }) => void) => void;
  }
>;

let client: OidcClient;
let me: Me | null = null;
let chat: ChatSocket | null = null;
let retryTimer: number | undefined;

function setStatus(state: string, text: string, code = ""): void {
  const status = $("status");
  status.dataset.state = state;
  status.dataset.code = code;
  status.textContent = text;
  // Signed in, but refused or revoked: the client does not retry by itself.
  $("reconnect").hidden = !["error", "revoked", "expired"].includes(state);
}

/**
 * Calls the app's HTTP API with the current access token: `Authorization:
 * DPoP <token>` and a `DPoP` proof for this method and URL, signed by the key
 * the token is bound to (the server refuses the token without it).
 */
async function api<T>(method: "GET" | "POST", path: string): Promise<T> {
  const token = await client.getAccessToken();
  const response = await client.dpopKey.fetch(new URL(path, location.origin), { method, accessToken: token });
  const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
  if (response.ok) return body as T;
  // ioserver-oidc's refusals carry a `code`; the app's own errors (404, 409…) a message.
  if (body.code !== undefined) throw new ApiError(body.code, response.status);
  throw new ApiError(`HTTP_${response.status}`, response.status, body.message ?? `The server answered ${response.status}.`);
}

/**
 * Why refresh in band: a Socket.IO connection is authenticated once, at the
 * handshake. Reconnecting every two minutes with a new token would drop the
 * socket id, its rooms and any event in flight. Instead the server asks for a
 * fresh token (`oidc:expiring`), verifies it on the same connection — roles
 * may change, a disabled user is cut off — and disconnects a socket whose
 * token runs out.
 */
function connect<S>(namespace: string): S {
  // Same origin as the page: IOServer's default CORS needs nothing more.
  return connectWithOidc(`${location.origin}/${namespace}`, {
    // Called on every connect, reconnect and oidc:expiring: refreshes the
    // token first when it is about to expire, so the server always gets a live one.
    getToken: () => client.getAccessToken(),
    // Every handshake and every in-band refresh carries a proof by this key
    // (GET <origin>/socket.io/, with the token's hash): a token copied out of
    // the page opens no socket.
    dpop: client.dpopKey,
    onRefreshed: () => {
      if (namespace === "chat") $("socket-refreshes").textContent = String(Number($("socket-refreshes").textContent) + 1);
    },
    onRefreshFailed: (code) => {
      if (namespace === "chat" && client.signedIn) setStatus("warning", `Could not refresh the token on the connection: ${describe(code)}`, code);
    },
  }) as unknown as S;
}

// ---- chat -------------------------------------------------------------------

function addMessage(kind: "message" | "system", text: string, at: number, from?: ChatMessage): void {
  const item = document.createElement("li");
  item.dataset.kind = kind;
  if (from !== undefined) {
    item.dataset.userId = from.userId;
    if (from.userId === me?.userId) item.classList.add("mine");
    const author = document.createElement("strong");
    author.textContent = from.from;
    item.append(author, " ");
  }
  const stamp = document.createElement("time");
  stamp.textContent = time(at);
  item.append(text, " ", stamp);
  const list = $("messages");
  list.append(item);
  while (list.children.length > 200) list.firstElementChild?.remove();
  list.scrollTop = list.scrollHeight;
}

function setChatEnabled(enabled: boolean): void {
  $<HTMLInputElement>("chat-input").disabled = !enabled;
  $<HTMLButtonElement>("chat-send").disabled = !enabled;
}

function connectChat(): void {
  const socket = connect<ChatSocket>("chat");
  chat = socket;
  setStatus("connecting", "Connecting to the chat…");
  socket.on("connect", () => {
    window.clearTimeout(retryTimer);
    $("socket-id").textContent = socket.id ?? "–";
    $("socket-since").textContent = time(Date.now());
    $("socket-refreshes").textContent = "0";
    setChatEnabled(true);
    setStatus("connected", `Connected to /chat as ${me?.name ?? me?.userId}.`);
  });
  socket.on("connect_error", (error) => {
    setChatEnabled(false);
    if (socket.active) {
      // A network problem: socket.io-client keeps retrying on its own.
      setStatus("connecting", "Cannot reach the server. Retrying…");
      return;
    }
    // The server refused the handshake: err.message is the ioserver-oidc code.
    const code = error.message;
    if (code === "ERR_AUTH_UNAVAILABLE") retryTimer = window.setTimeout(() => socket.connect(), 5000);
    setStatus("error", describe(code), code);
  });
  socket.on("disconnect", (reason) => {
    setChatEnabled(false);
    if (reason === "io client disconnect" || reason === "io server disconnect") return; // ours, or explained by oidc:* below
    setStatus("connecting", "Connection lost. Reconnecting…");
  });
  socket.on("oidc:expired", () => setStatus("expired", "Your session expired: the access token was not refreshed in time.", "ERR_AUTH_TOKEN_EXPIRED"));
  socket.on("oidc:revoked", ({ reason }) =>
    setStatus("revoked", `Your session was revoked${reason ? `: ${reason}` : "."}`, "ERR_AUTH_REVOKED"),
  );
  socket.on("chat:message", (message) => addMessage("message", message.text, message.at, message));
  socket.on("chat:system", (message) => addMessage("system", message.text, message.at));
}

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("chat-input");
  const text = input.value.trim();
  if (text === "" || chat === null) return;
  chat
    .timeout(5000)
    .emitWithAck("message", { text })
    .then(
      (reply: { ok: boolean; error?: string }) => {
        if (reply.ok) input.value = "";
        else addMessage("system", `Not sent: ${reply.error ?? "refused"}`, Date.now());
      },
      () => addMessage("system", "Not sent: the server did not answer.", Date.now()),
    );
});

// ---- session: identity, sockets, sign-out -----------------------------------

function stopSockets(): void {
  window.clearTimeout(retryTimer);
  chat?.disconnect();
  chat = null;
  setChatEnabled(false);
  stopAdmin();
}

/** Loads the identity from the API, then opens the sockets. Also the Reconnect button. */
async function startSession(): Promise<void> {
  stopSockets();
  setStatus("connecting", "Loading your profile…");
  try {
    me = await api<Me>("GET", "/api/me");
  } catch (error) {
    // The refresh token was refused (e.g. the provider restarted): the page signed itself out.
    if (!client.signedIn) return setStatus("signed-out", "Your sign-in has ended. Sign in again.");
    const code = error instanceof ApiError || error instanceof OidcError ? error.code : "";
    setStatus("error", error instanceof Error ? error.message : String(error), code);
    return;
  }
  $("me-name").textContent = me.name ?? "(no name)";
  $("me-email").textContent = me.email ?? "(no email)";
  $("me-roles").textContent = me.roles.join(", ") || "(none)";
  $("me-permissions").textContent = me.permissions.join(", ") || "(none)";
  $("me-id").textContent = `${me.userId} (sub ${me.sub})`;
  $("whoami").textContent = me.name ?? me.sub;
  connectChat();
  if (me.roles.includes("admin")) startAdmin({ api, openSocket: () => connect<AdminSocket>("admin") });
}

function render(): void {
  const signedIn = client.signedIn;
  $("signin").hidden = signedIn;
  $("signout").hidden = !signedIn;
  $("welcome").hidden = signedIn;
  for (const id of ["identity", "token", "chat"]) $(id).hidden = !signedIn;
  // The RFC 7638 thumbprint of the page's DPoP key: the `cnf.jkt` of its tokens.
  $("token-jkt").textContent = signedIn ? client.dpopKey.jkt : "–";
  if (!signedIn) {
    $("whoami").textContent = "";
    $("messages").replaceChildren();
    me = null;
  }
  tick();
}

/** Once a second: the token countdown. */
function tick(): void {
  const expiresAt = client.expiresAt;
  $("token-expires").textContent = expiresAt === null ? "–" : String(Math.max(0, Math.round((expiresAt - Date.now()) / 1000)));
  $("refresh-count").textContent = String(client.refreshCount);
}

function signOut(message = "Signed out."): void {
  me = null;
  stopSockets();
  client.signOut();
  setStatus("signed-out", message);
}

async function main(): Promise<void> {
  const settings = (await (await fetch("/config.json")).json()) as OidcSettings;
  try {
    client = await OidcClient.create(settings);
  } catch {
    setStatus("idp-unreachable", `Cannot reach the identity provider at ${settings.issuer}. Is it running? Reload to retry.`);
    return;
  }
  client.onChange = () => {
    // A refresh that failed for good (invalid_grant) signs the page out.
    if (!client.signedIn && me !== null) signOut("Your sign-in has ended. Sign in again.");
    render();
  };
  $("signin").addEventListener("click", () => void client.signIn());
  $("signout").addEventListener("click", () => signOut());
  $("reconnect").addEventListener("click", () => void startSession());
  window.setInterval(tick, 1000);

  if (location.pathname === "/callback") {
    try {
      await client.handleCallback(new URL(location.href));
    } catch (error) {
      const code = error instanceof OidcError ? error.code : "";
      setStatus("signin-failed", `Sign-in failed: ${error instanceof Error ? error.message : String(error)}`, code);
    }
    // Drop ?code=…&state=… from the address bar and the history.
    history.replaceState(null, "", "/");
  }
  render();
  if (client.signedIn) await startSession();
  else if ($("status").dataset.state === "starting") setStatus("signed-out", "Not signed in.");
}

main().catch((error: unknown) => setStatus("error", `The page failed to start: ${String(error)}`));
