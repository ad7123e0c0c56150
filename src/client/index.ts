/**
 * `ioserver-oidc/client`: connect a browser or Node Socket.IO client to namespaces guarded by
 * `ioserver-oidc`, sending a fresh access token on every (re)connect and answering the server's
 * `oidc:expiring` notice with an in-band token refresh; and sign DPoP proofs (RFC 9449) for HTTP
 * requests, the Socket.IO handshake and each refresh with a key that never leaves WebCrypto.
 * Depends only on `socket.io-client` and `jose`; browser-safe (no Node modules).
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
 *
 * // DPoP-bound tokens: one key for the session, a proof on every request, handshake and refresh
 * const key = await createDpopKey();
 * const me = await key.fetch("https://api.example.com/me", { accessToken });
 * const bound = connectWithOidc("https://api.example.com/chat", { getToken, dpop: key });
 * ```
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";

import { OIDC_EVENTS } from "../events.js";
import { dpopSocketHtu, type DpopKey } from "./dpop.js";

export { createDpopKey, dpopHtu, dpopSocketHtu, type CreateDpopKeyOptions, type DpopAlgorithm, type DpopCryptoKey, type DpopFetchInit, type DpopKey, type DpopKeyPair, type DpopProofRequest, type DpopPublicJwk, type DpopSocketHtuOptions } from "./dpop.js";

/** Names of the protocol events exchanged with an `ioserver-oidc` server. */
export { OIDC_EVENTS };

/** Payload of `oidc:expiring`: when the current access token expires (epoch ms). */
export interface OidcExpiringPayload {
  expiresAt: number;
}

/**
 * Acknowledgement of `oidc:refresh`: the new expiry (epoch ms), or the refusal code (with the
 * nonce to use when the code is `ERR_AUTH_DPOP_NONCE`).
 */
export type OidcRefreshAck = { ok: true; expiresAt: number } | { ok: false; code: string; dpopNonce?: string };

/** Payload of `oidc:refresh`: the new access token, and a DPoP proof for it when the connection is DPoP-bound. */
export interface OidcRefreshPayload {
  token: string;
  dpop?: string;
}

/** Payload of `oidc:expired`, sent just before the server disconnects the socket. */
export interface OidcExpiredPayload {
  code: "ERR_AUTH_TOKEN_EXPIRED";
}

/**
 * Payload of `oidc:revoked`, sent just before the server disconnects the socket:
 * `ERR_AUTH_REVOKED` when the session was revoked (logout, an admin), `ERR_FORBIDDEN`
 * when a refreshed token no longer passes the namespace's guards (a role was removed).
 * A socket restored by connection-state recovery and then refused gets the code of
 * the refusal, as a handshake would (e.g. `ERR_AUTH_TOKEN_INVALID`, `ERR_USER_DISABLED`,
 * `ERR_AUTH_SUBJECT_MISMATCH`, `ERR_AUTH_UNAVAILABLE`).
 */
