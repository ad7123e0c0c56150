export { createTestIssuer } from "./createTestIssuer.js";
export type { MintOptions, TestIssuer, TestIssuerAlgorithm, TestIssuerJwk, TestIssuerOptions } from "./createTestIssuer.js";
