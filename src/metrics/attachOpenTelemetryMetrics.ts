/**
 * The package's channels as OpenTelemetry metrics, recorded through a
 * `Meter` the app passes in. `@opentelemetry/api` is imported for its types
 * only: nothing of it is loaded at run time, so an app using prom-client
 * alone does not need it installed.
 */
import type { Attributes, Context, Histogram, Meter, Observable, ObservableCallback } from "@opentelemetry/api";
import { AttributeSets, DURATION_BUCKETS, issuerLabel, KEY_SET_STATES, LastStates, liveSocketsByNamespace, orNone, seconds, subscribeAll, Tally, type DetachMetrics } from "./channels.js";

export interface OpenTelemetryMetricsOptions {
  /** The meter to create the instruments on, e.g. `metrics.getMeter("my-app")`. */
  meter: Meter;
}

/**
 * Record the package's events as OpenTelemetry counters (observable, over
 * the adapter's own totals), histograms (in seconds) and observable gauges
 * on `options.meter`. Returns `detach()`,
 * which stops recording and removes the gauges' callbacks. See
 * docs/observability.md#metrics for every instrument.
 */
export function attachOpenTelemetryMetrics(options: OpenTelemetryMetricsOptions): DetachMetrics {
  const meter = (options as Partial<OpenTelemetryMetricsOptions> | undefined)?.meter;
  if (meter === null || typeof meter !== "object" || typeof meter.createCounter !== "function") {
    throw new TypeError('attachOpenTelemetryMetrics: "meter" must be an OpenTelemetry Meter (metrics.getMeter(name))');
  }
  const histogram = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] } });

  const observables: Array<[Observable, ObservableCallback]> = [];
  const observe = (instrument: Observable, callback: ObservableCallback): void => {
    instrument.addCallback(callback);
    observables.push([instrument, callback]);
  };
  // Counters are observable counters over the adapter's own totals: counting an event costs a map lookup, not an attribute hash.
  // `first` runs at each collection before the counter reports (what it throws does not keep the counter from reporting).
  const counter = (name: string, description: string, unit: string, labelNames: readonly string[], first?: () => void): Tally => {
    const tally = new Tally(labelNames);
    observe(meter.createObservableCounter(name, { description, unit }), (result) => {
      try {
        first?.();
      } catch {
        // a meter whose record() throws: the durations held are lost, the counts are not
      }
      for (const { labels, value } of tally.values()) result.observe(value, labels);
    });
    return tally;
  };

  // Every authentication has a duration: most are recorded in batches, all of those held before each collection.
  const authDuration = new BatchedHistogram(histogram("ioserver_oidc.authentication.duration", "Time from the start of an authentication to its decision"), ["transport", "issuer", "outcome", "path"]);
  const authentications = counter("ioserver_oidc.authentications", "Authentication decisions (HTTP, handshake, in-band refresh, verifyOidcToken)", "{authentication}", ["transport", "issuer", "outcome", "cache", "path"], () => authDuration.collecting());
  const jwksFetches = counter("ioserver_oidc.jwks.fetches", "JWKS fetches completed", "{fetch}", ["issuer", "outcome", "failure"]);
  const jwksDuration = histogram("ioserver_oidc.jwks.fetch.duration", "Duration of a JWKS fetch");
  const discoveries = counter("ioserver_oidc.discoveries", "OpenID Connect discoveries completed", "{discovery}", ["issuer", "outcome"]);
  const discoveryDuration = histogram("ioserver_oidc.discovery.duration", "Duration of an OpenID Connect discovery");
  const socketEvents = counter("ioserver_oidc.socket.events", "Events of live sockets", "{event}", ["namespace", "event", "code", "kind"]);
  const revocations = counter("ioserver_oidc.revocations", "Revocations made on this node", "{revocation}", ["kind"]);
  const revokedSockets = counter("ioserver_oidc.revocation.sockets", "Sockets of this node ended by revocations", "{socket}", ["kind"]);
  const revocationDuration = histogram("ioserver_oidc.revocation.duration", "Duration of a revocation (recording, broadcasting, counting)");
  const logouts = counter("ioserver_oidc.backchannel_logouts", "Back-channel logout requests answered", "{request}", ["outcome"]);
  const logoutDuration = histogram("ioserver_oidc.backchannel_logout.duration", "Duration of a back-channel logout request");
  const outages = counter("ioserver_oidc.backend.outages", "Times a shared backend became unavailable", "{outage}", ["backend", "source"]);

  const last = new LastStates();
  const gauge = (name: string, description: string, unit: string, read: (record: (value: number, attributes: Attributes) => void) => void) => {
    observe(meter.createObservableGauge(name, { description, unit }), (result) => read((value, attributes) => result.observe(value, attributes)));
  };
  gauge("ioserver_oidc.sockets.live", "Authenticated sockets connected to this process, by namespace", "{socket}", (record) => {
    for (const [namespace, count] of liveSocketsByNamespace()) record(count, { namespace });
  });
  gauge("ioserver_oidc.jwks.state", "Each key set's state after its last fetch: 1 for the current state, 0 for the others", "1", (record) => {
    for (const view of last.keySets.values()) for (const state of KEY_SET_STATES) record(view.state === state ? 1 : 0, { issuer: view.issuer, state });
  });
  gauge("ioserver_oidc.jwks.keys", "Keys in each key set after its last fetch", "{key}", (record) => {
    for (const view of last.keySets.values()) record(view.keys, { issuer: view.issuer });
  });
  gauge("ioserver_oidc.jwks.circuit_open", "1 while a key set's circuit is open (requests fail fast), else 0", "1", (record) => {
    for (const view of last.keySets.values()) record(view.circuitOpen ? 1 : 0, { issuer: view.issuer });
  });
  gauge("ioserver_oidc.backend.degraded", "1 while a shared backend is unavailable, else 0", "1", (record) => {
    for (const [backend, degraded] of last.backends) record(degraded ? 1 : 0, { backend });
  });

  return subscribeAll(
    {
      auth(message) {
        const issuer = issuerLabel(message.issuer);
        const path = orNone(message.path);
        authentications.add(1, message.transport, issuer, message.outcome, orNone(message.cache), path);
        authDuration.record(seconds(message.durationMs), message.transport, issuer, message.outcome, path);
      },
      jwks(message) {
        const issuer = issuerLabel(message.issuer);
        jwksFetches.add(1, issuer, message.outcome, orNone(message.failure));
        jwksDuration.record(seconds(message.durationMs), { issuer, outcome: message.outcome });
        last.jwks(message);
      },
      discovery(message) {
        const issuer = issuerLabel(message.issuer);
        discoveries.add(1, issuer, message.outcome);
        discoveryDuration.record(seconds(message.durationMs), { issuer, outcome: message.outcome });
      },
      socket(message) {
        socketEvents.add(1, message.namespace, message.event, orNone("code" in message ? message.code : undefined), orNone("kind" in message ? message.kind : undefined));
      },
      revocation(message) {
        revocations.add(1, message.kind);
        revokedSockets.add(message.local, message.kind);
        revocationDuration.record(seconds(message.durationMs), { kind: message.kind });
      },
      logout(message) {
        logouts.add(1, message.outcome);
        logoutDuration.record(seconds(message.durationMs), { outcome: message.outcome });
      },
      backend(message) {
        if (last.backend(message)) outages.add(1, message.backend, message.source);
      },
    },
    () => {
      for (const [instrument, callback] of observables) instrument.removeCallback(callback);
      try {
        authDuration.flush();
      } catch {
        // A meter whose record() throws loses the durations held, not the detach.
      }
    },
  );
}

