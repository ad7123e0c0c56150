/**
 * DPoP server nonces across the nodes of a cluster: two real IOServer apps
 * (two nodes behind one public origin) configured with the same
 * `dpop.nonce.secret` accept each other's nonces, over real HTTP with proofs
 * signed by a key the test generates; apps with another secret, or with a
 * secret of their own (`nonce: true`), do not.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import type { ServerBase } from "../helpers/app.js";
import { proof as signProof, proofKey, type ProofKey } from "../helpers/dpop.js";
import { callApi, startDpopApp } from "../helpers/dpopApp.js";

/** The origin clients address: the load balancer in front of every node. */
const ORIGIN = "https://api.cluster.test";
const HTU = `${ORIGIN}/api/me`;
const NONCE_CHALLENGE = /^DPoP error="use_dpop_nonce", error_description="[^"]+", algs="[^"]+", Bearer$/;

let issuer: TestIssuer;
let key: ProofKey;
let token: string;

before(async () => {
  issuer = await createTestIssuer();
  key = await proofKey();
  token = await issuer.mint({ sub: "carol", cnf: { jkt: key.jkt } });
});
after(async () => {
  await issuer?.close();
});

const node = (nonce: unknown) => startDpopApp({ ...issuer.config, dpop: { nonce: nonce as true, publicOrigin: ORIGIN } });
const send = async (app: ServerBase, nonce?: string) => callApi(app, { authorization: `DPoP ${token}`, dpop: await signProof(key, { htu: HTU, token, ...(nonce === undefined ? {} : { nonce }) }) });

/** The nonce `app` hands out: its `use_dpop_nonce` refusal of a proof without one. */
async function nonceOf(app: ServerBase): Promise<string> {
  const res = await send(app);
  assert.equal(res.status, 401, JSON.stringify(res.body));
  assert.equal(res.body.code, "ERR_AUTH_DPOP_NONCE");
  assert.match(res.headers.get("www-authenticate") ?? "", NONCE_CHALLENGE);
  const nonce = res.headers.get("dpop-nonce");
  assert.ok(nonce !== null && /^[A-Za-z0-9_-]{43}$/.test(nonce), `a DPoP-Nonce header: ${String(nonce)}`);
  return nonce;
}

describe("DPoP nonces in a cluster: a shared secret", () => {
  const secret = randomBytes(32);
  let a: ServerBase;
  let b: ServerBase;
  let stranger: ServerBase;
  before(async () => {
    a = await node({ secret });
    b = await node({ secret: Buffer.from(secret) });
    stranger = await node({ secret: randomBytes(32) });
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close(), stranger?.close()]);
  });

  it("a nonce handed out by node A is accepted by node B, and B's by A", async () => {
    const fromA = await nonceOf(a);
    const onB = await send(b, fromA);
    assert.equal(onB.status, 200, JSON.stringify(onB.body));
    assert.deepEqual(onB.body, { sub: "carol", dpopJkt: key.jkt });
    const fromB = await nonceOf(b);
    const onA = await send(a, fromB);
    assert.equal(onA.status, 200, JSON.stringify(onA.body));
  });

  it("a node with another secret refuses that nonce, and hands out one of its own", async () => {
    const fromA = await nonceOf(a);
    const res = await send(stranger, fromA);
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.code, "ERR_AUTH_DPOP_NONCE");
    assert.match(res.headers.get("www-authenticate") ?? "", NONCE_CHALLENGE);
    const own = res.headers.get("dpop-nonce");
    assert.ok(own !== null && own !== fromA);
    const retry = await send(stranger, own);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    // And the stranger's nonce is no good on the nodes sharing the secret.
    assert.equal((await send(a, own)).status, 401);
  });

  it("a forged nonce is refused by every node", async () => {
    for (const app of [a, b]) {
      const res = await send(app, randomBytes(32).toString("base64url"));
      assert.equal(res.status, 401);
      assert.equal(res.body.code, "ERR_AUTH_DPOP_NONCE");
    }
  });
});

describe("DPoP nonces in a cluster: a secret of string type, with a lifetime", () => {
  let a: ServerBase;
  let b: ServerBase;
  let otherLifetime: ServerBase;
  before(async () => {
    const secret = randomBytes(32).toString("hex");
    a = await node({ secret, lifetime: 600 });
    b = await node({ secret, lifetime: 600 });
    otherLifetime = await node({ secret, lifetime: 300 });
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close(), otherLifetime?.close()]);
  });

  it("nodes with the same string secret and lifetime agree; a node with another lifetime does not", async () => {
    const fromA = await nonceOf(a);
    assert.equal((await send(b, fromA)).status, 200);
    assert.equal((await send(otherLifetime, fromA)).status, 401);
  });
});

describe("DPoP nonces in a cluster: nonce: true (a secret per process)", () => {
  let a: ServerBase;
  let b: ServerBase;
  before(async () => {
    a = await node(true);
    b = await node(true);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it("still works on one node; another node refuses its nonces", async () => {
    const fromA = await nonceOf(a);
    assert.equal((await send(a, fromA)).status, 200);
    const res = await send(b, fromA);
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "ERR_AUTH_DPOP_NONCE");
  });
});

describe("DPoP nonces in a cluster: a short secret", () => {
  it("is refused when the app is configured, with the option named and the secret not shown", async () => {
    await assert.rejects(
      async () => {
        const app = await node({ secret: "only-twenty-chars-xx" });
        await app.close();
      },
      (error: unknown) => error instanceof Error && /"dpop\.nonce\.secret" is 20 bytes long; it must be at least 32 bytes/.test(error.message) && !error.message.includes("only-twenty"),
    );
  });
});
