/**
 * `key.fetch` against a real HTTP server on 127.0.0.1 that checks every
 * proof with the server's own verifier and, when told to, demands a nonce
 * the way RFC 9449 section 8 says (401 `use_dpop_nonce` for a resource, 400
 * JSON `use_dpop_nonce` for a token endpoint).
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { decodeJwt } from "jose";
import { createDpopKey, type DpopKey } from "../../src/client/index.js";
import { resolveDpopOptions } from "../../src/dpop/dpopOptions.js";
import { isDpopProofError } from "../../src/dpop/DpopProofError.js";
import { verifyDpopProof } from "../../src/dpop/verifyDpopProof.js";

const TOKEN = "a.bound-access-token.signature";

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  proof: string | undefined;
  nonce: unknown;
  body: string;
}

/** What the server does with a request whose proof verified: its status, or "nonce" to demand the current nonce. */
type Mode = "resource-nonce" | "token-nonce" | "always-refuse" | "open" | "rotate";

async function startServer() {
  const settings = resolveDpopOptions();
  const seen: Seen[] = [];
  let mode: Mode = "open";
  let nonce = "nonce-1";
  let served = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      void (async () => {
        const proof = request.headers.dpop as string | undefined;
        const authorization = request.headers.authorization;
        const record: Seen = { method: request.method!, path: request.url!, authorization, proof, nonce: proof ? decodeJwt(proof).nonce : undefined, body: Buffer.concat(chunks).toString() };
        seen.push(record);
        const url = `http://${request.headers.host}${request.url}`;
        const accessToken = authorization?.startsWith("DPoP ") ? authorization.slice(5) : undefined;
        try {
          await verifyDpopProof(proof, { method: request.method!, url, accessToken }, settings);
        } catch (error) {
          response.writeHead(401, { "www-authenticate": `DPoP error="invalid_dpop_proof", error_description="${isDpopProofError(error) ? error.error : "?"}"` }).end();
          return;
        }
        if (mode === "always-refuse") nonce = `nonce-${++served + 100}`;
        const wants = mode === "resource-nonce" || mode === "token-nonce" || mode === "always-refuse";
        if (wants && record.nonce !== nonce) {
          if (mode === "token-nonce") {
            response.writeHead(400, { "content-type": "application/json", "dpop-nonce": nonce, "cache-control": "no-store" }).end(JSON.stringify({ error: "use_dpop_nonce", error_description: "a nonce is required" }));
          } else {
            response.writeHead(401, { "www-authenticate": 'DPoP error="use_dpop_nonce", error_description="a nonce is required"', "dpop-nonce": nonce }).end("nonce please");
          }
          return;
        }
        const headers: Record<string, string> = { "content-type": "text/plain" };
        if (mode === "rotate") headers["dpop-nonce"] = nonce = `nonce-${++served + 200}`;
        response.writeHead(200, headers).end(`ok ${record.body}`);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    setMode(next: Mode, nextNonce = "nonce-1") {
      mode = next;
      nonce = nextNonce;
      seen.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("key.fetch", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let key: DpopKey;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.close();
  });

  test("sends Authorization: DPoP and a proof for the method and URL (query aside) that the verifier accepts", async () => {
    key = await createDpopKey();
    server.setMode("open");
    const response = await key.fetch(`${server.origin}/orders?page=2`, { accessToken: TOKEN, headers: { "x-app": "1" } });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ok ");
    assert.equal(server.seen.length, 1);
    assert.equal(server.seen[0]!.authorization, `DPoP ${TOKEN}`);
    assert.equal(decodeJwt(server.seen[0]!.proof!).htu, `${server.origin}/orders`);
  });

  test("without an access token: a proof without ath and no Authorization; a Request input keeps its method and body", async () => {
    key = await createDpopKey();
    server.setMode("open");
    const response = await key.fetch(new Request(`${server.origin}/token`, { method: "POST", body: "grant_type=x" }));
    assert.equal(await response.text(), "ok grant_type=x");
    const [seen] = server.seen;
    assert.equal(seen!.authorization, undefined);
    assert.equal(seen!.method, "POST");
    const claims = decodeJwt(seen!.proof!);
    assert.equal(claims.ath, undefined);
    assert.equal(claims.htm, "POST");
  });

  test("a 401 use_dpop_nonce: one retry with the nonce, and the nonce is used from then on", async () => {
    key = await createDpopKey();
    server.setMode("resource-nonce", "nonce-A");
    const response = await key.fetch(`${server.origin}/orders`, { method: "PUT", body: "payload", accessToken: TOKEN });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ok payload", "the body is sent again on the retry");
    assert.deepEqual(server.seen.map((seen) => [seen.method, seen.nonce, seen.body]), [["PUT", undefined, "payload"], ["PUT", "nonce-A", "payload"]]);
    assert.equal(key.getNonce(server.origin), "nonce-A");
    assert.equal((await key.fetch(`${server.origin}/orders`, { accessToken: TOKEN })).status, 200);
    assert.equal(server.seen.length, 3, "no second challenge");
    assert.equal(server.seen[2]!.nonce, "nonce-A");
  });

  test("a 400 use_dpop_nonce JSON error (a token endpoint): one retry with the nonce", async () => {
    key = await createDpopKey();
    server.setMode("token-nonce", "nonce-T");
    const response = await key.fetch(`${server.origin}/token`, { method: "POST", body: "grant_type=authorization_code" });
    assert.equal(response.status, 200);
    assert.deepEqual(server.seen.map((seen) => seen.nonce), [undefined, "nonce-T"]);
  });

  test("a stale nonce is replaced by the server's new one", async () => {
    key = await createDpopKey();
    key.setNonce(server.origin, "nonce-old");
    server.setMode("resource-nonce", "nonce-new");
    assert.equal((await key.fetch(`${server.origin}/orders`, { accessToken: TOKEN })).status, 200);
    assert.deepEqual(server.seen.map((seen) => seen.nonce), ["nonce-old", "nonce-new"]);
  });

  test("a server that keeps refusing gets one retry, not a loop: the second 401 is returned", async () => {
    key = await createDpopKey();
    server.setMode("always-refuse");
    const response = await key.fetch(`${server.origin}/orders`, { accessToken: TOKEN });
    assert.equal(response.status, 401);
    assert.match(response.headers.get("www-authenticate")!, /use_dpop_nonce/);
    assert.equal(await response.text(), "nonce please");
    assert.equal(server.seen.length, 2);
  });

  test("a 401 for another reason is not retried", async () => {
    key = await createDpopKey();
    server.setMode("resource-nonce", "nonce-A");
    key.setNonce(server.origin, "nonce-A");
    // A proof for another token than the one in Authorization: invalid_dpop_proof, no retry.
    const response = await key.fetch(`${server.origin}/orders`, { headers: { authorization: "DPoP not.the.token" } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get("www-authenticate")!, /invalid_dpop_proof/);
    assert.equal(server.seen.length, 1);
  });

  test("a DPoP-Nonce on a success answer is used by the next proof", async () => {
    key = await createDpopKey();
    server.setMode("rotate");
    await (await key.fetch(`${server.origin}/a`, { accessToken: TOKEN })).text();
    const given = key.getNonce(server.origin);
    assert.ok(given);
    await (await key.fetch(`${server.origin}/b`, { accessToken: TOKEN })).text();
    assert.equal(server.seen[1]!.nonce, given);
  });
});