export interface OidcRevokedPayload {
  code:
    | "ERR_AUTH_REVOKED"
    | "ERR_FORBIDDEN"
    | "ERR_AUTH_TOKEN_REQUIRED"
    | "ERR_AUTH_TOKEN_INVALID"
    | "ERR_AUTH_SUBJECT_MISMATCH"
    | "ERR_AUTH_DPOP_INVALID"
    | "ERR_AUTH_DPOP_NONCE"
    | "ERR_USER_DISABLED"
    | "ERR_USER_PROVISION_FAILED"
    | "ERR_AUTH_MISCONFIGURED"
    | "ERR_AUTH_UNAVAILABLE";
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
  "oidc:refresh": (payload: OidcRefreshPayload, ack: (result: OidcRefreshAck) => void) => void;
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
   * `ERR_REFRESH_TIMEOUT` (no acknowledgement in time), `ERR_TOKEN_UNAVAILABLE` (`getToken` failed)
   * or, with `dpop`, `ERR_DPOP_PROOF_FAILED` (the key could not sign the refresh's proof).
   * After `ERR_FORBIDDEN` (the new token no longer passes the namespace's guards) the server
   * also sends `oidc:revoked` and disconnects; the socket does not reconnect by itself.
   */
  onRefreshFailed?: (code: string) => void;
  /**
   * Send DPoP proofs signed by this key (from {@link createDpopKey}): the handshake's `auth` becomes
   * `{ token, dpop }` (a fresh proof on every connect and reconnect) and each refresh
   * `{ token, dpop }`. The proofs are for `GET` and the engine endpoint's URL (see
   * {@link dpopSocketHtu}), with the `ath` of the token they come with; `getToken` must return tokens
   * bound to this key. A server nonce is remembered on the key per origin: a handshake refused with
   * `ERR_AUTH_DPOP_NONCE` is retried once with the nonce it names, and so is a refresh.
   */
  dpop?: DpopKey;
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
 * With `dpop`, every handshake and refresh carries a fresh proof by that key. A handshake refused with
 * `ERR_AUTH_DPOP_NONCE` (the server wants its nonce in the proof) is retried once at once with the
 * nonce from `err.data.dpopNonce`; the app's `connect_error` listeners still see that first refusal.
 * A refresh whose proof could not be signed is reported as `ERR_DPOP_PROOF_FAILED`.
 *
 * @throws {TypeError} if `getToken` is not a function, `refreshTimeout` is not a positive number,
 * `auth` is given (connectWithOidc owns it), `dpop` is not a key from `createDpopKey`, or, with `dpop`,
 * `url` is not one the proof's `htu` can be derived from.
 */
export function connectWithOidc(url: string, options: ConnectWithOidcOptions): OidcClientSocket {
  if (typeof options?.getToken !== "function") {
    throw new TypeError("connectWithOidc: options.getToken must be a function returning the access token");
  }
  const { getToken, refreshTimeout = 10_000, onRefreshed, onRefreshFailed, dpop, ...ioOptions } = options;
  if (ioOptions.auth !== undefined) {
    throw new TypeError(
      "connectWithOidc: the `auth` option is not allowed: connectWithOidc owns `auth` and fills it with getToken()'s token",
    );
  }
  if (typeof refreshTimeout !== "number" || !(refreshTimeout > 0)) {
    throw new TypeError("connectWithOidc: options.refreshTimeout must be a positive number of milliseconds");
  }
  if (dpop !== undefined && (dpop === null || typeof dpop !== "object" || typeof dpop.proof !== "function" || typeof dpop.setNonce !== "function")) {
    throw new TypeError("connectWithOidc: options.dpop must be a key from createDpopKey()");
  }
  // The engine endpoint every namespace of this URL shares: what each proof's htu names.
  const htu = dpop === undefined ? "" : dpopSocketHtu(url, { path: ioOptions.path, addTrailingSlash: ioOptions.addTrailingSlash });
  // The nonce is the one remembered on the key for the endpoint's origin, if any.
  const sign = (token: string): Promise<string> => dpop!.proof({ method: "GET", url: htu, accessToken: token });
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
        (token) => {
          if (dpop === undefined) return cb({ token });
          // Without a proof a bound token is refused; the refusal reaches connect_error.
          sign(token).then(
            (proof) => cb({ token, dpop: proof }),
            () => cb({ token }),
          );
        },
        () => cb({}),
      );
    },
  }) as OidcClientSocket;

  if (dpop !== undefined) {
    // A refusal for want of the server's nonce: remember it and connect again, once per run of refusals.
    let retried = false;
    socket.on("connect", () => {
      retried = false;
    });
    socket.on("connect_error", (error: Error & { data?: unknown }) => {
      const nonce = nonceOf(error.data);
      if (nonce === undefined) return;
      dpop.setNonce(htu, nonce);
      if (retried || socket.active) return;
      retried = true;
      socket.connect();
    });
  }

  let refreshing = false;
  const refresh = async (): Promise<void> => {
    let token: string;
    try {
      token = await fetchToken();
    } catch {
      return report(onRefreshFailed, "ERR_TOKEN_UNAVAILABLE");
    }
    let ack: OidcRefreshAck | undefined;
    for (let attempt = 0; ; attempt++) {
      let payload: OidcRefreshPayload = { token };
      if (dpop !== undefined) {
        try {
          payload = { token, dpop: await sign(token) };
        } catch {
          return report(onRefreshFailed, "ERR_DPOP_PROOF_FAILED");
        }
      }
      try {
        ack = (await socket.timeout(refreshTimeout).emitWithAck(OIDC_EVENTS.refresh, payload)) as OidcRefreshAck | undefined;
      } catch {
        return report(onRefreshFailed, "ERR_REFRESH_TIMEOUT");
      }
      const nonce = dpop === undefined ? undefined : nonceOf(ack);
      if (nonce === undefined) break;
      dpop!.setNonce(htu, nonce);
      if (attempt > 0) break;
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

/** The nonce a `ERR_AUTH_DPOP_NONCE` refusal (`connect_error` data or refresh ack) names, if it is one. */
function nonceOf(refusal: unknown): string | undefined {
  if (typeof refusal !== "object" || refusal === null) return undefined;
  const { code, dpopNonce } = refusal as { code?: unknown; dpopNonce?: unknown };
  return code === "ERR_AUTH_DPOP_NONCE" && typeof dpopNonce === "string" && dpopNonce !== "" ? dpopNonce : undefined;
}
