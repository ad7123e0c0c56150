/** A fixed, frozen user context for tests that drive the decorations directly. */
import type { OidcUserContext } from "../../src/types.js";

export const sampleContext: OidcUserContext = Object.freeze({
  sub: "s-1",
  userId: "u-1",
  email: null,
  name: null,
  userRole: "admin",
  roles: ["admin"],
  permissions: ["p"],
  features: { f: true },
  scopes: ["openid"],
  expiresAt: 1_900_000_000_000,
  claims: Object.freeze({ sub: "s-1" }),
});
