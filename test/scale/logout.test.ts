/**
 * OpenID Connect Back-Channel Logout across a cluster: three IOServer nodes in
 * separate processes sharing one real redis-server (REDIS_URL from .ci/run,
 * else a private one), each serving `POST /oidc/backchannel-logout` with its
 * replay store in Redis. Three trusted issuers: two signing with the test's
 * keys, and a real oidc-provider (test/helpers/logoutProvider.ts) whose client's
 * `backchannel_logout_uri` is node A. A logout token posted to one node
 * disconnects the matching sockets on every node (through the session
 * manager's rooms and the Socket.IO Redis adapter), and a replayed `jti` is
 * refused by any node.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import type { Socket as ClientSocket } from "socket.io-client";
import { BACKCHANNEL_LOGOUT_EVENT, type OidcIssuerInput } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { connected, freePort } from "../helpers/app.js";
import { redisAvailable, runPrefix, startRedis, type RedisServer } from "../helpers/redis.js";
import { nextSecond, waitFor } from "../helpers/wait.js";
import { startLogoutProvider, type LogoutProvider } from "../helpers/logoutProvider.js";
import { revokedThenGone, startNode, type ScaleNode } from "./harness.js";

const skip = redisAvailable() ? false : "redis-server is not installed";
const REASON = "logged out at the identity provider";
const TIMEOUT = 10_000;

/** A logout token signed by the issuer's key: `sub` and/or `sid` (a claim given as `undefined` is left out). */
function logoutToken(issuer: TestIssuer, claims: { sub?: string; sid?: string }): Promise<string> {
  return issuer.mint(
    { sub: undefined, ...claims, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } },
    { header: { typ: "logout+jwt" } },
  );
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function postLogout(node: ScaleNode, token: string): Promise<Answer> {
  const response = await fetch(`${node.url}/oidc/backchannel-logout`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ logout_token: token }).toString(),
    signal: AbortSignal.timeout(TIMEOUT),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function assertAccepted(answer: Answer): void {
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.headers.get("cache-control"), "no-store");
  assert.equal(answer.text, "");
}

function assertRefused(answer: Answer): void {
  assert.equal(answer.status, 400, answer.text);
  assert.equal(answer.headers.get("cache-control"), "no-store");
  assert.deepEqual(JSON.parse(answer.text), { error: "invalid_request", error_description: "The logout token is invalid" });
}

/** A connected client that records any `oidc:revoked` it receives. */
interface Watched {
  client: ClientSocket;
  revoked: unknown[];
}

async function watch(node: ScaleNode, token: string): Promise<Watched> {
  const client = node.connect(token);
  const revoked: unknown[] = [];
  client.on("oidc:revoked", (payload: unknown) => revoked.push(payload));
  await connected(client);
  return { client, revoked };
}

async function assertRevoked(gone: ReturnType<typeof revokedThenGone>): Promise<void> {
  const { revoked, reason, order } = await gone;
  assert.deepEqual(revoked, { code: "ERR_AUTH_REVOKED", reason: REASON });
  assert.equal(reason, "io server disconnect");
  assert.deepEqual(order, ["oidc:revoked", "disconnect"]);
}

/** Still connected and never told `oidc:revoked`: a round trip to its node answers. */
async function assertUntouched(watched: Watched, sub: string): Promise<void> {
  assert.ok(watched.client.connected, "still connected");
  const answer = (await watched.client.timeout(TIMEOUT).emitWithAck("whoami", {})) as { sub: string };
  assert.equal(answer.sub, sub);
  assert.deepEqual(watched.revoked, []);
}

function issuerEntry(issuer: TestIssuer): OidcIssuerInput {
  return { issuer: issuer.issuer, audience: issuer.appSlug, jwksUri: issuer.jwksUri };
}

