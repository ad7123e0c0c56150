/** Two test issuers side by side, and a config that trusts both: for tests of identity across issuers. */
import type { OidcConfigInput } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";

export interface TwoIssuers {
  a: TestIssuer;
  b: TestIssuer;
  /** Both issuers, audience `test-app`, each with its own JWKS. */
  config: OidcConfigInput;
  close(): Promise<void>;
}

export async function startTwoIssuers(): Promise<TwoIssuers> {
  const [a, b] = await Promise.all([createTestIssuer(), createTestIssuer()]);
  const entry = (issuer: TestIssuer) => ({ issuer: issuer.issuer, audience: "test-app", jwksUri: issuer.config.jwksUri as string });
  return { a, b, config: { issuers: [entry(a), entry(b)] }, close: async () => void (await Promise.all([a.close(), b.close()])) };
}
