/**
 * The OpenTelemetry adapter through real traffic (see traffic.ts), read back
 * with the SDK's own in-memory pipeline: a MeterProvider whose periodic
 * reader exports into an InMemoryMetricExporter, flushed when the test reads
 * (cumulative sums and histograms, the gauges' callbacks run at each flush).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Meter } from "@opentelemetry/api";
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData, type MetricReader } from "@opentelemetry/sdk-metrics";
import { attachOpenTelemetryMetrics, type DetachMetrics } from "../../src/metrics/index.js";
import { verifyOidcToken } from "../../src/index.js";
import { connectedTo } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";
import { Traffic, type Expected } from "./traffic.js";

/** Where the reader exports: the SDK's in-memory exporter, read and emptied by `collected`. */
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);

/** Export now, and the metrics of that export (cumulative: the latest holds every total). */
async function collected(reader: MetricReader, into = exporter): Promise<MetricData[]> {
  await reader.forceFlush();
  const exported = into.getMetrics();
  into.reset();
  assert.ok(exported.length > 0, "the reader exported");
  return exported.at(-1)!.scopeMetrics.flatMap((scope) => scope.metrics);
}

/** A provider of a test's own, exporting to memory when the test reads (`collect`): nothing else records into it. */
function ownPipeline(temporality = AggregationTemporality.CUMULATIVE) {
  const into = new InMemoryMetricExporter(temporality);
  const reader = new PeriodicExportingMetricReader({ exporter: into, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  return { provider, collect: () => collected(reader, into) };
}

/** The data points of the authentication-duration histogram for `verifyOidcToken` (transport "verify"). */
function verifyDurations(metrics: MetricData[]) {
  const histogram = metrics.find((each) => each.descriptor.name === "ioserver_oidc.authentication.duration");
  return (histogram?.dataPoints ?? []).filter((point) => point.attributes["transport"] === "verify");
}

/** A series' value (a histogram's: its count), undefined when the series is not there. */
function valueOf(metrics: MetricData[], name: string, labels: Record<string, string>): number | undefined {
  const metric = metrics.find((each) => each.descriptor.name === name);
  if (metric === undefined) return undefined;
  for (const point of metric.dataPoints) {
    const attributes = point.attributes as Record<string, unknown>;
    const keys = Object.keys(attributes);
    if (keys.length !== Object.keys(labels).length || !keys.every((key) => attributes[key] === labels[key])) continue;
    return metric.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number);
  }
  return undefined;
}

async function check(reader: MetricReader, expected: Expected[]): Promise<void> {
  const metrics = await collected(reader);
  for (const { otel, labels, value } of expected) assert.equal(valueOf(metrics, otel, labels), value, `${otel} ${JSON.stringify(labels)}`);
}

describe("attachOpenTelemetryMetrics", { timeout: 120_000 }, () => {
  const traffic = new Traffic();
  // The export interval is an hour: the test flushes when it reads.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  let detach: DetachMetrics;

  before(async () => {
    await traffic.start();
    detach = attachOpenTelemetryMetrics({ meter: provider.getMeter("metrics-test") });
  });
  after(async () => {
    detach?.();
    await provider.shutdown();
    await traffic.close();
  });

  it("HTTP authentications: a counter by transport, issuer, outcome, cache and path; a histogram in seconds", async () => {
    await check(reader, await traffic.http());
    const metrics = await collected(reader);
    const counter = metrics.find((each) => each.descriptor.name === "ioserver_oidc.authentications")!;
    assert.equal(counter.dataPointType, DataPointType.SUM);
    assert.equal(counter.descriptor.unit, "{authentication}");
    const histogram = metrics.find((each) => each.descriptor.name === "ioserver_oidc.authentication.duration")!;
    assert.equal(histogram.dataPointType, DataPointType.HISTOGRAM);
    assert.equal(histogram.descriptor.unit, "s");
    for (const point of histogram.dataPoints) {
      const { sum, count, buckets } = point.value as { sum: number; count: number; buckets: { boundaries: number[] } };
      assert.ok(sum >= 0 && sum / count < 30, "seconds, not milliseconds");
      assert.equal(buckets.boundaries[0], 0.0001, "the advised boundaries, in seconds");
    }
  });

  it("sockets: events, revocations, and an observable gauge of live sockets per namespace", async () => {
    const live = async (namespace: string) => valueOf(await collected(reader), "ioserver_oidc.sockets.live", { namespace });
    const expected = await traffic.sockets(async () => {
      await waitFor(async () => (await live("/chat")) === 3);
      assert.equal(await live("/lenient"), 1);
    });
    await check(reader, expected);
    await waitFor(async () => (await live("/chat")) === 0);
    assert.equal(await live("/lenient"), 0);
    assert.equal(await live("/admin"), 0);
    const gauge = (await collected(reader)).find((each) => each.descriptor.name === "ioserver_oidc.sockets.live")!;
    assert.equal(gauge.dataPointType, DataPointType.GAUGE);
  });

  it("key sets: fetches, durations, and gauges of each set's state, keys and circuit", async () => {
    await check(reader, await traffic.keySets());
  });

  it("discovery", async () => {
    await check(reader, await traffic.discovery());
  });

  it("back-channel logout", async () => {
    await check(reader, await traffic.logout());
  });

  it("backend: a 0/1 gauge and a count of outages", async () => {
    traffic.backend("degraded");
    assert.equal(valueOf(await collected(reader), "ioserver_oidc.backend.degraded", { backend: "redis" }), 1);
    traffic.backend("healed");
    const metrics = await collected(reader);
    assert.equal(valueOf(metrics, "ioserver_oidc.backend.degraded", { backend: "redis" }), 0);
    assert.equal(valueOf(metrics, "ioserver_oidc.backend.outages", { backend: "redis", source: "session store" }), 1);
  });

  it("no attribute value carries a token or a sub", async () => {
    const metrics = await collected(reader);
    const values = metrics.flatMap((metric) => metric.dataPoints.flatMap((point) => Object.values(point.attributes).map(String)));
    assert.ok(values.length > 50, `${values.length} attribute values`);
    assert.ok(traffic.secrets.size > 20);
    for (const value of new Set(values)) for (const secret of traffic.secrets) assert.ok(!value.includes(secret), `an attribute carried ${secret.slice(0, 12)}…`);
  });

  it("every authentication's duration reaches the histogram: those held for a batch at each collection, the rest on detach", async () => {
    const own = ownPipeline();
    const ownDetach = attachOpenTelemetryMetrics({ meter: own.provider.getMeter("batch-test") });
    const durations = async (): Promise<number> => verifyDurations(await own.collect()).reduce((sum, point) => sum + (point.value as { count: number }).count, 0);
    try {
      const token = await traffic.mint();
      const verify = async (times: number) => {
        for (let i = 0; i < times; i++) await verifyOidcToken(token, traffic.issuer.config);
      };
      // Neither count is a whole number of batches: each collection must take the observations still held.
      await verify(300);
      assert.equal(await durations(), 300);
      await verify(301);
      assert.equal(await durations(), 601);
      // Held when the adapter detaches (its callbacks then no longer run at a collection): recorded by detach.
      await verify(7);
      ownDetach();
      assert.equal(await durations(), 608);
    } finally {
      ownDetach();
      await own.provider.shutdown();
    }
  });

  it("detach stops counting and removes the gauges' callbacks; it is idempotent", async () => {
    const total = (metrics: MetricData[]) => metrics.find((each) => each.descriptor.name === "ioserver_oidc.authentications")!.dataPoints.reduce((sum, point) => sum + (point.value as number), 0);
    const before = total(await collected(reader));
    detach();
    detach();
    await traffic.http();
    traffic.backend("degraded");
    const socket = await connectedTo(traffic.app, "chat", await traffic.mint());
    try {
      // The SDK keeps reporting a gauge's last observed value; the callbacks no longer run, so it does not move.
      const metrics = await collected(reader);
      assert.equal(total(metrics), before, "nothing counted once detached");
      assert.equal(valueOf(metrics, "ioserver_oidc.sockets.live", { namespace: "/chat" }), 0, "a socket connected after detach is not observed");
      assert.equal(valueOf(metrics, "ioserver_oidc.backend.degraded", { backend: "redis" }), 0);
    } finally {
      socket.disconnect();
    }
  });

  it("durations are recorded in batches; each series' first after a collection at once, so every point starts before it ends", async () => {
    // The SDK's own meter, its histogram's record() counted; an export per collection, cumulative here, delta below.
    for (const temporality of [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]) {
      const own = ownPipeline(temporality);
      let records = 0;
      const sdkMeter = own.provider.getMeter("points-test");
      const meter = new Proxy(sdkMeter, {
        get(target, property) {
          if (property !== "createHistogram") return (Reflect.get(target, property) as (...args: unknown[]) => unknown).bind(target);
          return (name: string, options: never) => {
            const made = target.createHistogram(name, options);
            if (name !== "ioserver_oidc.authentication.duration") return made;
            return {
              record: (...args: Parameters<typeof made.record>) => {
                if (args[1]?.["path"] === "cache") records++;
                made.record(...args);
              },
            };
          };
        },
      });
      const ownDetach = attachOpenTelemetryMetrics({ meter });
      const point = async () => {
        const ours = verifyDurations(await own.collect()).filter((each) => each.attributes["path"] === "cache");
        assert.ok(ours.length <= 1, "one series");
        return ours[0];
      };
      const nanos = ([seconds, ns]: [number, number]) => seconds * 1e9 + ns;
      // Verified twice (the token cache keeps it from its second verification): from then on, one series, cache hits.
      const token = await traffic.mint();
      for (let i = 0; i < 2; i++) await verifyOidcToken(token, traffic.issuer.config);
      try {
        for (let interval = 0; interval < 3; interval++) {
          const before = records;
          // The second interval has no authentication: with delta temporality the series is absent from it, and starts again in the third.
          const times = interval === 1 ? 0 : 10;
          for (let i = 0; i < times; i++) await verifyOidcToken(token, traffic.issuer.config);
          assert.equal(records - before, Math.min(times, 1), `${temporality} interval ${interval}: only the first recorded before the collection`);
          await new Promise((resolve) => setTimeout(resolve, 5));
          const exported = await point();
          assert.equal(records - before, times, `${temporality} interval ${interval}: all recorded by the collection`);
          if (times === 0) continue;
          assert.ok(exported !== undefined, `${temporality} interval ${interval}: exported`);
          const cumulative = temporality === AggregationTemporality.CUMULATIVE;
          assert.equal((exported.value as { count: number }).count, cumulative ? 10 * (interval === 0 ? 1 : 2) : 10);
          assert.ok(nanos(exported.startTime) < nanos(exported.endTime), `${temporality} interval ${interval}: the point starts before it ends (${exported.startTime.join(".")} / ${exported.endTime.join(".")})`);
        }
      } finally {
        ownDetach();
        await own.provider.shutdown();
      }
    }
  });

  it("a meter whose record() throws: the callbacks still report the counts, and detach still removes them", async () => {
    const added: Array<(result: { observe: (value: number, attributes?: Record<string, unknown>) => void }) => void> = [];
    const removed: unknown[] = [];
    const observable = { addCallback: (callback: (typeof added)[number]) => added.push(callback), removeCallback: (callback: unknown) => removed.push(callback) };
    const throwing = () => {
      throw new Error("this meter cannot record");
    };
    const meter = { createCounter: () => ({ add: throwing }), createHistogram: () => ({ record: throwing }), createObservableCounter: () => observable, createObservableGauge: () => observable } as unknown as Meter;
    const ownDetach = attachOpenTelemetryMetrics({ meter });
    const token = await traffic.mint();
    // Two verifications and a cache hit: each series' first duration is recorded at once (and throws, unseen), the second verification's is held.
    for (let i = 0; i < 3; i++) await verifyOidcToken(token, traffic.issuer.config);
    let observed = 0;
    for (const callback of added) {
      assert.doesNotThrow(() => callback({ observe: (value, attributes) => void (attributes?.["transport"] === "verify" && (observed += value)) }));
    }
    assert.equal(observed, 3, "the verifications counted");
    for (let i = 0; i < 3; i++) await verifyOidcToken(token, traffic.issuer.config);
    assert.doesNotThrow(() => ownDetach());
    assert.deepEqual(removed, added, "every callback removed");
  });

  it("a missing meter is a TypeError", () => {
    assert.throws(() => attachOpenTelemetryMetrics({} as never), TypeError);
  });
});
