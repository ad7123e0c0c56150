/**
 * The process-wide count of live authenticated sockets the metrics gauges
 * read: one per tracked socket, by namespace, back to 0 however a socket
 * leaves (the client goes, a later guard refuses it, it is revoked, it
 * expires, its refresh is refused by the guards), unchanged by a refresh.
 * And shared between bundles: the built `ioserver-oidc/metrics` entry (ES
 * module and CommonJS) reads the count this app's sockets keep.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import promClient from "prom-client";
import { liveSockets } from "../../src/diagnostics.js";
import { OidcSessionManager } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, next, outcome, startApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const live = (namespace: string): number => liveSockets.get(namespace) ?? 0;
const nowS = () => Math.floor(Date.now() / 1000);

describe("live authenticated sockets", { timeout: 120_000 }, () => {
  let issuer: TestIssuer;
  let app: TestApp;

  before(async () => {
    issuer = await createTestIssuer();
    app = await startApp({ config: { ...issuer.config, clockTolerance: 1 }, managers: { session: OidcSessionManager } });
  });
  after(async () => {
    await app?.close();
    await issuer?.close();
  });

  it("one per socket, unchanged by a refresh, 0 once the client leaves", async () => {
    const sub = `sub-${nowS()}-a`;
    const socket = await connectedTo(app, "chat", await issuer.mint({ sub }));
    const other = await connectedTo(app, "lenient", await issuer.mint({ sub }));
    assert.equal(live("/chat"), 1);
    assert.equal(live("/lenient"), 1);
    assert.equal((await call<{ ok: boolean }>(socket, "oidc:refresh", { token: await issuer.mint({ sub }) })).ok, true);
    assert.equal(live("/chat"), 1, "a refresh tracks the socket again, without counting it twice");
    socket.disconnect();
    other.disconnect();
    await waitFor(() => live("/chat") === 0 && live("/lenient") === 0);
  });

  it("back to 0 after a socket a later guard refused, one revoked, one expired, one whose refresh the guards refused", async () => {
    const refused = await outcome(app.connect("admin", { auth: { token: await issuer.mint({ roles: ["user"] }) } }));
    assert.equal(refused.connected, false);
    const sub = `sub-${nowS()}-b`;
    const revoked = await connectedTo(app, "chat", await issuer.mint({ sub }));
    const expiring = await connectedTo(app, "chat", await issuer.mint({ exp: nowS() + 2 }));
    const admin = await connectedTo(app, "admin", await issuer.mint({ sub: `${sub}-admin`, roles: ["admin"] }));
    assert.equal(live("/chat"), 2);
    assert.equal(live("/admin"), 1, "the refused one is not counted any more");

    const guardsRevoked = next(admin, "oidc:revoked");
    assert.deepEqual(await call(admin, "oidc:refresh", { token: await issuer.mint({ sub: `${sub}-admin`, roles: ["user"] }) }), { ok: false, code: "ERR_FORBIDDEN" });
    await guardsRevoked;
    const gone = next(revoked, "disconnect");
    assert.equal(await (app.appHandle["session"] as OidcSessionManager).disconnectUser(sub), 1);
    await gone;
    await next(expiring, "disconnect", 10_000);
    await waitFor(() => live("/chat") === 0 && live("/admin") === 0);
  });

  it("the built metrics entry, ES module and CommonJS, reads the same count", async () => {
    type Entry = typeof import("../../src/metrics/index.js");
    // Found at run time (after `npm run build`), so that type-checking does not need dist/.
    const built = new URL("../../dist/metrics.js", import.meta.url);
    assert.ok(existsSync(built), "run npm run build first");
    const esm = (await import(built.href)) as Entry;
    const cjs = createRequire(import.meta.url)(fileURLToPath(new URL("../../dist/metrics.cjs", import.meta.url))) as Entry;
    const registries = [new promClient.Registry(), new promClient.Registry()];
    const detach = [esm.attachPrometheusMetrics({ client: promClient, registry: registries[0] }), cjs.attachPrometheusMetrics({ client: promClient, registry: registries[1] })];
    const socket = await connectedTo(app, "chat", await issuer.mint());
    try {
      for (const registry of registries) assert.match(await registry.metrics(), /^ioserver_oidc_live_sockets\{namespace="\/chat"\} 1$/m);
      socket.disconnect();
      await waitFor(() => live("/chat") === 0);
      for (const registry of registries) assert.match(await registry.metrics(), /^ioserver_oidc_live_sockets\{namespace="\/chat"\} 0$/m);
    } finally {
      socket.disconnect();
      for (const each of detach) each();
    }
  });
});
