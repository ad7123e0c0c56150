/**
 * `connectWithOidc` with a DPoP key against a stand-in Socket.IO server that
 * checks every proof with the server's own verifier, for `GET` and the URL
 * real socket.io-client opened (Host header and handshake path, as the
 * contract says the server computes it): the htu derivation, a fresh proof
 * per (re)connect, the nonce retry on the handshake and on `oidc:refresh`,
 * and no loop when the server keeps refusing. Plus the htu table.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { decodeJwt } from "jose";
import { Server, type ServerOptions } from "socket.io";
import {
  OIDC_EVENTS,
  connectWithOidc,
  createDpopKey,
  dpopSocketHtu,
  type ConnectWithOidcOptions,
  type DpopKey,
  type OidcClientSocket,
  type OidcClientToServerEvents,
  type OidcServerToClientEvents,
} from "../../src/client/index.js";
import { resolveDpopOptions, type DpopOptions } from "../../src/dpop/dpopOptions.js";
import { isDpopProofError } from "../../src/dpop/DpopProofError.js";
import type { DpopNonceIssuer } from "../../src/dpop/nonceIssuer.js";
import { verifyDpopProof } from "../../src/dpop/verifyDpopProof.js";
import { sleep, waitFor } from "../helpers/wait.js";

describe("dpopSocketHtu: the engine endpoint a Socket.IO client opens", () => {
  const table: [string, Parameters<typeof dpopSocketHtu>[1], string][] = [
    ["https://api.example.com/chat", {}, "https://api.example.com/socket.io/"],
    ["https://api.example.com", {}, "https://api.example.com/socket.io/"],
    ["wss://api.example.com/chat?room=1", {}, "https://api.example.com/socket.io/"],
    ["ws://api.example.com/", {}, "http://api.example.com/socket.io/"],
    ["http://127.0.0.1:3000/admin", {}, "http://127.0.0.1:3000/socket.io/"],
    ["https://api.example.com:443/chat", {}, "https://api.example.com/socket.io/"],
    ["wss://api.example.com:443/chat", {}, "https://api.example.com/socket.io/"],
    ["ws://api.example.com:80/chat", {}, "http://api.example.com/socket.io/"],
    ["wss://api.example.com:80/chat", {}, "https://api.example.com:80/socket.io/"],
    ["http://API.Example.COM:8080/", {}, "http://api.example.com:8080/socket.io/"],
    ["http://[::1]:4000/chat", {}, "http://[::1]:4000/socket.io/"],
    ["https://api.example.com/chat", { path: "/rt" }, "https://api.example.com/rt/"],
    ["https://api.example.com/chat", { path: "/rt/" }, "https://api.example.com/rt/"],
    ["https://api.example.com/chat", { path: "/rt", addTrailingSlash: false }, "https://api.example.com/rt"],
    ["https://api.example.com/chat", { path: "/rt/", addTrailingSlash: false }, "https://api.example.com/rt"],
    ["https://api.example.com/chat", { addTrailingSlash: false }, "https://api.example.com/socket.io"],
    ["https://api.example.com/chat", { path: "/api/v1/socket" }, "https://api.example.com/api/v1/socket/"],
    ["api.example.com/chat", {}, "https://api.example.com/socket.io/"],
    ["//api.example.com/chat", {}, "https://api.example.com/socket.io/"],
  ];
  for (const [url, options, htu] of table) {
    it(`${url} ${JSON.stringify(options)} → ${htu}`, () => {
      assert.equal(dpopSocketHtu(url, options), htu);
    });
  }

  it("a relative URL without a location is a TypeError", () => {
    assert.throws(() => dpopSocketHtu("/chat"), TypeError);
  });
});

type NonceMode = "none" | "required" | "never-satisfied";

interface Handshake {
  url: string;
  token: unknown;
  proof: unknown;
  outcome: string;
}

/**
 * A stand-in for the package's server: each handshake's `auth.dpop` is checked by `verifyDpopProof`
 * for GET and `http://<Host><handshake path>` with the handshake's token and the expected key; a
 * nonce refusal comes back as `ERR_AUTH_DPOP_NONCE` with the nonce, as the contract says. Refresh
 * proofs are checked the same way (same URL, the new token) and answered in the ack.
 */
