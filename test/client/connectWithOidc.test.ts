import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { Server, type Socket as ServerSocket } from "socket.io";
import type { Socket } from "socket.io-client";
import {
  OIDC_EVENTS,
  connectWithOidc,
  type ConnectWithOidcOptions,
  type OidcClientSocket,
  type OidcClientToServerEvents,
  type OidcRefreshAck,
  type OidcServerToClientEvents,
} from "../../src/client/index.js";
import { waitFor } from "../helpers/wait.js";


type TestSocket = ServerSocket<OidcClientToServerEvents, OidcServerToClientEvents>;

/**
 * A stand-in for the package's server: records handshake tokens (refusing a missing one like the
 * real middleware), records refresh tokens, and answers `oidc:refresh` with `reply` (undefined = never ack).
 */
async function startServer(reply: (token: string) => OidcRefreshAck | undefined = () => ({ ok: true, expiresAt: 1 })) {
  const http = createServer();
  const io = new Server<OidcClientToServerEvents, OidcServerToClientEvents>(http, { transports: ["websocket"] });
  const handshakeTokens: unknown[] = [];
  const refreshTokens: string[] = [];
  let current: TestSocket | undefined;
  io.use((socket, next) => {
    const token: unknown = socket.handshake.auth.token;
    handshakeTokens.push(token);
    if (token !== undefined) return next();
    const code = "ERR_AUTH_TOKEN_REQUIRED";
    next(Object.assign(new Error(code), { data: { code, message: "an access token is required" } }));
  });
  io.on("connection", (socket) => {
    current = socket;
    socket.on(OIDC_EVENTS.refresh, (payload, ack) => {
      refreshTokens.push(payload.token);
      const result = reply(payload.token);
      if (result) ack(result);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    handshakeTokens,
    refreshTokens,
    socket: () => current!,
    close: () => io.close(),
  };
}
type TestServer = Awaited<ReturnType<typeof startServer>>;

/** Start a server and a connected client, run `body`, then always close both. */
async function withConnection(
  options: ConnectWithOidcOptions,
  body: (client: OidcClientSocket, server: TestServer) => Promise<void>,
  reply?: (token: string) => OidcRefreshAck | undefined,
) {
  const server = await startServer(reply);
  const client = connectWithOidc(server.url, { transports: ["websocket"], reconnection: false, ...options });
  try {
    await waitFor("connect", () => client.connected, 3_000, 10);
    await body(client, server);
  } finally {
    client.disconnect();
    await server.close();
  }
}

function counter(prefix: string) {
  let calls = 0;
  return Object.assign(() => `${prefix}-${++calls}`, { calls: () => calls });
}

describe("connectWithOidc: handshake", () => {
  it("sends getToken()'s token, and a fresh one on reconnect; its own options are not passed to io()", async () => {
    const getToken = counter("token");
    await withConnection({ getToken, reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 }, async (client, server) => {
      assert.deepEqual(server.handshakeTokens, ["token-1"]);
      for (const key of ["getToken", "refreshTimeout", "onRefreshed", "onRefreshFailed"]) assert.ok(!(key in client.io.opts), key);
      assert.equal((client.io.opts as Record<string, unknown>).reconnectionDelay, 50, "other options pass through");
      server.socket().conn.close();
      await waitFor("reconnect", () => server.handshakeTokens.length === 2 && client.connected, 3_000, 10);
      assert.deepEqual(server.handshakeTokens, ["token-1", "token-2"]);
      assert.equal(getToken.calls(), 2);
    });
  });

  for (const [label, getToken] of [
    ["rejects", () => Promise.reject(new Error("no session"))],
    ["throws", () => { throw new Error("no session"); }],
  ] as const) {
    it(`connects without a token when getToken ${label}, with no unhandled rejection`, async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on("unhandledRejection", onUnhandled);
      const server = await startServer();
      const client = connectWithOidc(server.url, { getToken, transports: ["websocket"], reconnection: false });
      try {
        const errors: (Error & { data?: unknown })[] = [];
        client.on("connect_error", (error) => errors.push(error));
        await waitFor("connect_error", () => errors.length > 0, 3_000, 10);
        const error = errors[0]!;
        assert.deepEqual(server.handshakeTokens, [undefined]);
        assert.equal(error.message, "ERR_AUTH_TOKEN_REQUIRED");
        assert.deepEqual(error.data, { code: "ERR_AUTH_TOKEN_REQUIRED", message: "an access token is required" });
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.deepEqual(unhandled, []);
      } finally {
        process.off("unhandledRejection", onUnhandled);
        client.disconnect();
        await server.close();
      }
    });
  }
});

describe("connectWithOidc: refresh on oidc:expiring", () => {
  it("emits oidc:refresh with a fresh token and reports the server's expiresAt", async () => {
    const refreshed: number[] = [];
    const getToken = counter("token");
    const onRefreshFailed = (code: string) => assert.fail(`unexpected refresh failure ${code}`);
    await withConnection(
      { getToken, onRefreshed: (expiresAt) => refreshed.push(expiresAt), onRefreshFailed },
      async (_client, server) => {
        server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
        await waitFor("onRefreshed", () => refreshed.length === 1, 3_000, 10);
        assert.deepEqual(server.refreshTokens, ["token-2"]);
        assert.deepEqual(refreshed, [1_700_000_000_000]);
      },
      () => ({ ok: true, expiresAt: 1_700_000_000_000 }),
    );
  });

  it("reports the server's refusal code", async () => {
    const failures: string[] = [];
    await withConnection(
      { getToken: () => "t", onRefreshed: () => assert.fail("unexpected onRefreshed"), onRefreshFailed: (code) => failures.push(code) },
      async (_client, server) => {
        server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
        await waitFor("onRefreshFailed", () => failures.length === 1, 3_000, 10);
        assert.deepEqual(failures, ["ERR_AUTH_SUBJECT_MISMATCH"]);
      },
      () => ({ ok: false, code: "ERR_AUTH_SUBJECT_MISMATCH" }),
    );
  });

  it("reports ERR_REFRESH_TIMEOUT when no ack arrives, with one refresh in flight at a time", async () => {
    const failures: string[] = [];
    await withConnection(
      { getToken: async () => "t", refreshTimeout: 200, onRefreshFailed: (code) => failures.push(code) },
      async (_client, server) => {
        const started = Date.now();
        server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: started + 1_000 });
        server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: started + 1_000 });
        await waitFor("onRefreshFailed", () => failures.length === 1, 3_000, 10);
        assert.deepEqual(failures, ["ERR_REFRESH_TIMEOUT"]);
        assert.ok(Date.now() - started >= 190, "waited for refreshTimeout");
        assert.equal(server.refreshTokens.length, 1, "the second oidc:expiring was ignored");
        server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: started + 1_000 });
        await waitFor("second onRefreshFailed", () => failures.length === 2, 3_000, 10);
        assert.equal(server.refreshTokens.length, 2, "a later notice starts a new refresh");
      },
      () => undefined,
    );
  });

  it("reports ERR_TOKEN_UNAVAILABLE when getToken rejects during a refresh", async () => {
    const failures: string[] = [];
    let calls = 0;
    const getToken = () => (++calls === 1 ? Promise.resolve("t") : Promise.reject(new Error("refresh token expired")));
    await withConnection({ getToken, onRefreshFailed: (code) => failures.push(code) }, async (client, server) => {
      server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
      await waitFor("onRefreshFailed", () => failures.length === 1, 3_000, 10);
      assert.deepEqual(failures, ["ERR_TOKEN_UNAVAILABLE"]);
      assert.deepEqual(server.refreshTokens, [], "nothing was sent");
      assert.ok(client.connected);
    });
  });
});

