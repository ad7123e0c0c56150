// Type-level test: a CommonJS consumer resolves the package's .d.cts and the augmentation.
import oidc = require("ioserver-oidc");
import testing = require("ioserver-oidc/testing");
import type { FastifyRequest } from "fastify";

declare const request: FastifyRequest;
const roles: string[] = request.roles;
const ctx: Promise<oidc.OidcUserContext> = oidc.verifyOidcToken("t", { authServiceUrl: "https://idp.test", appSlug: "a" });
const make: typeof testing.createTestIssuer = testing.createTestIssuer;
void [roles, ctx, make, oidc.OidcSocketMiddleware];
