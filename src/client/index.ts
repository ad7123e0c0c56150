/**
 * `ioserver-oidc/client`: connect a browser or Node Socket.IO client to namespaces guarded by
 * `ioserver-oidc`, sending a fresh access token on every (re)connect and answering the server's
 * `oidc:expiring` notice with an in-band token refresh. Depends only on `socket.io-client`.
 *
 * @example
 * ```ts
 * import { connectWithOidc } from "ioserver-oidc/client";
 *
 * const socket = connectWithOidc("https://api.example.com/chat", {
 *   getToken: () => auth.getAccessToken(), // string or Promise<string>, called on every (re)connect and refresh
 *   onRefreshFailed: (code) => console.warn("token refresh failed", code),
 * });
 * socket.on("connect_error", (err) => console.warn(err.message)); // e.g. "ERR_AUTH_TOKEN_INVALID"
 * socket.on("oidc:revoked", ({ reason }) => showSignedOut(reason));
 * ```
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

import { OIDC_EVENTS } from "../events.js";

export { createDpopKey, dpopHtu, type CreateDpopKeyOptions, type DpopAlgorithm, type DpopFetchInit, type DpopKey, type DpopKeyPair, type DpopProofRequest } from "./dpop.js";

/** Names of the protocol events exchanged with an `ioserver-oidc` server. */
export { OIDC_EVENTS };

/** Payload of `oidc:expiring`: when the current access token expires (epoch ms). */
export interface OidcExpiringPayload {
  expiresAt: number;
}

/** Acknowledgement of `oidc:refresh`: the new expiry (epoch ms), or the refusal code. */
export type OidcRefreshAck = { ok: true; expiresAt: number } | { ok: false; code: string };

/** Payload of `oidc:expired`, sent just before the server disconnects the socket. */
export interface OidcExpiredPayload {
  code: "ERR_AUTH_TOKEN_EXPIRED";
}

/**
 * Payload of `oidc:revoked`, sent just before the server disconnects the socket:
 * `ERR_AUTH_REVOKED` when the session was revoked (logout, an admin), `ERR_FORBIDDEN`
 * when a refreshed token no longer passes the namespace's guards (a role was removed).
 */
export interface OidcRevokedPayload {
  code: "ERR_AUTH_REVOKED" | "ERR_FORBIDDEN";
  reason?: string;
}

/** Server → client events of the protocol; intersect with your own event map if needed. */
export interface OidcServerToClientEvents {
  "oidc:expiring": (payload: OidcExpiringPayload) => void;
  "oidc:expired": (payload: OidcExpiredPayload) => void;
  "oidc:revoked": (payload: OidcRevokedPayload) => void;
}

/** Client → server events of the protocol; intersect with your own event map if needed. */
export interface OidcClientToServerEvents {
  "oidc:refresh": (payload: { token: string }, ack: (result: OidcRefreshAck) => void) => void;
}

/** Options of {@link connectWithOidc}: any `io()` option except `auth`, plus the token hooks. */
export type ConnectWithOidcOptions = Partial<ManagerOptions & SocketOptions> & {
  /** Returns the current access token; called on every connect, reconnect and refresh. */
  getToken: () => string | Promise<string>;
  /** How long to wait for the `oidc:refresh` acknowledgement, in ms (default 10000). */
  refreshTimeout?: number;
  /** Called with the new expiry (epoch ms) after the server accepted a refreshed token. */
  onRefreshed?: (expiresAt: number) => void;
  /**
   * Called when a refresh failed: the server's code (e.g. `ERR_AUTH_TOKEN_INVALID`),
   * `ERR_REFRESH_TIMEOUT` (no acknowledgement in time) or `ERR_TOKEN_UNAVAILABLE` (`getToken` failed).
   * After `ERR_FORBIDDEN` (the new token no longer passes the namespace's guards) the server
   * also sends `oidc:revoked` and disconnects; the socket does not reconnect by itself.
   */
  onRefreshFailed?: (code: string) => void;
};

/**
 * The socket returned by {@link connectWithOidc}. To add your own events, cast it:
 * `socket as Socket<OidcServerToClientEvents & MyListen, OidcClientToServerEvents & MyEmit>`.
 */
export type OidcClientSocket = Socket<OidcServerToClientEvents, OidcClientToServerEvents>;

/**
 * Open a Socket.IO connection authenticated with an OIDC access token. The token is sent through
 * the `auth` callback (a fresh `getToken()` on every connect and reconnect; if it fails the handshake
 * carries no token and the server refuses it with `ERR_AUTH_TOKEN_REQUIRED`), and each
 * `oidc:expiring` notice is answered with `oidc:refresh` (one refresh in flight at a time).
 * Errors thrown by `onRefreshed` / `onRefreshFailed` are ignored.
 *
 * @throws {TypeError} if `getToken` is not a function, `refreshTimeout` is not a positive number,
 * or `auth` is given (connectWithOidc owns it).
 */
export function connectWithOidc(url: string, options: ConnectWithOidcOptions): OidcClientSocket {
  if (typeof options?.getToken !== "function") {
    throw new TypeError("connectWithOidc: options.getToken must be a function returning the access token");
  }
  const { getToken, refreshTimeout = 10_000, onRefreshed, onRefreshFailed, ...ioOptions } = options;
  if (ioOptions.auth !== undefined) {
    throw new TypeError(
      "connectWithOidc: the `auth` option is not allowed: connectWithOidc owns `auth` and fills it with getToken()'s token",
    );
  }
  if (typeof refreshTimeout !== "number" || !(refreshTimeout > 0)) {
    throw new TypeError("connectWithOidc: options.refreshTimeout must be a positive number of milliseconds");
  }
  const fetchToken = async (): Promise<string> => {
    const token = await getToken();
    if (typeof token !== "string" || token === "") throw new TypeError("getToken() did not return a token");
    return token;
  };
  const report = <T>(callback: ((value: T) => void) | undefined, value: T): void => {
    try {
      callback?.(value);
    } catch {
      // a failing user callback must not break the socket's event handling
    }
  };

  const socket = io(url, {
    ...ioOptions,
    auth: (cb) => {
      fetchToken().then(
        (token) => cb({ token }),
        () => cb({}),
      );
    },
  }) as OidcClientSocket;

  let refreshing = false;
  const refresh = async (): Promise<void> => {
    let token: string;
    try {
      token = await fetchToken();
    } catch {
      return report(onRefreshFailed, "ERR_TOKEN_UNAVAILABLE");
    }
    let ack: OidcRefreshAck | undefined;
    try {
      ack = (await socket.timeout(refreshTimeout).emitWithAck(OIDC_EVENTS.refresh, { token })) as OidcRefreshAck | undefined;
    } catch {
      return report(onRefreshFailed, "ERR_REFRESH_TIMEOUT");
    }
    if (ack?.ok === true && typeof ack.expiresAt === "number") report(onRefreshed, ack.expiresAt);
    else report(onRefreshFailed, ack?.ok === false && typeof ack.code === "string" ? ack.code : "ERR_REFRESH_FAILED");
  };
  socket.on(OIDC_EVENTS.expiring, () => {
    if (refreshing) return;
    refreshing = true;
    refresh()
      .catch(() => undefined)
      .finally(() => {
        refreshing = false;
      });
  });
  return socket;
}