async function startServer(options: { jkt: string; nonces?: NonceMode; serverOptions?: Partial<ServerOptions> }) {
  const nonces: DpopOptions["nonces"] =
    options.nonces === "required"
      ? true
      : options.nonces === "never-satisfied"
        ? ({ current: (() => { let n = 0; return () => `fresh-${++n}`; })(), check: () => "invalid" } satisfies DpopNonceIssuer)
        : undefined;
  const settings = resolveDpopOptions({ nonces });
  const http = createServer();
  const io = new Server<OidcClientToServerEvents, OidcServerToClientEvents>(http, { transports: ["websocket"], ...options.serverOptions });
  const handshakes: Handshake[] = [];
  const refreshes: { token: string; proof: unknown; outcome: string }[] = [];
  let current: Parameters<Parameters<typeof io.on<"connection">>[1]>[0] | undefined;

  const check = async (proof: unknown, url: string, token: unknown): Promise<{ code: string; dpopNonce?: string } | undefined> => {
    try {
      await verifyDpopProof(proof, { method: "GET", url, accessToken: String(token), expectedJkt: options.jkt }, settings);
      return undefined;
    } catch (error) {
      if (isDpopProofError(error) && error.error === "use_dpop_nonce") return { code: "ERR_AUTH_DPOP_NONCE", dpopNonce: error.nonce! };
      return { code: isDpopProofError(error) && error.error === "invalid_token" ? "ERR_AUTH_TOKEN_INVALID" : "ERR_AUTH_DPOP_INVALID" };
    }
  };

  // The default namespace and /chat alike (a namespace is not part of the htu).
  const namespaces = [io.of("/"), io.of("/chat")];
  for (const namespace of namespaces) namespace.use((socket, next) => {
    const auth = socket.handshake.auth as { token?: unknown; dpop?: unknown };
    const url = `http://${socket.handshake.headers.host}${socket.handshake.url}`;
    void check(auth.dpop, url, auth.token).then((refusal) => {
      handshakes.push({ url, token: auth.token, proof: auth.dpop, outcome: refusal?.code ?? "ok" });
      if (refusal === undefined) {
        (socket.data as { url?: string }).url = url;
        return next();
      }
      next(Object.assign(new Error(refusal.code), { data: { ...refusal, message: "refused" } }));
    });
  });
  for (const namespace of namespaces) namespace.on("connection", (socket) => {
    current = socket;
    socket.on(OIDC_EVENTS.refresh, (payload, ack) => {
      void check(payload.dpop, (socket.data as { url: string }).url, payload.token).then((refusal) => {
        refreshes.push({ token: payload.token, proof: payload.dpop, outcome: refusal?.code ?? "ok" });
        ack(refusal === undefined ? { ok: true, expiresAt: 1_700_000_000_000 } : ({ ok: false, ...refusal }));
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    port: (http.address() as AddressInfo).port,
    handshakes,
    refreshes,
    socket: () => current!,
    close: () => io.close(),
  };
}

/** A getToken that returns token-1, token-2, … */
function tokens() {
  let calls = 0;
  return () => `token-${++calls}`;
}

async function withClient(
  key: DpopKey,
  server: Awaited<ReturnType<typeof startServer>>,
  url: string,
  options: Partial<ConnectWithOidcOptions>,
  body: (client: OidcClientSocket) => Promise<void>,
): Promise<void> {
  const client = connectWithOidc(url, { getToken: tokens(), dpop: key, transports: ["websocket"], reconnection: false, ...options });
  try {
    await body(client);
  } finally {
    client.disconnect();
    await server.close();
  }
}

describe("connectWithOidc with a DPoP key", () => {
  for (const [label, path, trailing] of [
    ["default path", undefined, undefined],
    ["custom path", "/realtime", undefined],
    ["custom path with a trailing slash", "/realtime/", undefined],
    ["custom path, addTrailingSlash false", "/realtime", false],
  ] as const) {
    it(`${label}: the handshake proof names the URL socket.io-client opened, and the server's verifier accepts it`, async () => {
      const key = await createDpopKey();
      const serverOptions: Partial<ServerOptions> = { ...(path ? { path } : {}), ...(trailing === false ? { addTrailingSlash: false } : {}) };
      const server = await startServer({ jkt: key.jkt, serverOptions });
      const url = `ws://127.0.0.1:${server.port}/chat`;
      await withClient(key, server, url, { ...(path ? { path } : {}), ...(trailing === false ? { addTrailingSlash: false } : {}) }, async (client) => {
        await waitFor("connect", () => client.connected, 5_000, 10);
        assert.equal(server.handshakes.length, 1);
        assert.equal(server.handshakes[0]!.outcome, "ok");
        assert.equal(server.handshakes[0]!.token, "token-1");
        const claims = decodeJwt(server.handshakes[0]!.proof as string);
        assert.equal(claims.htm, "GET");
        assert.equal(claims.htu, dpopSocketHtu(url, { path, addTrailingSlash: trailing }));
        assert.equal(claims.htu, `http://127.0.0.1:${server.port}${(path ?? "/socket.io").replace(/\/$/, "")}${trailing === false ? "" : "/"}`);
      });
    });
  }

  it("every reconnect sends a fresh proof for the fresh token", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: key.jkt });
    await withClient(key, server, `http://127.0.0.1:${server.port}/`, { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 }, async (client) => {
      await waitFor("connect", () => client.connected, 5_000, 10);
      server.socket().conn.close();
      await waitFor("reconnect", () => server.handshakes.length === 2 && client.connected, 5_000, 10);
      assert.deepEqual(server.handshakes.map((handshake) => [handshake.token, handshake.outcome]), [["token-1", "ok"], ["token-2", "ok"]]);
      assert.notEqual(decodeJwt(server.handshakes[0]!.proof as string).jti, decodeJwt(server.handshakes[1]!.proof as string).jti);
    });
  });

  it("a proof by another key than the token's is refused (the stand-in is not blind)", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: (await createDpopKey()).jkt });
    await withClient(key, server, `http://127.0.0.1:${server.port}/`, {}, async (client) => {
      const errors: (Error & { data?: unknown })[] = [];
      client.on("connect_error", (error) => errors.push(error));
      await waitFor("connect_error", () => errors.length === 1, 5_000, 10);
      assert.equal(errors[0]!.message, "ERR_AUTH_TOKEN_INVALID");
      assert.equal(server.handshakes.length, 1);
    });
  });

  it("ERR_AUTH_DPOP_NONCE on the handshake: one retry with the server's nonce connects; the nonce is kept for later proofs", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: key.jkt, nonces: "required" });
    const url = `http://127.0.0.1:${server.port}/chat`;
    await withClient(key, server, url, {}, async (client) => {
      const errors: (Error & { data?: unknown })[] = [];
      client.on("connect_error", (error) => errors.push(error));
      await waitFor("connect", () => client.connected, 5_000, 10);
      assert.deepEqual(server.handshakes.map((handshake) => handshake.outcome), ["ERR_AUTH_DPOP_NONCE", "ok"]);
      assert.deepEqual(errors.map((error) => error.message), ["ERR_AUTH_DPOP_NONCE"], "the app sees the first refusal");
      const nonce = (errors[0]!.data as { dpopNonce: string }).dpopNonce;
      assert.equal(decodeJwt(server.handshakes[1]!.proof as string).nonce, nonce);
      assert.equal(key.getNonce(url), nonce);
    });
  });

  it("a server that keeps refusing the nonce gets one retry, not a loop", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: key.jkt, nonces: "never-satisfied" });
    await withClient(key, server, `http://127.0.0.1:${server.port}/`, {}, async (client) => {
      const errors: (Error & { data?: unknown })[] = [];
      client.on("connect_error", (error) => errors.push(error));
      await waitFor("two refusals", () => errors.length === 2, 5_000, 10);
      await sleep(300);
      assert.equal(server.handshakes.length, 2);
      assert.equal(errors.length, 2);
      assert.equal(client.connected, false);
      assert.equal(client.active, false);
      assert.equal(decodeJwt(server.handshakes[1]!.proof as string).nonce, "fresh-1");
    });
  });

  it("oidc:refresh sends the new token with a fresh proof by the same key, which the verifier accepts", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: key.jkt });
    const refreshed: number[] = [];
    await withClient(key, server, `http://127.0.0.1:${server.port}/`, { onRefreshed: (at) => refreshed.push(at), onRefreshFailed: (code) => assert.fail(code) }, async (client) => {
      await waitFor("connect", () => client.connected, 5_000, 10);
      server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
      await waitFor("onRefreshed", () => refreshed.length === 1, 5_000, 10);
      assert.deepEqual(server.refreshes.map((refresh) => [refresh.token, refresh.outcome]), [["token-2", "ok"]]);
      const claims = decodeJwt(server.refreshes[0]!.proof as string);
      assert.equal(claims.htu, decodeJwt(server.handshakes[0]!.proof as string).htu, "the handshake's htu");
    });
  });

  it("a refresh refused with ERR_AUTH_DPOP_NONCE is retried once with the nonce, and accepted", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: key.jkt, nonces: "required" });
    const refreshed: number[] = [];
    await withClient(key, server, `http://127.0.0.1:${server.port}/`, { onRefreshed: (at) => refreshed.push(at), onRefreshFailed: (code) => assert.fail(code) }, async (client) => {
      await waitFor("connect", () => client.connected, 5_000, 10);
      // Forget the nonce, as after its rotation: the first refresh proof has none.
      key.setNonce(`http://127.0.0.1:${server.port}`, undefined);
      server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
      await waitFor("onRefreshed", () => refreshed.length === 1, 5_000, 10);
      assert.deepEqual(server.refreshes.map((refresh) => [refresh.token, refresh.outcome]), [["token-3", "ERR_AUTH_DPOP_NONCE"], ["token-3", "ok"]], "token-2 opened the connection after the nonce retry");
    });
  });

  it("a refresh the server keeps refusing for its nonce is tried twice, then reported", async () => {
    const key = await createDpopKey();
    const server = await startServer({ jkt: key.jkt });
    const failures: string[] = [];
    await withClient(key, server, `http://127.0.0.1:${server.port}/`, { onRefreshFailed: (code) => failures.push(code) }, async (client) => {
      await waitFor("connect", () => client.connected, 5_000, 10);
      // From now on every proof is refused for its nonce.
      server.socket().removeAllListeners(OIDC_EVENTS.refresh);
      let n = 0;
      server.socket().on(OIDC_EVENTS.refresh, (payload, ack) => {
        server.refreshes.push({ token: payload.token, proof: payload.dpop, outcome: "ERR_AUTH_DPOP_NONCE" });
        ack({ ok: false, code: "ERR_AUTH_DPOP_NONCE", dpopNonce: `n-${++n}` });
      });
      server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
      await waitFor("onRefreshFailed", () => failures.length === 1, 5_000, 10);
      await sleep(100);
      assert.deepEqual(failures, ["ERR_AUTH_DPOP_NONCE"]);
      assert.equal(server.refreshes.length, 2);
      assert.equal(decodeJwt(server.refreshes[1]!.proof as string).nonce, "n-1");
    });
  });

  it("a refresh whose proof cannot be signed sends nothing and reports ERR_DPOP_PROOF_FAILED", async () => {
    const key = await createDpopKey();
    let proofs = 0;
    const failing: DpopKey = { ...key, proof: (request) => (++proofs === 1 ? key.proof(request) : Promise.reject(new Error("the key is gone"))) };
    const server = await startServer({ jkt: key.jkt });
    const failures: string[] = [];
    await withClient(failing, server, `http://127.0.0.1:${server.port}/`, { onRefreshFailed: (code) => failures.push(code) }, async (client) => {
      await waitFor("connect", () => client.connected, 5_000, 10);
      server.socket().emit(OIDC_EVENTS.expiring, { expiresAt: Date.now() + 1_000 });
      await waitFor("onRefreshFailed", () => failures.length === 1, 5_000, 10);
      assert.deepEqual(failures, ["ERR_DPOP_PROOF_FAILED"]);
      assert.equal(server.refreshes.length, 0);
      assert.equal(client.connected, true);
    });
  });

  it("refuses a dpop option that is not a key, and a relative URL it cannot derive the htu from", async () => {
    assert.throws(() => connectWithOidc("http://127.0.0.1:1/", { getToken: () => "t", dpop: {} as DpopKey, autoConnect: false }), TypeError);
    const key = await createDpopKey();
    assert.throws(() => connectWithOidc("/chat", { getToken: () => "t", dpop: key, autoConnect: false }), /relative/);
  });
});
