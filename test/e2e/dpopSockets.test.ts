/**
 * Sender-constrained tokens on Socket.IO (RFC 9449 applied to the
 * handshake): a DPoP-bound token opens a socket only with a proof in
 * `auth.dpop` for `GET` and the engine endpoint's URL (`/socket.io/`),
 * and an in-band refresh keeps the connection on its key. Without a proof a
 * bound token, and every token of an issuer that requires DPoP, opens
 * nothing; a certificate-bound token (`cnf.x5t#S256`) is refused on both
 * transports. A real IOServer, real socket.io-client connections, the test
 * issuer's keys on 127.0.0.1, proofs signed with jose by keys made here.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import type { OidcConfigInput } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, httpGet, next, outcome, startApp, type AppOptions, type TestApp } from "../helpers/app.js";
import { now, proof, proofKey, type ProofKey, type ProofOptions } from "../helpers/dpop.js";

const JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

interface DpopSocketApp {
  issuer: TestIssuer;
  app: TestApp;
  key: ProofKey;
  /** The engine endpoint's URL: what a handshake proof's htu names. */
  htu: string;
}

/** A test issuer and an app with `extra` config for the enclosing describe, and a proof key. */
function dpopSocketApp(extra: Partial<OidcConfigInput> = {}, options: Omit<AppOptions, "config"> = {}): DpopSocketApp {
  const setup = {} as DpopSocketApp;
  before(async () => {
    setup.issuer = await createTestIssuer();
    setup.app = await startApp({ config: { ...setup.issuer.config, ...extra }, ...options });
    setup.key = await proofKey();
    setup.htu = `${setup.app.url}/socket.io/`;
  });
  after(async () => {
    await setup.app?.close();
    await setup.issuer?.close();
  });
  return setup;
}

const codeOf = (result: Awaited<ReturnType<typeof outcome>>): string | undefined => (result.connected ? undefined : (result.data as { code?: string }).code);

