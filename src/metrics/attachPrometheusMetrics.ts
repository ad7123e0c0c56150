/**
 * The package's channels as prom-client metrics. The app passes its own
 * prom-client module, so the metrics land in the app's copy (and registry),
 * and nothing of prom-client is loaded by this package: an app using
 * OpenTelemetry alone does not need it installed.
 */
import type * as PromClient from "prom-client";
import { DURATION_BUCKETS, HistogramTally, issuerLabel, KEY_SET_STATES, LastStates, liveSocketsByNamespace, orNone, seconds, subscribeAll, Tally, type DetachMetrics, type SeriesLabels } from "./channels.js";

/** What the adapter uses of the prom-client module. */
export type PromClientModule = Pick<typeof PromClient, "Counter" | "Gauge" | "Histogram" | "register">;

export interface PrometheusMetricsOptions {
  /** The app's prom-client module: `import promClient from "prom-client"` or `require("prom-client")`. */
  client: PromClientModule;
  /** The registry to register the metrics in; prom-client's default registry (`client.register`) otherwise. */
  registry?: PromClient.Registry;
}

/**
 * Register the package's metrics (counters `*_total`, histograms
 * `*_seconds`, gauges) in the registry and record the package's events in
 * them. Returns `detach()`, which stops recording and removes the metrics
 * from the registry (so they can be attached again). See
 * docs/observability.md#metrics for every metric.
 */
