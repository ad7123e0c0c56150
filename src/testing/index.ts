export { createTestIssuer } from "./createTestIssuer.js";
export type { MintOptions, TestIssuer, TestIssuerAlgorithm, TestIssuerOptions } from "./createTestIssuer.js";
