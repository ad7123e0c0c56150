/**
 * Suite fixtures: a test issuer (and an app trusting it) started before a
 * file's or a describe block's tests and closed after them. `assign` hands
 * them to the suite's own variables, so tests read `issuer` and `app` as
 * plain names.
 */
import { after, before } from "node:test";
import { createTestIssuer, type TestIssuer, type TestIssuerOptions } from "../../src/testing/index.js";
import { startApp, type TestApp } from "./app.js";

/** A test issuer for the enclosing suite. */
export function useTestIssuer(assign: (issuer: TestIssuer) => void, options?: TestIssuerOptions): void {
  let issuer: TestIssuer | undefined;
  before(async () => {
    issuer = await createTestIssuer(options);
    assign(issuer);
  });
  after(async () => {
    await issuer?.close();
  });
}

/** A test issuer and an app that trusts it (its default routes and namespaces), for the enclosing suite. */
export function useIssuerAndApp(assign: (fixture: { issuer: TestIssuer; app: TestApp }) => void): void {
  let issuer: TestIssuer | undefined;
  let app: TestApp | undefined;
  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: issuer.config });
    assign({ issuer, app });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });
}