/** Observations a BatchedHistogram holds before it records them. */
const BATCH = 256;

/**
 * An OpenTelemetry context holding nothing (and what `setValue` makes of
 * it), made here so that `@opentelemetry/api` stays a types-only import.
 */
class FixedContext implements Context {
  constructor(private readonly values: ReadonlyMap<symbol, unknown> = new Map()) {}

  getValue(key: symbol): unknown {
    return this.values.get(key);
  }

  setValue(key: symbol, value: unknown): Context {
    return new FixedContext(new Map(this.values).set(key, value));
  }

  deleteValue(key: symbol): Context {
    const values = new Map(this.values);
    values.delete(key);
    return new FixedContext(values);
  }
}

/** The context every authentication's duration is recorded in: whichever request's context is current when a batch is recorded has nothing to do with the others. */
const NO_CONTEXT: Context = new FixedContext();

/**
 * A histogram of authentications' durations, most of them recorded BATCH at
 * a time. The SDK hashes an observation's attributes on every `record()`:
 * about 1 µs for the four of an authentication in a loop, several times that
 * when each call comes from a request, by which time the SDK's code and data
 * have left the CPU's caches. Here most observations are two array writes
 * (the attributes are one object per series, found as the adapter's
 * counters find theirs), and the SDK's calls run
 * back to back, by the observation that fills the batch (were the batch
 * recorded after the current I/O events instead, the observations made
 * meanwhile under load would have to be recorded one by one).
 *
 * At each collection (`collecting`, from an observable callback, which
 * `@opentelemetry/sdk-metrics` runs before it reads its histograms) what is
 * held is recorded. A series' first observation after a collection is
 * recorded at once: the SDK starts a series' point at its first record, and
 * a point first recorded during the collection would start after it ends.
 * While a batch is being recorded, observations are recorded at once too,
 * so a record() that leads back here (an attributes processor, a logger)
 * finds the batch untouched. Every observation is recorded in NO_CONTEXT.
 */
class BatchedHistogram {
  private readonly series: AttributeSets;
  private readonly values = new Float64Array(BATCH);
  private readonly attributes = new Array<Attributes>(BATCH);
  private count = 0;
  private flushing = false;

  constructor(
    private readonly histogram: Histogram,
    labelNames: readonly string[],
  ) {
    this.series = new AttributeSets(labelNames);
  }

  /** Observe `value` for these label values (in the order of the label names). */
  record(value: number, a: string, b?: string, c?: string, d?: string, e?: string): void {
    const series = this.series.of(a, b, c, d, e);
    if (this.flushing || !series.started) {
      series.started = true;
      this.histogram.record(value, series.labels, NO_CONTEXT);
      return;
    }
    this.values[this.count] = value;
    this.attributes[this.count] = series.labels;
    if (++this.count === BATCH) this.flush();
  }

  /** Record every observation held. Should the SDK throw, the rest are dropped rather than recorded twice. */
  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    const count = this.count;
    this.count = 0;
    try {
      for (let i = 0; i < count; i++) this.histogram.record(this.values[i]!, this.attributes[i], NO_CONTEXT);
    } finally {
      this.flushing = false;
    }
  }

  /** A collection begins: what is held is recorded, and each series' next observation will be recorded at once. */
  collecting(): void {
    for (const series of this.series.values()) series.started = false;
    this.flush();
  }
}
