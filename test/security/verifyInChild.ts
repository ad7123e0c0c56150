/**
 * Run by hardening.test.ts in a child process started with
 * NODE_EXTRA_CA_CERTS (read by Node at start-up only), so discovery can
 * fetch from an https issuer served with the test's self-signed certificate.
 * Verifies each token of the CASES environment variable against its issuer
 * (keys through discovery) and prints the outcomes as one JSON array.
 */
import { OidcAuthError, verifyOidcToken } from "../../src/index.js";

interface Case {
  issuer: string;
  audience: string;
  token: string;
}

const cases = JSON.parse(process.env["CASES"] ?? "[]") as Case[];
const results: unknown[] = [];
for (const { issuer, audience, token } of cases) {
  try {
    const context = await verifyOidcToken(token, { issuer, audience, jwksTimeout: 3_000 });
    results.push({ ok: true, sub: context.sub });
  } catch (error) {
    results.push(error instanceof OidcAuthError ? { ok: false, code: error.code, reason: error.reason } : { ok: false, code: "thrown", reason: String(error) });
  }
}
process.stdout.write(JSON.stringify(results));
