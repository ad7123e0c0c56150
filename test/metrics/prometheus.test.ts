/**
 * The prom-client adapter through real traffic (see traffic.ts), read back
 * from a real prom-client Registry: its JSON view for the values, its text
 * exposition for the names and types, and for what no label may carry.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import promClient from "prom-client";
import { attachPrometheusMetrics, type DetachMetrics } from "../../src/metrics/index.js";
import { waitFor } from "../helpers/wait.js";
import { Traffic, type Expected } from "./traffic.js";

type Labels = Record<string, string | number>;

/** A series' value in the registry (a histogram's: its `_count`), undefined when the series is not there. */
async function valueOf(registry: promClient.Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((each) => each.name === name);
  if (metric === undefined) return undefined;
  const wanted = String(metric.type) === "histogram" ? `${name}_count` : name;
  const found = (metric.values as Array<{ labels: Labels; value: number; metricName?: string }>).find(
    (each) => (each.metricName ?? name) === wanted && sameLabels(each.labels, labels),
  );
  return found?.value;
}

function sameLabels(actual: Labels, expected: Record<string, string>): boolean {
  const keys = Object.keys(actual).filter((key) => key !== "le");
  return keys.length === Object.keys(expected).length && keys.every((key) => String(actual[key]) === expected[key]);
}

async function check(registry: promClient.Registry, expected: Expected[]): Promise<void> {
  for (const { prom, labels, value } of expected) assert.equal(await valueOf(registry, prom, labels), value, `${prom} ${JSON.stringify(labels)}`);
}