describe("back-channel logout across a cluster of three nodes sharing Redis", { skip, timeout: 120_000 }, () => {
  let op: TestIssuer;
  let otherOp: TestIssuer;
  let realOp: LogoutProvider;
  let redis: RedisServer | undefined;
  const prefix = runPrefix();
  const nodes: ScaleNode[] = [];
  let a: ScaleNode;
  let b: ScaleNode;
  let c: ScaleNode;
  const open: ClientSocket[] = [];

  /** Wait until every node has handled what `node` broadcast so far (see the node's `barrier`). */
  const settled = (node: ScaleNode) => node.call<number>("barrier");
  const logLine = async (node: ScaleNode, pattern: RegExp) => (await node.logs()).some((line) => pattern.test(line.text));

  before(async () => {
    [op, otherOp] = await Promise.all([createTestIssuer(), createTestIssuer()]);
    let redisUrl: string;
    if (process.env["REDIS_URL"]) redisUrl = process.env["REDIS_URL"];
    else {
      redis = await startRedis();
      redisUrl = redis.url;
    }
    // The real provider posts its logout tokens to A, whose port is chosen first.
    const portA = await freePort();
    realOp = await startLogoutProvider({ backchannelLogoutUri: `http://127.0.0.1:${portA}/oidc/backchannel-logout` });
    const issuer = { issuers: [issuerEntry(op), issuerEntry(otherOp), { issuer: realOp.issuer, audience: realOp.resource, strict: true }] };
    // Logout tokens are addressed to the client: the test issuers' appSlug, the real provider's client id.
    const logoutAudience = [op.appSlug, realOp.clientId];
    const started = await Promise.all(
      ["A", "B", "C"].map((name) => startNode({ name, redisUrl, issuer, logoutAudience, ttl: 10, prefix, ...(name === "A" ? { port: portA } : {}) })),
    );
    nodes.push(...started);
    [a, b, c] = started as [ScaleNode, ScaleNode, ScaleNode];
    await waitFor("three adapter subscribers", async () => (await a.call<number>("serverCount")) === 3);
  });

  after(async () => {
    for (const client of open) client.disconnect();
    await Promise.all(nodes.map((node) => node.kill()));
    await redis?.stop();
    await op?.close();
    await otherOp?.close();
    await realOp?.close();
  });

  async function on(node: ScaleNode, issuer: TestIssuer, sub: string, sid?: string): Promise<Watched> {
    const watched = await watch(node, await issuer.mint(sid === undefined ? { sub } : { sub, sid }));
    open.push(watched.client);
    return watched;
  }

  let replayable: string | undefined;

  it("a sub logout posted to A disconnects the user's sockets on B and C (oidc:revoked, then disconnect); a bystander stays; 200 no-store", async () => {
    const onB = await on(b, op, "ursula", "u-sid-b");
    const onC = await on(c, op, "ursula");
    const bystander = await on(b, op, "bystander");
    const goneB = revokedThenGone(onB.client);
    const goneC = revokedThenGone(onC.client);

    replayable = await logoutToken(op, { sub: "ursula" });
    assertAccepted(await postLogout(a, replayable));
    await assertRevoked(goneB);
    await assertRevoked(goneC);
    await settled(a);
    await assertUntouched(bystander, "bystander");
    assert.ok(await logLine(a, /sub "ursula": 2 socket\(s\) disconnected via session\.disconnectSubject/), "A counted B's and C's sockets");
  });

  it("the same token posted again to B is refused (its jti is claimed in Redis), and disconnects nothing", async () => {
    assert.ok(replayable, "the previous test posted a token");
    await nextSecond(); // ursula signs in again: a token issued after the logout
    const back = await on(c, op, "ursula");
    assertRefused(await postLogout(b, replayable));
    assertRefused(await postLogout(c, replayable));
    await settled(b);
    await assertUntouched(back, "ursula");
    assert.ok(await logLine(b, /jti .* was already received/));
  });

  it("a sid-only logout posted to C disconnects only the socket (on A) whose access token carried that sid, from that issuer", async () => {
    const target = await on(a, op, "sam", "sam-1");
    const otherSession = await on(b, op, "sam", "sam-2");
    const sidless = await on(b, op, "sam");
    const sameSidOtherIssuer = await on(a, otherOp, "sam", "sam-1");
    const gone = revokedThenGone(target.client);

    assertAccepted(await postLogout(c, await logoutToken(op, { sid: "sam-1" })));
    await assertRevoked(gone);
    await settled(c);
    await assertUntouched(otherSession, "sam");
    await assertUntouched(sidless, "sam");
    await assertUntouched(sameSidOtherIssuer, "sam");
    assert.ok(await logLine(c, /sid "sam-1": 1 socket\(s\) disconnected via session\.disconnectSessionId/));
  });

  it("a sub + sid logout posted to A disconnects that session on B and the user's sid-less sockets on C, cluster-wide", async () => {
    const session = await on(b, op, "tess", "t-1");
    const sidlessC = await on(c, op, "tess");
    const sidlessB = await on(b, op, "tess");
    const otherSession = await on(c, op, "tess", "t-2");
    const otherIssuer = await on(c, otherOp, "tess");
    const gone = [session, sidlessC, sidlessB].map((watched) => revokedThenGone(watched.client));

    assertAccepted(await postLogout(a, await logoutToken(op, { sub: "tess", sid: "t-1" })));
    for (const one of gone) await assertRevoked(one);
    await settled(a);
    await assertUntouched(otherSession, "tess");
    await assertUntouched(otherIssuer, "tess");
    assert.ok(
      await logLine(a, /sid "t-1" sub "tess": 3 socket\(s\) disconnected via session\.disconnectSessionId \+ session\.disconnectSubject/),
      JSON.stringify((await a.logs()).filter((line) => line.text.includes("tess"))),
    );
  });

  it("with two issuers, a sub-only logout disconnects that issuer's subject on every node, not the same sub of the other issuer", async () => {
    const otherOnB = await on(b, otherOp, "vic", "v-1");
    const otherOnC = await on(c, otherOp, "vic");
    const opOnB = await on(b, op, "vic");
    const opOnA = await on(a, op, "vic", "v-1");
    const gone = [otherOnB, otherOnC].map((watched) => revokedThenGone(watched.client));

    assertAccepted(await postLogout(a, await logoutToken(otherOp, { sub: "vic" })));
    for (const one of gone) await assertRevoked(one);
    await settled(a);
    await assertUntouched(opOnB, "vic");
    await assertUntouched(opOnA, "vic");
    assert.ok(await logLine(a, /sub "vic": 2 socket\(s\) disconnected via session\.disconnectSubject/));

    // And the other way round, posted to C: op's "vic" on A and B.
    const goneOp = [opOnB, opOnA].map((watched) => revokedThenGone(watched.client));
    assertAccepted(await postLogout(c, await logoutToken(op, { sub: "vic" })));
    for (const one of goneOp) await assertRevoked(one);
  });

  it("a logout token minted by a real oidc-provider, posted by it to A, disconnects that session's socket on B only", async () => {
    const first = await realOp.login("wendy");
    const second = await realOp.login("wendy");
    const sid = decodeJwt(first.accessToken).sid;
    assert.equal(typeof sid, "string", "the provider's access tokens carry the session id");
    assert.notEqual(decodeJwt(second.accessToken).sid, sid);
    const target = await watch(b, first.accessToken);
    const otherSession = await watch(c, second.accessToken);
    open.push(target.client, otherSession.client);
    const gone = revokedThenGone(target.client);

    await realOp.signOut(first);
    await assertRevoked(gone);
    await settled(a);
    await assertUntouched(otherSession, "wendy");
    assert.deepEqual(realOp.outcomes, [{ event: "success", detail: `${realOp.clientId} wendy ${String(sid)}` }], "the provider got its 200");
    const line = `sid "${String(sid)}" sub "wendy": 1 socket(s) disconnected via session.disconnectSessionId + session.disconnectSubject`;
    assert.ok((await a.logs()).some((entry) => entry.text.includes(line)), line);
  });

  it("no node crashed", () => {
    for (const node of nodes) assert.equal(node.exit, undefined, `node ${node.name} exited`);
  });
});