describe("connectWithOidc: server notices", () => {
  for (const [event, payload] of [
    [OIDC_EVENTS.expired, { code: "ERR_AUTH_TOKEN_EXPIRED" }],
    [OIDC_EVENTS.revoked, { code: "ERR_AUTH_REVOKED", reason: "signed out elsewhere" }],
  ] as const) {
    it(`${event} reaches app listeners before the server disconnects`, async () => {
      await withConnection({ getToken: () => "t" }, async (client, server) => {
        const received: unknown[] = [];
        let reason = "";
        client.on(event, (p: unknown) => received.push(p));
        client.on("disconnect", (r) => (reason = r));
        const serverSocket = server.socket();
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- false positive: emit() takes one event's payload, `payload` is the union of two; without `as never` tsc rejects the call
        serverSocket.emit(event, payload as never);
        serverSocket.disconnect(true);
        await waitFor("disconnect", () => reason !== "", 3_000, 10);
        assert.deepEqual(received, [payload]);
        assert.equal(reason, "io server disconnect");
      });
    });
  }

  it("types the protocol events (compile-time check)", () => {
    const check = (socket: OidcClientSocket) => {
      socket.on("oidc:revoked", (p) => p.reason);
      socket.on("oidc:expired", (p) => p.code satisfies "ERR_AUTH_TOKEN_EXPIRED");
      socket.on("oidc:expiring", (p) => p.expiresAt.toFixed());
      // @ts-expect-error the refresh payload needs a string token
      socket.emit("oidc:refresh", { token: 1 }, () => undefined);
      const app = socket as Socket<OidcServerToClientEvents & { chat: (text: string) => void }, OidcClientToServerEvents>;
      app.on("chat", (text) => text.toUpperCase());
      app.on("oidc:revoked", (p) => p.reason);
    };
    assert.equal(typeof check, "function");
  });
});

describe("connectWithOidc: option validation", () => {
  it("throws a TypeError when auth is given", () => {
    assert.throws(
      () => connectWithOidc("http://127.0.0.1:1", { getToken: () => "t", auth: { token: "x" } }),
      (error: unknown) => error instanceof TypeError && /owns `auth`/.test(error.message),
    );
  });

  it("throws a TypeError naming getToken when it is missing", () => {
    for (const options of [{}, { getToken: "t" }, undefined]) {
      assert.throws(
        () => connectWithOidc("http://127.0.0.1:1", options as unknown as ConnectWithOidcOptions),
        (error: unknown) => error instanceof TypeError && /getToken/.test(error.message),
      );
    }
  });
});
