/**
 * The log options: `logger` (an object taking fields and a message) and
 * `logSampling` (limit and window), validated with the option named, and a
 * logger never frozen or compared by content with the rest of the config.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OidcConfigError } from "../../src/config/errors.js";
import { normalizeConfig } from "../../src/config/normalize.js";
import type { OidcConfigInput, OidcLogger } from "../../src/index.js";

const BASE: OidcConfigInput = { issuer: "https://idp.log-options.test", audience: "log-api", jwksUri: "https://idp.log-options.test/jwks" };
const config = (extra: Partial<OidcConfigInput>) => normalizeConfig({ ...BASE, ...extra });

function logger(): OidcLogger & { lines: unknown[] } {
  const lines: unknown[] = [];
  const keep = (fields: object, message: string) => lines.push([fields, message]);
  return { lines, error: keep, warn: keep, info: keep, debug: keep };
}

function refused(extra: Partial<OidcConfigInput>, pattern: RegExp): void {
  assert.throws(
    () => config(extra),
    (error: unknown) => error instanceof OidcConfigError && pattern.test(error.message),
  );
}

describe("logger", () => {
  it("absent by default", () => {
    assert.equal(config({}).logger, undefined);
  });

  it("kept as given, the same object", () => {
    const given = logger();
    assert.equal(config({ logger: given }).logger, given);
  });

  it("a plain-object logger is not frozen: it keeps its own state", () => {
    const given = logger();
    const normalized = config({ logger: given });
    normalized.logger!.warn({ a: 1 }, "x");
    assert.equal(Object.isFrozen(given), false);
    assert.equal(Object.isFrozen(given.lines), false);
    assert.equal(given.lines.length, 1);
  });

  it("two equal configs with different loggers are two configs", () => {
    const first = config({ logger: logger() });
    const second = config({ logger: logger() });
    assert.notEqual(first, second);
    assert.notEqual(first.logger, second.logger);
  });

  it("refused without error, warn, info and debug methods, naming the option and what is missing", () => {
    refused({ logger: "console" as unknown as OidcLogger }, /"logger" must be an object with error, warn, info, debug methods/);
    refused({ logger: null as unknown as OidcLogger }, /"logger" must be an object/);
    refused({ logger: { error() {}, warn() {}, info() {} } as unknown as OidcLogger }, /"logger" .*missing debug/);
    refused({ logger: console.log as unknown as OidcLogger }, /"logger"/);
  });
});

describe("logSampling", () => {
  it("defaults to ten per minute", () => {
    assert.deepEqual(config({}).logSampling, { limit: 10, window: 60_000 });
  });

  it("a number is the limit; false or 0 turns sampling off", () => {
    assert.deepEqual(config({ logSampling: 3 }).logSampling, { limit: 3, window: 60_000 });
    assert.equal(config({ logSampling: false }).logSampling, false);
    assert.equal(config({ logSampling: 0 }).logSampling, false);
    assert.equal(config({ logSampling: { limit: 0 } }).logSampling, false);
  });

  it("an object gives limit and window, each defaulted", () => {
    assert.deepEqual(config({ logSampling: { window: 5_000 } }).logSampling, { limit: 10, window: 5_000 });
    assert.deepEqual(config({ logSampling: { limit: 2, window: 1_000 } }).logSampling, { limit: 2, window: 1_000 });
  });

  it("refused values name the option", () => {
    refused({ logSampling: -1 }, /"logSampling" must be a non-negative integer, got -1/);
    refused({ logSampling: 1.5 }, /"logSampling" must be a non-negative integer/);
    refused({ logSampling: "10" as unknown as number }, /"logSampling" must be false, a number or \{ limit, window \}/);
    refused({ logSampling: { limit: -2 } }, /"logSampling.limit" must be a non-negative integer/);
    refused({ logSampling: { window: 0 } }, /"logSampling.window" must be a positive integer \(ms\), got 0/);
    refused({ logSampling: { every: 1 } as unknown as { limit: number } }, /"logSampling.every" is not an option \(limit, window\)/);
  });
});
