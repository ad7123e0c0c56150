/**
 * Edge cases an attacker can reach, each proven against the verifier the
 * transports run.
 *
 * DPoP proofs in a cluster: the nodes share one replay store (Redis in
 * production: a key with a relative TTL, on the store's own clock), and
 * their clocks differ by a little. A proof accepted by one node must stay
 * refused on every other node for as long as that node would still find its
 * `iat` acceptable, clock tolerance included.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { resolveDpopOptions } from "../../src/dpop/dpopOptions.js";
import { isDpopProofError } from "../../src/dpop/DpopProofError.js";
import { verifyDpopProof, type DpopExpectations } from "../../src/dpop/verifyDpopProof.js";
import { MemoryReplayStore } from "../../src/stores/replayStore.js";
import { proof, proofKey } from "../helpers/dpop.js";

const HTU = "https://api.example.test/orders";
const TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
const MAX_AGE = 60;
const TOLERANCE = 5;

describe("DPoP proof replay across nodes sharing a replay store", { timeout: 30_000 }, () => {
  test("a proof accepted by one node is refused by a node whose clock is 4 s behind, after the first node's window for it has passed", async () => {
    const key = await proofKey();
    // One shared store, on its own (real) clock, as Redis is; two nodes with their own clocks.
    const store = new MemoryReplayStore();
    const nodeA = resolveDpopOptions({ replayStore: store, maxAgeSeconds: MAX_AGE, clockToleranceSeconds: TOLERANCE });
    const nodeB = resolveDpopOptions({ replayStore: store, maxAgeSeconds: MAX_AGE, clockToleranceSeconds: TOLERANCE, now: () => Date.now() - 4_000 });
    const expected: DpopExpectations = { method: "GET", url: HTU, accessToken: TOKEN, expectedJkt: key.jkt };

    // A proof near the end of its window on node A's clock: iat + maxAge + tolerance is 2 to 3 s away.
    const iat = Math.floor(Date.now() / 1000) - MAX_AGE - TOLERANCE + 3;
    const windowEnd = (iat + MAX_AGE + TOLERANCE) * 1000;
    const captured = await proof(key, { htu: HTU, token: TOKEN, iat, jti: randomUUID() });
    const accepted = await verifyDpopProof(captured, expected, nodeA);
    assert.equal(accepted.jkt, key.jkt);
    const acceptedAt = Date.now();

    // Node A's window for this proof ends (its own check then refuses the iat); node B's, 4 s later, has not.
    await sleep(Math.max(windowEnd, acceptedAt + 1_000) + 100 - Date.now());
    await assert.rejects(verifyDpopProof(captured, expected, nodeA), (error: unknown) => isDpopProofError(error) && /old/.test(error.reason));

    // The same captured proof sent to node B: its clock still finds the iat acceptable, so only the store can refuse it.
    await assert.rejects(
      verifyDpopProof(captured, expected, nodeB),
      (error: unknown) => isDpopProofError(error) && /already used/.test(error.reason),
      "node B accepted a proof node A had accepted: replayed across the cluster",
    );
  });
});
