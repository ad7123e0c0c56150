/**
 * The DPoP options: the app-wide `dpop` object and each issuer's policy,
 * validated with the option named, defaulted, and kept as given.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OidcConfigError } from "../../src/config/errors.js";
import { normalizeConfig } from "../../src/config/normalize.js";
import { MemoryReplayStore, type OidcConfigInput } from "../../src/index.js";

const BASE: OidcConfigInput = { issuer: "https://idp.dpop-options.test", audience: "dpop-api", jwksUri: "https://idp.dpop-options.test/jwks" };
const config = (extra: Record<string, unknown>) => normalizeConfig({ ...BASE, ...extra });
const refused = (extra: Record<string, unknown>, message: RegExp) => assert.throws(() => config(extra), (error: unknown) => error instanceof OidcConfigError && message.test(error.message));

describe("dpop options", () => {
  it("default: every issuer allows DPoP, no app settings", () => {
    const normalized = config({});
    assert.equal(normalized.dpop, undefined);
    assert.equal(normalized.issuers[0]!.dpop, "allowed");
  });

  it("the top-level policy is the single issuer's, and every issuer's default", () => {
    assert.equal(config({ dpop: { policy: "required" } }).issuers[0]!.dpop, "required");
    const several = normalizeConfig({
      dpop: { policy: "disabled" },
      issuers: [
        { issuer: "https://a.dpop-options.test", audience: "x", jwksUri: "https://a.dpop-options.test/jwks", dpop: "required" },
        { issuer: "https://b.dpop-options.test", audience: "x", jwksUri: "https://b.dpop-options.test/jwks" },
      ],
    });
    assert.deepEqual(several.issuers.map((issuer) => issuer.dpop), ["required", "disabled"]);
  });

  it("keeps valid settings as given, frozen", () => {
    const replayStore = new MemoryReplayStore();
    const normalized = config({ dpop: { algorithms: ["ES256", "EdDSA"], maxAge: 30, clockTolerance: 2, nonce: true, publicOrigin: "https://api.example.test", replayStore } });
    assert.deepEqual(normalized.dpop?.algorithms, ["ES256", "EdDSA"]);
    assert.equal(normalized.dpop?.replayStore, replayStore);
    assert.ok(Object.isFrozen(normalized.dpop));
  });

  it("keeps a shared nonce secret (string or bytes) and lifetime, and never shows the secret in an error", () => {
    const secret = new Uint8Array(32).fill(7);
    assert.equal((config({ dpop: { nonce: { secret, lifetime: 30 } } }).dpop?.nonce as { secret: unknown }).secret, secret);
    assert.deepEqual(config({ dpop: { nonce: { secret: "k".repeat(32) } } }).dpop?.nonce, { secret: "k".repeat(32) });
    assert.throws(
      () => config({ dpop: { nonce: { secret: "hunter2-secret" } } }),
      (error: unknown) => error instanceof OidcConfigError && !error.message.includes("hunter2"),
    );
  });

  it("refuses bad values, naming the option", () => {
    refused({ dpop: "required" }, /"dpop" must be an object/);
    refused({ dpop: { polcy: "required" } }, /"dpop" has no option "polcy"/);
    refused({ dpop: { policy: "sometimes" } }, /"dpop.policy" must be one of "allowed", "required", "disabled"/);
    refused({ dpop: { algorithms: [] } }, /"dpop.algorithms" must be a non-empty array/);
    refused({ dpop: { algorithms: ["HS256"] } }, /"dpop.algorithms" may only list asymmetric JWS algorithms, got "HS256"/);
    refused({ dpop: { algorithms: ["none"] } }, /"dpop.algorithms" may only list/);
    refused({ dpop: { maxAge: 0 } }, /"dpop.maxAge" must be an integer number of seconds from 1 to 3600, got 0/);
    refused({ dpop: { maxAge: 7200 } }, /"dpop.maxAge"/);
    refused({ dpop: { clockTolerance: -1 } }, /"dpop.clockTolerance"/);
    refused({ dpop: { nonce: "yes" } }, /"dpop.nonce" must be true, false or \{ secret, lifetime\? \}/);
    refused({ dpop: { nonce: {} } }, /"dpop.nonce.secret" is required/);
    refused({ dpop: { nonce: { secret: "too short" } } }, /"dpop.nonce.secret" is 9 bytes long; it must be at least 32 bytes/);
    refused({ dpop: { nonce: { secret: new Uint8Array(31) } } }, /"dpop.nonce.secret" is 31 bytes long/);
    refused({ dpop: { nonce: { secret: 12345 } } }, /"dpop.nonce.secret" must be a string or a Uint8Array/);
    refused({ dpop: { nonce: { secret: "s".repeat(32), lifetime: 1 } } }, /"dpop.nonce.lifetime" must be an integer number of seconds from 2 to 86400, got 1/);
    refused({ dpop: { nonce: { secret: "s".repeat(32), ttl: 60 } } }, /"dpop.nonce" has no option "ttl"/);
    refused({ dpop: { publicOrigin: "https://api.example.test/base" } }, /"dpop.publicOrigin" must hold http\(s\) origins/);
    refused({ dpop: { publicOrigin: [] } }, /"dpop.publicOrigin" must be an origin or a non-empty array/);
    refused({ dpop: { publicOrigin: "ftp://api.example.test" } }, /"dpop.publicOrigin"/);
    refused({ dpop: { replayStore: {} } }, /"dpop.replayStore" must have a claim/);
    assert.throws(
      () => normalizeConfig({ issuers: [{ issuer: "https://a.dpop-options.test", audience: "x", jwksUri: "https://a.dpop-options.test/jwks", dpop: "always" as "required" }] }),
      /"issuers\[0\].dpop" must be one of "allowed", "required", "disabled", got "always"/,
    );
  });
});