export function attachPrometheusMetrics(options: PrometheusMetricsOptions): DetachMetrics {
  const client = (options as Partial<PrometheusMetricsOptions> | undefined)?.client;
  if (client === null || typeof client !== "object" || typeof client.Counter !== "function" || typeof client.Histogram !== "function" || typeof client.Gauge !== "function") {
    throw new TypeError('attachPrometheusMetrics: "client" must be the prom-client module (import promClient from "prom-client")');
  }
  const registry = options.registry ?? client.register;
  const registers = [registry];
  const names: string[] = [];
  const named = <T>(name: string, metric: () => T): T => {
    const made = metric();
    names.push(name);
    return made;
  };
  // A counter reads the adapter's own totals when collected: counting an event costs a map lookup, not a label hash.
  const counter = (name: string, help: string, labelNames: readonly string[]): Tally => {
    const tally = new Tally(labelNames);
    named(name, () => new client.Counter<string>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const { labels, value } of tally.values()) this.inc(labels, value);
      },
    }));
    return tally;
  };
  // A histogram is the adapter's own too (an observation is a few map reads and three additions), shown to
  // the registry as a metric of prom-client's shape: `get()` / `getForPromString()` give its series.
  const histogram = (name: string, help: string, labelNames: readonly string[]): HistogramTally => {
    const tally = new HistogramTally(labelNames);
    const read = (splay: boolean) => ({ name, help, type: "histogram", aggregator: "sum", values: histogramValues(name, tally, splay) });
    const metric = { name, help, type: "histogram", aggregator: "sum", labelNames, get: () => Promise.resolve(read(true)), getForPromString: () => Promise.resolve(read(false)), reset: () => tally.clear() };
    named(name, () => registry.registerMetric(metric as unknown as PromClient.Metric));
    return tally;
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], collect?: (this: PromClient.Gauge<L>) => void) =>
    named(name, () => new client.Gauge<L>({ name, help, labelNames, registers, ...(collect === undefined ? {} : { collect }) }));

  const last = new LastStates();
  try {
    const authentications = counter("ioserver_oidc_authentications_total", "Authentication decisions (HTTP, handshake, in-band refresh, verifyOidcToken)", ["transport", "issuer", "outcome", "cache", "path"]);
    const authDuration = histogram("ioserver_oidc_authentication_duration_seconds", "Time from the start of an authentication to its decision", ["transport", "issuer", "outcome", "path"]);
    const jwksFetches = counter("ioserver_oidc_jwks_fetches_total", "JWKS fetches completed", ["issuer", "outcome", "failure"]);
    const jwksDuration = histogram("ioserver_oidc_jwks_fetch_duration_seconds", "Duration of a JWKS fetch", ["issuer", "outcome"]);
    const jwksState = gauge("ioserver_oidc_jwks_state", "Each key set's state after its last fetch: 1 for the current state, 0 for the others", ["issuer", "state"]);
    const jwksKeys = gauge("ioserver_oidc_jwks_keys", "Keys in each key set after its last fetch", ["issuer"]);
    const jwksCircuit = gauge("ioserver_oidc_jwks_circuit_open", "1 while a key set's circuit is open (requests fail fast), else 0", ["issuer"]);
    const discoveries = counter("ioserver_oidc_discoveries_total", "OpenID Connect discoveries completed", ["issuer", "outcome"]);
    const discoveryDuration = histogram("ioserver_oidc_discovery_duration_seconds", "Duration of an OpenID Connect discovery", ["issuer", "outcome"]);
    const socketEvents = counter("ioserver_oidc_socket_events_total", "Events of live sockets", ["namespace", "event", "code", "kind"]);
    gauge("ioserver_oidc_live_sockets", "Authenticated sockets connected to this process, by namespace", ["namespace"], function collect() {
      for (const [namespace, count] of liveSocketsByNamespace()) this.set({ namespace }, count);
    });
    const revocations = counter("ioserver_oidc_revocations_total", "Revocations made on this node", ["kind"]);
    const revokedSockets = counter("ioserver_oidc_revoked_sockets_total", "Sockets of this node ended by revocations", ["kind"]);
    const revocationDuration = histogram("ioserver_oidc_revocation_duration_seconds", "Duration of a revocation (recording, broadcasting, counting)", ["kind"]);
    const logouts = counter("ioserver_oidc_backchannel_logouts_total", "Back-channel logout requests answered", ["outcome"]);
    const logoutDuration = histogram("ioserver_oidc_backchannel_logout_duration_seconds", "Duration of a back-channel logout request", ["outcome"]);
    const backendDegraded = gauge("ioserver_oidc_backend_degraded", "1 while a shared backend is unavailable, else 0", ["backend"]);
    const outages = counter("ioserver_oidc_backend_outages_total", "Times a shared backend became unavailable", ["backend", "source"]);

    return subscribeAll(
      {
        auth(message) {
          const issuer = issuerLabel(message.issuer);
          const path = orNone(message.path);
          authentications.add(1, message.transport, issuer, message.outcome, orNone(message.cache), path);
          authDuration.observe(seconds(message.durationMs), message.transport, issuer, message.outcome, path);
        },
        jwks(message) {
          const issuer = issuerLabel(message.issuer);
          jwksFetches.add(1, issuer, message.outcome, orNone(message.failure));
          jwksDuration.observe(seconds(message.durationMs), issuer, message.outcome);
          const view = last.jwks(message);
          for (const state of KEY_SET_STATES) jwksState.set({ issuer, state }, view.state === state ? 1 : 0);
          jwksKeys.set({ issuer }, view.keys);
          jwksCircuit.set({ issuer }, view.circuitOpen ? 1 : 0);
        },
        discovery(message) {
          const issuer = issuerLabel(message.issuer);
          discoveries.add(1, issuer, message.outcome);
          discoveryDuration.observe(seconds(message.durationMs), issuer, message.outcome);
        },
        socket(message) {
          socketEvents.add(1, message.namespace, message.event, orNone("code" in message ? message.code : undefined), orNone("kind" in message ? message.kind : undefined));
        },
        revocation(message) {
          revocations.add(1, message.kind);
          revokedSockets.add(message.local, message.kind);
          revocationDuration.observe(seconds(message.durationMs), message.kind);
        },
        logout(message) {
          logouts.add(1, message.outcome);
          logoutDuration.observe(seconds(message.durationMs), message.outcome);
        },
        backend(message) {
          const degraded = last.backend(message);
          backendDegraded.set({ backend: message.backend }, degraded ? 1 : 0);
          if (degraded) outages.add(1, message.backend, message.source);
        },
      },
      () => {
        for (const name of names) registry.removeSingleMetric(name);
      },
    );
  } catch (error) {
    // A metric that could not be registered (a name already in the registry): take out those registered before it.
    for (const name of names) registry.removeSingleMetric(name);
    throw error;
  }
}

/** A value as prom-client's registry reads it: `labels` alone (`get()`, the JSON view), or with the series' labels apart (the text view). */
interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels?: SeriesLabels;
  value: number;
  metricName: string;
}

/** The series of a histogram as prom-client's own histograms give them: cumulative `_bucket`s, `+Inf`, `_sum`, `_count`. */
function histogramValues(name: string, tally: HistogramTally, splay: boolean): HistogramValue[] {
  const values: HistogramValue[] = [];
  const push = (metricName: string, labels: Record<string, string | number>, series: SeriesLabels, value: number) => {
    values.push(splay ? { labels: { ...series, ...labels }, value, metricName } : { labels, sharedLabels: series, value, metricName });
  };
  for (const series of tally.values()) {
    let cumulative = 0;
    DURATION_BUCKETS.forEach((bound, slot) => {
      cumulative += series.buckets[slot]!;
      push(`${name}_bucket`, { le: bound }, series.labels, cumulative);
    });
    push(`${name}_bucket`, { le: "+Inf" }, series.labels, series.count);
    push(`${name}_sum`, {}, series.labels, series.sum);
    push(`${name}_count`, {}, series.labels, series.count);
  }
  return values;
}
