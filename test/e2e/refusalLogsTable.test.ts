/**
 * The sampling table is bounded: refusals from thousands of addresses evict
 * the oldest keys (their counts logged) instead of growing memory. Driven
 * through the package's refusal log with an app handle of its own, as a
 * flood of addresses would reach it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { logRefusal, MAX_KEYS, refusalFields, type RefusalLogSettings } from "../../src/util/refusalLog.js";
import type { OidcAppHandle } from "../../src/index.js";

function app(): { handle: OidcAppHandle; lines: string[] } {
  const lines: string[] = [];
  return { lines, handle: { log: (_level: number, text: string) => void lines.push(text) } };
}

const settings: RefusalLogSettings = { logger: undefined, sampling: { limit: 1, window: 60_000 } };

function refuse(handle: OidcAppHandle, address: string): void {
  const source = { where: "HTTP GET /api/me", transport: "http" as const, requestId: "req-1", address, route: "GET /api/me" };
  logRefusal(handle, 4, source.where, refusalFields(source, undefined, "ERR_AUTH_TOKEN_INVALID", "bad signature"), settings);
}

describe("the refusal sampling table", () => {
  it("holds at most MAX_KEYS keys: the oldest goes first, its count logged", () => {
    const { handle, lines } = app();
    refuse(handle, "10.0.0.1");
    refuse(handle, "10.0.0.1");
    refuse(handle, "10.0.0.1");
    assert.equal(lines.length, 1, "one line per key and window at limit 1");
    // Every address makes two keys (its refusal's and its own total).
    for (let i = 0; i < MAX_KEYS; i++) refuse(handle, `10.1.${Math.floor(i / 256)}.${i % 256}`);
    const summary = lines.find((line) => line.includes('address="10.0.0.1"') && line.includes("not logged"));
    assert.ok(summary !== undefined, "the evicted key's count is logged");
    assert.match(summary, /^\[ioserver-oidc\] 2 similar refusal\(s\) not logged in 60000 ms: address="10\.0\.0\.1" transport="http" code="ERR_AUTH_TOKEN_INVALID" reason="bad signature" window=60000$/);
    // Evicted, the first address starts a new window: logged again.
    const before = lines.length;
    refuse(handle, "10.0.0.1");
    assert.equal(lines.length, before + 1);
    assert.match(lines.at(-1)!, /^\[ioserver-oidc\] HTTP GET \/api\/me: ERR_AUTH_TOKEN_INVALID: bad signature requestId="req-1" address="10\.0\.0\.1"/);
  });

  it("is one table per app", () => {
    const first = app();
    const second = app();
    refuse(first.handle, "10.9.9.9");
    refuse(first.handle, "10.9.9.9");
    refuse(second.handle, "10.9.9.9");
    assert.equal(first.lines.length, 1);
    assert.equal(second.lines.length, 1);
  });
});
