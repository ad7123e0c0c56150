/**
 * The jose versions the differential suites last proved the fast path against
 * (fastVerify accepts => jose accepts, with the same payload). The package's
 * "jose" dependency range must be exactly this, and test/jwt/joseVersion.test.ts
 * fails when the installed jose falls outside it.
 *
 * To move it to a new jose minor: install it, run
 *   node --import tsx --test test/differential/*.test.ts
 *   DIFFERENTIAL_TOKENS=1000000 node --import tsx bench/run.ts --only D
 * and only when both pass, bump `range` (and the minor below) here and the
 * "jose" range in package.json together.
 */
export const PROVED_JOSE = { range: "~6.2.0", major: 6, minor: 2 } as const;
