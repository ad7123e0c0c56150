/**
 * The package's channels as OpenTelemetry metrics, recorded through a
 * `Meter` the app passes in. `@opentelemetry/api` is imported for its types
 * only: nothing of it is loaded at run time, so an app using prom-client
 * alone does not need it installed.
 */
import type { Attributes, Meter, ObservableCallback, ObservableGauge } from "@opentelemetry/api";
import { DURATION_BUCKETS, issuerLabel, KEY_SET_STATES, LastStates, liveSocketsByNamespace, orNone, seconds, subscribeAll, type DetachMetrics } from "./channels.js";

export interface OpenTelemetryMetricsOptions {
  /** The meter to create the instruments on, e.g. `metrics.getMeter("my-app")`. */
  meter: Meter;
}

/**
 * Record the package's events as OpenTelemetry counters, histograms (in
 * seconds) and observable gauges on `options.meter`. Returns `detach()`,
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

  const authentications = meter.createCounter("ioserver_oidc.authentications", { description: "Authentication decisions (HTTP, handshake, in-band refresh, verifyOidcToken)", unit: "{authentication}" });
  const authDuration = histogram("ioserver_oidc.authentication.duration", "Time from the start of an authentication to its decision");
  const jwksFetches = meter.createCounter("ioserver_oidc.jwks.fetches", { description: "JWKS fetches completed", unit: "{fetch}" });
  const jwksDuration = histogram("ioserver_oidc.jwks.fetch.duration", "Duration of a JWKS fetch");
  const discoveries = meter.createCounter("ioserver_oidc.discoveries", { description: "OpenID Connect discoveries completed", unit: "{discovery}" });
  const discoveryDuration = histogram("ioserver_oidc.discovery.duration", "Duration of an OpenID Connect discovery");
  const socketEvents = meter.createCounter("ioserver_oidc.socket.events", { description: "Events of live sockets", unit: "{event}" });
  const revocations = meter.createCounter("ioserver_oidc.revocations", { description: "Revocations made on this node", unit: "{revocation}" });
  const revokedSockets = meter.createCounter("ioserver_oidc.revocation.sockets", { description: "Sockets of this node ended by revocations", unit: "{socket}" });
  const revocationDuration = histogram("ioserver_oidc.revocation.duration", "Duration of a revocation (recording, broadcasting, counting)");
  const logouts = meter.createCounter("ioserver_oidc.backchannel_logouts", { description: "Back-channel logout requests answered", unit: "{request}" });
  const logoutDuration = histogram("ioserver_oidc.backchannel_logout.duration", "Duration of a back-channel logout request");
  const outages = meter.createCounter("ioserver_oidc.backend.outages", { description: "Times a shared backend became unavailable", unit: "{outage}" });

  const last = new LastStates();
  const gauges: Array<[ObservableGauge, ObservableCallback]> = [];
  const gauge = (name: string, description: string, unit: string, observe: (record: (value: number, attributes: Attributes) => void) => void) => {
    const instrument = meter.createObservableGauge(name, { description, unit });
    const callback: ObservableCallback = (result) => observe((value, attributes) => result.observe(value, attributes));
    instrument.addCallback(callback);
    gauges.push([instrument, callback]);
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
        authentications.add(1, { transport: message.transport, issuer, outcome: message.outcome, cache: orNone(message.cache), path });
        authDuration.record(seconds(message.durationMs), { transport: message.transport, issuer, outcome: message.outcome, path });
      },
      jwks(message) {
        const issuer = issuerLabel(message.issuer);
        jwksFetches.add(1, { issuer, outcome: message.outcome, failure: orNone(message.failure) });
        jwksDuration.record(seconds(message.durationMs), { issuer, outcome: message.outcome });
        last.jwks(message);
      },
      discovery(message) {
        const issuer = issuerLabel(message.issuer);
        discoveries.add(1, { issuer, outcome: message.outcome });
        discoveryDuration.record(seconds(message.durationMs), { issuer, outcome: message.outcome });
      },
      socket(message) {
        socketEvents.add(1, { namespace: message.namespace, event: message.event, code: orNone("code" in message ? message.code : undefined), kind: orNone("kind" in message ? message.kind : undefined) });
      },
      revocation(message) {
        revocations.add(1, { kind: message.kind });
        revokedSockets.add(message.local, { kind: message.kind });
        revocationDuration.record(seconds(message.durationMs), { kind: message.kind });
      },
      logout(message) {
        logouts.add(1, { outcome: message.outcome });
        logoutDuration.record(seconds(message.durationMs), { outcome: message.outcome });
      },
      backend(message) {
        if (last.backend(message)) outages.add(1, { backend: message.backend, source: message.source });
      },
    },
    () => {
      for (const [instrument, callback] of gauges) instrument.removeCallback(callback);
    },
  );
}