describe("attachPrometheusMetrics", { timeout: 120_000 }, () => {
  const traffic = new Traffic();
  const registry = new promClient.Registry();
  let detach: DetachMetrics;

  before(async () => {
    await traffic.start();
    detach = attachPrometheusMetrics({ client: promClient, registry });
  });
  after(async () => {
    detach?.();
    await traffic.close();
  });

  it("registers every metric with its Prometheus type and name", async () => {
    const text = await registry.metrics();
    const types = Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match): [string, string] => [match[1]!, match[2]!]));
    assert.deepEqual(types, {
      ioserver_oidc_authentications_total: "counter",
      ioserver_oidc_authentication_duration_seconds: "histogram",
      ioserver_oidc_jwks_fetches_total: "counter",
      ioserver_oidc_jwks_fetch_duration_seconds: "histogram",
      ioserver_oidc_jwks_state: "gauge",
      ioserver_oidc_jwks_keys: "gauge",
      ioserver_oidc_jwks_circuit_open: "gauge",
      ioserver_oidc_discoveries_total: "counter",
      ioserver_oidc_discovery_duration_seconds: "histogram",
      ioserver_oidc_socket_events_total: "counter",
      ioserver_oidc_live_sockets: "gauge",
      ioserver_oidc_revocations_total: "counter",
      ioserver_oidc_revoked_sockets_total: "counter",
      ioserver_oidc_revocation_duration_seconds: "histogram",
      ioserver_oidc_backchannel_logouts_total: "counter",
      ioserver_oidc_backchannel_logout_duration_seconds: "histogram",
      ioserver_oidc_backend_degraded: "gauge",
      ioserver_oidc_backend_outages_total: "counter",
    });
  });

  it("HTTP authentications: by transport, issuer, outcome, cache and path; durations in seconds", async () => {
    await check(registry, await traffic.http());
    const text = await registry.metrics();
    assert.match(text, /^ioserver_oidc_authentication_duration_seconds_bucket\{le="0\.0001",transport="http",/m);
    const sum = await registry.getSingleMetric("ioserver_oidc_authentication_duration_seconds")!.get();
    const sums = sum.values.filter((each) => (each as { metricName?: string }).metricName?.endsWith("_sum"));
    assert.ok(sums.length > 0 && sums.every((each) => each.value >= 0 && each.value < 30), "seconds, not milliseconds");
  });

  it("sockets: events by namespace, event, code and kind; revocations; the live sockets gauge reads this process's count", async () => {
    const expected = await traffic.sockets(async () => {
      await waitFor(async () => (await valueOf(registry, "ioserver_oidc_live_sockets", { namespace: "/chat" })) === 3);
      assert.equal(await valueOf(registry, "ioserver_oidc_live_sockets", { namespace: "/lenient" }), 1);
    });
    await check(registry, expected);
    await waitFor(async () => (await valueOf(registry, "ioserver_oidc_live_sockets", { namespace: "/chat" })) === 0);
    assert.equal(await valueOf(registry, "ioserver_oidc_live_sockets", { namespace: "/lenient" }), 0);
    assert.equal(await valueOf(registry, "ioserver_oidc_live_sockets", { namespace: "/admin" }), 0, "the socket the admin guard refused was counted, then released");
  });

  it("key sets: fetches by issuer, outcome and failure; the state, keys and circuit of each set", async () => {
    await check(registry, await traffic.keySets());
  });

  it("discovery", async () => {
    await check(registry, await traffic.discovery());
  });

  it("back-channel logout: by outcome, with the revocation it made", async () => {
    await check(registry, await traffic.logout());
  });

  it("backend: a 0/1 gauge per backend and a count of outages by source", async () => {
    traffic.backend("degraded");
    assert.equal(await valueOf(registry, "ioserver_oidc_backend_degraded", { backend: "redis" }), 1);
    traffic.backend("healed");
    assert.equal(await valueOf(registry, "ioserver_oidc_backend_degraded", { backend: "redis" }), 0);
    assert.equal(await valueOf(registry, "ioserver_oidc_backend_outages_total", { backend: "redis", source: "session store" }), 1);
  });

  it("no label value carries a token or a sub", async () => {
    const text = await registry.metrics();
    assert.ok(traffic.secrets.size > 20, `${traffic.secrets.size} secrets`);
    for (const secret of traffic.secrets) assert.ok(!text.includes(secret), `the exposition carried ${secret.slice(0, 12)}…`);
    const values = [...text.matchAll(/="([^"]*)"/g)].map((match) => match[1]!);
    assert.ok(values.length > 100);
    for (const value of new Set(values)) assert.ok(value.length < 80, `a long label value: ${value.slice(0, 40)}…`);
  });

  it("detach stops counting and takes the metrics out of the registry; it is idempotent, and the adapter can be attached again", async () => {
    const counter = registry.getSingleMetric("ioserver_oidc_authentications_total") as promClient.Counter;
    const total = async () => (await counter.get()).values.reduce((sum, each) => sum + each.value, 0);
    const before = await total();
    detach();
    detach();
    assert.equal(registry.getSingleMetric("ioserver_oidc_authentications_total"), undefined);
    assert.doesNotMatch(await registry.metrics(), /ioserver_oidc_/);
    await traffic.http();
    assert.equal(await total(), before, "nothing counted once detached");

    detach = attachPrometheusMetrics({ client: promClient, registry });
    await traffic.http();
    assert.equal(await valueOf(registry, "ioserver_oidc_authentications_total", { transport: "http", issuer: "unknown", outcome: "ERR_AUTH_TOKEN_REQUIRED", cache: "none", path: "none" }), 1);
  });

  it("attached twice to one registry: refused (prom-client's duplicate name), leaving the first attachment whole", async () => {
    assert.throws(() => attachPrometheusMetrics({ client: promClient, registry }), /already been registered/);
    assert.match(await registry.metrics(), /# TYPE ioserver_oidc_backend_outages_total counter/);
  });

  it("a name taken in the registry: refused, and the metrics registered before it are taken out again", async () => {
    const taken = new promClient.Registry();
    new promClient.Gauge({ name: "ioserver_oidc_live_sockets", help: "the app's own", registers: [taken] });
    assert.throws(() => attachPrometheusMetrics({ client: promClient, registry: taken }), /already been registered/);
    assert.deepEqual((await taken.getMetricsAsJSON()).map((metric) => metric.name), ["ioserver_oidc_live_sockets"]);
  });

  it("a missing client is a TypeError", () => {
    assert.throws(() => attachPrometheusMetrics({} as never), TypeError);
  });
});