describe("DPoP on the Socket.IO handshake and in-band refresh", { timeout: 90_000 }, () => {
  const setup = dpopSocketApp({ refreshLimit: 20 });

  const bound = (sub = "dora", jkt = setup.key.jkt) => setup.issuer.mint({ sub, cnf: { jkt } });
  /** A handshake with `token` and a proof made with `options` (htu and ath of `token` unless overridden). */
  const open = async (token: string, options: Partial<ProofOptions> & { by?: ProofKey } = {}, extra: Record<string, unknown> = {}) => {
    const dpop = await proof(options.by ?? setup.key, { htu: setup.htu, token, ...options });
    return outcome(setup.app.connect("chat", { auth: { token, dpop, ...extra }, reconnection: false }));
  };

  it("accepts a bound token with a valid proof, with or without the trailing slash of the engine path; the context carries the key", async () => {
    const token = await bound();
    for (const url of [setup.htu, `${setup.app.url}/socket.io`]) {
      const result = await outcome(setup.app.connect("chat", { auth: { token, dpop: await proof(setup.key, { htu: url, token }) }, reconnection: false }));
      assert.equal(result.connected, url === setup.htu, `${url}: ${result.connected ? "" : result.message}`);
      if (!result.connected) continue;
      const view = await call<{ dataAuth: { claims: { cnf: { jkt: string } } } }>(result.socket, "whoami");
      assert.equal(view.dataAuth.claims.cnf.jkt, setup.key.jkt);
      result.socket.disconnect();
    }
  });

  it("refuses each proof defect at the handshake", async () => {
    const token = await bound();
    const other = await proofKey();
    const cases: Array<[string, Partial<ProofOptions> & { by?: ProofKey }, string]> = [
      ["htm POST", { htm: "POST" }, "ERR_AUTH_DPOP_INVALID"],
      ["htu with the namespace", { htu: `${setup.app.url}/socket.io/chat` }, "ERR_AUTH_DPOP_INVALID"],
      ["htu of another host", { htu: "https://evil.example/socket.io/" }, "ERR_AUTH_DPOP_INVALID"],
      ["htu of an HTTP route", { htu: `${setup.app.url}/api/me` }, "ERR_AUTH_DPOP_INVALID"],
      ["stale iat", { iat: now() - 3600 }, "ERR_AUTH_DPOP_INVALID"],
      ["future iat", { iat: now() + 3600 }, "ERR_AUTH_DPOP_INVALID"],
      ["ath of another token", { ath: "x".repeat(43) }, "ERR_AUTH_DPOP_INVALID"],
      ["another key than cnf.jkt", { by: other }, "ERR_AUTH_TOKEN_INVALID"],
      ["a private key in jwk", { header: { jwk: setup.key.privateJwk } }, "ERR_AUTH_DPOP_INVALID"],
      ["typ JWT", { header: { typ: "JWT" } }, "ERR_AUTH_DPOP_INVALID"],
    ];
    for (const [name, options, code] of cases) {
      const result = await open(token, options);
      assert.equal(result.connected, false, name);
      assert.equal(codeOf(result), code, name);
      assert.equal((result.data as { message?: string }).message?.includes(token), false, `${name}: the token is not echoed`);
    }
  });

  it("refuses alg none, an HS256 proof, a non-string proof and two proofs", async () => {
    const token = await bound();
    const claims = { htm: "GET", htu: setup.htu, iat: now(), jti: randomUUID() };
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk: setup.key.jwk })).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`;
    const hs256 = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: setup.key.jwk }).sign(new TextEncoder().encode("secret"));
    const valid = await proof(setup.key, { htu: setup.htu, token });
    for (const dpop of [none, hs256, 42, { proof: valid }, [valid, valid], `${valid},${valid}`, ""]) {
      const result = await outcome(setup.app.connect("chat", { auth: { token, dpop }, reconnection: false }));
      assert.equal(codeOf(result), "ERR_AUTH_DPOP_INVALID", JSON.stringify(dpop).slice(0, 60));
    }
  });

  it("refuses a replayed proof: the same proof opens one socket", async () => {
    const token = await bound();
    const dpop = await proof(setup.key, { htu: setup.htu, token });
    const first = await outcome(setup.app.connect("chat", { auth: { token, dpop }, reconnection: false }));
    assert.equal(first.connected, true);
    const second = await outcome(setup.app.connect("chat", { auth: { token, dpop }, reconnection: false }));
    assert.equal(codeOf(second), "ERR_AUTH_DPOP_INVALID");
    if (first.connected) first.socket.disconnect();
  });

  it("refuses a bound token without a proof, and a proof with a token bound to no key", async () => {
    const noProof = await outcome(setup.app.connect("chat", { auth: { token: await bound() }, reconnection: false }));
    assert.equal(codeOf(noProof), "ERR_AUTH_TOKEN_INVALID");
    const plain = await setup.issuer.mint({ sub: "dora" });
    assert.equal(codeOf(await open(plain)), "ERR_AUTH_TOKEN_INVALID");
    const ok = await outcome(setup.app.connect("chat", { auth: { token: plain }, reconnection: false }));
    assert.equal(ok.connected, true, "a plain token without a proof is still accepted (policy allowed)");
    if (ok.connected) ok.socket.disconnect();
  });

  it("a refresh brings a new bound token with a fresh proof by the same key", async () => {
    const first = await open(await bound("rita"));
    assert.ok(first.connected);
    const socket = first.socket;
    const next = await bound("rita");
    const ack = await call<{ ok: boolean; expiresAt?: number }>(socket, "oidc:refresh", { token: next, dpop: await proof(setup.key, { htu: setup.htu, token: next }) });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(socket.connected, true);
    socket.disconnect();
  });

  it("a refresh without a proof, with a proof for another token, by another key, or with an unbound token is refused, and the connection stays", async () => {
    const first = await open(await bound("ruth"));
    assert.ok(first.connected);
    const socket = first.socket;
    const other = await proofKey();
    const next = await bound("ruth");
    const otherBound = await bound("ruth", other.jkt);
    const plain = await setup.issuer.mint({ sub: "ruth" });
    const attempts: Array<[string, Record<string, unknown>, string]> = [
      ["no proof", { token: next }, "ERR_AUTH_TOKEN_INVALID"],
      ["ath of another token", { token: next, dpop: await proof(setup.key, { htu: setup.htu, token: plain }) }, "ERR_AUTH_DPOP_INVALID"],
      ["the handshake's htu with the namespace", { token: next, dpop: await proof(setup.key, { htu: `${setup.htu}chat`, token: next }) }, "ERR_AUTH_DPOP_INVALID"],
      ["a token bound to another key, with its proof", { token: otherBound, dpop: await proof(other, { htu: setup.htu, token: otherBound }) }, "ERR_AUTH_TOKEN_INVALID"],
      ["the same token, proved by another key", { token: next, dpop: await proof(other, { htu: setup.htu, token: next }) }, "ERR_AUTH_TOKEN_INVALID"],
      ["an unbound token", { token: plain }, "ERR_AUTH_TOKEN_INVALID"],
      ["an unbound token with a proof", { token: plain, dpop: await proof(setup.key, { htu: setup.htu, token: plain }) }, "ERR_AUTH_TOKEN_INVALID"],
    ];
    for (const [name, payload, code] of attempts) {
      assert.deepEqual(await call(socket, "oidc:refresh", payload), { ok: false, code }, name);
      assert.equal(socket.connected, true, name);
    }
    socket.disconnect();
  });

  it("a connection opened without DPoP refreshes with unbound tokens only", async () => {
    const socket = await connectedTo(setup.app, "chat", await setup.issuer.mint({ sub: "refresher" }), { reconnection: false });
    assert.deepEqual(await call(socket, "oidc:refresh", { token: await setup.issuer.mint({ sub: "refresher", cnf: { jkt: JKT } }) }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    const boundNext = await bound("refresher");
    assert.deepEqual(await call(socket, "oidc:refresh", { token: boundNext, dpop: await proof(setup.key, { htu: setup.htu, token: boundNext }) }), { ok: false, code: "ERR_AUTH_TOKEN_INVALID" });
    assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await setup.issuer.mint({ sub: "refresher" }) })).ok, true);
    assert.equal(socket.connected, true);
    socket.disconnect();
  });

  it("a certificate-bound token opens no socket; HTTP refuses it too (TLS client certificates are not checked)", async () => {
    const token = await setup.issuer.mint({ cnf: { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" } });
    assert.equal(codeOf(await outcome(setup.app.connect("chat", { auth: { token }, reconnection: false }))), "ERR_AUTH_TOKEN_INVALID");
    assert.equal(codeOf(await open(token)), "ERR_AUTH_TOKEN_INVALID");
    const response = await httpGet(setup.app, token);
    assert.equal(response.status, 401);
    assert.equal(response.code, "ERR_AUTH_TOKEN_INVALID");
    assert.equal((await httpGet(setup.app, await setup.issuer.mint())).status, 200, "a plain token is accepted");
  });
});

describe("DPoP on Socket.IO: server nonces", { timeout: 60_000 }, () => {
  const setup = dpopSocketApp({ dpop: { nonce: true } });

  it("the handshake answers ERR_AUTH_DPOP_NONCE with the nonce in data.dpopNonce, then accepts a proof with it; so does a refresh", async () => {
    const token = await setup.issuer.mint({ sub: "nina", cnf: { jkt: setup.key.jkt } });
    const first = await outcome(setup.app.connect("chat", { auth: { token, dpop: await proof(setup.key, { htu: setup.htu, token }) }, reconnection: false }));
    assert.equal(codeOf(first), "ERR_AUTH_DPOP_NONCE");
    const nonce = (first as { data: { dpopNonce?: string } }).data.dpopNonce;
    assert.ok(typeof nonce === "string" && nonce.length > 20, String(nonce));
    const wrong = await outcome(setup.app.connect("chat", { auth: { token, dpop: await proof(setup.key, { htu: setup.htu, token, nonce: "made-up" }) }, reconnection: false }));
    assert.equal(codeOf(wrong), "ERR_AUTH_DPOP_NONCE");
    const second = await outcome(setup.app.connect("chat", { auth: { token, dpop: await proof(setup.key, { htu: setup.htu, token, nonce }) }, reconnection: false }));
    assert.equal(second.connected, true, second.connected ? "" : second.message);
    if (!second.connected) return;
    const next = await setup.issuer.mint({ sub: "nina", cnf: { jkt: setup.key.jkt } });
    const refused = await call<{ ok: boolean; code?: string; dpopNonce?: string }>(second.socket, "oidc:refresh", { token: next, dpop: await proof(setup.key, { htu: setup.htu, token: next }) });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, "ERR_AUTH_DPOP_NONCE");
    assert.ok(typeof refused.dpopNonce === "string");
    const accepted = await call<{ ok: boolean }>(second.socket, "oidc:refresh", { token: next, dpop: await proof(setup.key, { htu: setup.htu, token: next, nonce: refused.dpopNonce }) });
    assert.equal(accepted.ok, true);
    second.socket.disconnect();
  });

  it("asks no nonce of a plain token without a proof", async () => {
    const socket = await connectedTo(setup.app, "chat", await setup.issuer.mint({ sub: "plain" }), { reconnection: false });
    socket.disconnect();
  });
});

describe("DPoP on Socket.IO: an issuer that requires DPoP", { timeout: 60_000 }, () => {
  const setup = dpopSocketApp({ dpop: { policy: "required" } });

  it("refuses a plain token at the handshake and admits a bound token with its proof", async () => {
    assert.equal(codeOf(await outcome(setup.app.connect("chat", { auth: { token: await setup.issuer.mint() }, reconnection: false }))), "ERR_AUTH_TOKEN_INVALID");
    const token = await setup.issuer.mint({ cnf: { jkt: setup.key.jkt } });
    const result = await outcome(setup.app.connect("chat", { auth: { token, dpop: await proof(setup.key, { htu: `${setup.app.url}/socket.io/`, token }) }, reconnection: false }));
    assert.equal(result.connected, true, result.connected ? "" : result.message);
    if (result.connected) result.socket.disconnect();
  });
});

describe("DPoP on Socket.IO: connection-state recovery", { timeout: 60_000 }, () => {
  const setup = dpopSocketApp({}, { recovery: true });

  /** A client whose `auth` gives the token with the proof `proofs` makes for its n-th handshake (0 first). */
  async function client(sub: string, proofs: (n: number, token: string, htu: string) => Promise<string | undefined>) {
    const token = await setup.issuer.mint({ sub, cnf: { jkt: setup.key.jkt } });
    const htu = `${setup.app.url}/socket.io/`;
    let n = 0;
    const socket = setup.app.connect("chat", {
      auth: (cb: (data: object) => void) => {
        void proofs(n++, token, htu).then((dpop) => cb(dpop === undefined ? { token } : { token, dpop }));
      },
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
    });
    const first = await outcome(socket);
    assert.equal(first.connected, true, first.connected ? "" : first.message);
    const joined = next(socket, "chat:joined");
    await call(socket, "join", { room: "kept" }); // an event gives the client a recovery offset
    await joined;
    return socket;
  }
  const drop = (socket: ReturnType<TestApp["connect"]>) => (socket.io as unknown as { engine: { close(): void } }).engine.close();

  it("a bound connection is recovered when the new handshake proves the key", async () => {
    const socket = await client("rhea", (_n, token, htu) => proof(setup.key, { htu, token }));
    const back = next(socket, "connect", 8_000);
    drop(socket);
    await back;
    assert.equal(socket.recovered, true);
    assert.ok((await call<{ rooms: string[] }>(socket, "rooms")).rooms.includes("kept"));
    socket.disconnect();
  });

  it("a bound connection whose new handshake brings no proof, a replayed one or another key's is revoked on recovery", async () => {
    const other = await proofKey();
    let replayed: string | undefined;
    const variants: Array<[string, (n: number, token: string, htu: string) => Promise<string | undefined>]> = [
      ["no proof", async (n, token, htu) => (n === 0 ? proof(setup.key, { htu, token }) : undefined)],
      ["a replayed proof", async (n, token, htu) => (n === 0 ? (replayed = await proof(setup.key, { htu, token })) : replayed)],
      ["another key", async (n, token, htu) => proof(n === 0 ? setup.key : other, { htu, token })],
    ];
    for (const [name, proofs] of variants) {
      const socket = await client(`rufus-${name}`, proofs);
      const revoked = next<{ code: string }>(socket, "oidc:revoked", 8_000);
      drop(socket);
      const payload = await revoked;
      assert.match(payload.code, /^ERR_AUTH_(TOKEN|DPOP)_INVALID$/, name);
      socket.disconnect();
    }
  });
});
