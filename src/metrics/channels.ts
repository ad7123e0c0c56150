/**
 * What both adapters share: subscribing to every channel of the package at
 * once (and unsubscribing, once), the bounded label values, and what is
 * kept in memory between messages (key-set and backend states).
 */
import {
  authChannel,
  backendChannel,
  discoveryChannel,
  jwksChannel,
  liveSockets,
  logoutChannel,
  revocationChannel,
  socketChannel,
  type OidcAuthMessage,
  type OidcBackendMessage,
  type OidcDiscoveryMessage,
  type OidcJwksMessage,
  type OidcKeySetState,
  type OidcLogoutMessage,
  type OidcRevocationMessage,
  type OidcSocketMessage,
} from "../diagnostics.js";

/** One listener per channel of the package. */
export interface ChannelListeners {
  auth: (message: OidcAuthMessage) => void;
  jwks: (message: OidcJwksMessage) => void;
  discovery: (message: OidcDiscoveryMessage) => void;
  socket: (message: OidcSocketMessage) => void;
  revocation: (message: OidcRevocationMessage) => void;
  logout: (message: OidcLogoutMessage) => void;
  backend: (message: OidcBackendMessage) => void;
}

/** Removes what an adapter attached. Idempotent: later calls do nothing. */
export type DetachMetrics = () => void;

/**
 * Subscribe each listener to its channel; the returned function unsubscribes
 * them all (once) and then runs `cleanup`. A listener runs inside the
 * package's own code path, where an exception would be reported as uncaught:
 * it is caught and dropped here (a metric missed rather than a crash).
 */
export function subscribeAll(listeners: ChannelListeners, cleanup: () => void): DetachMetrics {
  const pairs: Array<[{ subscribe(fn: (message: unknown) => void): void; unsubscribe(fn: (message: unknown) => void): unknown }, (message: unknown) => void]> = [
    [authChannel, quiet(listeners.auth)],
    [jwksChannel, quiet(listeners.jwks)],
    [discoveryChannel, quiet(listeners.discovery)],
    [socketChannel, quiet(listeners.socket)],
    [revocationChannel, quiet(listeners.revocation)],
    [logoutChannel, quiet(listeners.logout)],
    [backendChannel, quiet(listeners.backend)],
  ];
  for (const [channel, listener] of pairs) channel.subscribe(listener);
  let attached = true;
  return () => {
    if (!attached) return;
    attached = false;
    for (const [channel, listener] of pairs) channel.unsubscribe(listener);
    cleanup();
  };
}

function quiet(listener: (message: never) => void): (message: unknown) => void {
  return (message) => {
    try {
      listener(message as never);
    } catch {
      // never into the package's code path
    }
  };
}

/** The label value for an issuer the message could not name (a token naming no configured issuer). */
export const UNKNOWN_ISSUER = "unknown";
/** The label value for a field the message leaves undefined (no cache lookup, no failure, no code). */
export const NONE = "none";

export const issuerLabel = (issuer: string | undefined): string => issuer ?? UNKNOWN_ISSUER;
export const orNone = (value: string | undefined): string => value ?? NONE;

/** Milliseconds (as the channels measure) to seconds (as both ecosystems record durations). */
export const seconds = (ms: number): number => ms / 1000;

/**
 * Duration buckets, in seconds: from a cached token (microseconds) to a slow
 * key-set fetch or revocation across a cluster (seconds).
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export const KEY_SET_STATES: readonly OidcKeySetState[] = Object.freeze(["cold", "fresh", "stale", "unavailable"]);

/** A key set as its last fetch left it. */
export interface KeySetView {
  issuer: string;
  state: OidcKeySetState;
  keys: number;
  circuitOpen: boolean;
}

/**
 * The key sets' and backends' states as the last messages left them, by
 * JWKS URI (the label is its issuer: URIs are not labels) and by backend.
 */
export class LastStates {
  readonly keySets = new Map<string, KeySetView>();
  readonly backends = new Map<string, boolean>();

  jwks(message: OidcJwksMessage): KeySetView {
    const view: KeySetView = { issuer: issuerLabel(message.issuer), state: message.after, keys: message.keys, circuitOpen: message.circuit === "open" };
    this.keySets.set(message.jwksUri, view);
    return view;
  }

  backend(message: OidcBackendMessage): boolean {
    const degraded = message.state === "degraded";
    this.backends.set(message.backend, degraded);
    return degraded;
  }
}

/** One series: its label values by name, as the library wants them. */
export type SeriesLabels = Readonly<Record<string, string>>;

/**
 * Series by their label values, found through one map per label (a trie):
 * finding an existing series reads a few maps and allocates nothing, which
 * matters on the path of every authentication. Label values are bounded
 * (codes, enums, configured issuers, namespaces), so the table is too.
 * Pass the values in the order of `labelNames` (up to five).
 */
class SeriesTable<S extends { labels: SeriesLabels }> {
  private readonly root = new Map<string, unknown>();
  private readonly all: S[] = [];
  /**
   * The label values asked for last and their series: a stream of one kind
   * of event (a cached token presented again and again) finds its series
   * with five comparisons instead of a map per label.
   */
  private lastA: string | undefined;
  private lastB: string | undefined;
  private lastC: string | undefined;
  private lastD: string | undefined;
  private lastE: string | undefined;
  private lastSeries: S | undefined;

  constructor(
    readonly labelNames: readonly string[],
    private readonly create: (labels: SeriesLabels) => S,
  ) {
    if (labelNames.length < 1 || labelNames.length > 5) throw new RangeError("a series has one to five labels");
  }

  protected at(a: string, b?: string, c?: string, d?: string, e?: string): S {
    const last = this.lastSeries;
    if (last !== undefined && a === this.lastA && b === this.lastB && c === this.lastC && d === this.lastD && e === this.lastE) return last;
    const series = this.find(a, b, c, d, e);
    this.lastA = a;
    this.lastB = b;
    this.lastC = c;
    this.lastD = d;
    this.lastE = e;
    this.lastSeries = series;
    return series;
  }

  private find(a: string, b?: string, c?: string, d?: string, e?: string): S {
    const depth = this.labelNames.length;
    let map = this.root;
    for (let level = 0; level < depth - 1; level++) {
      const key = (level === 0 ? a : level === 1 ? b : level === 2 ? c : d) ?? "";
      let next = map.get(key) as Map<string, unknown> | undefined;
      if (next === undefined) map.set(key, (next = new Map()));
      map = next;
    }
    const last = (depth === 1 ? a : depth === 2 ? b : depth === 3 ? c : depth === 4 ? d : e) ?? "";
    let series = map.get(last) as S | undefined;
    if (series === undefined) {
      const values = [a, b, c, d, e];
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, index) => {
        labels[name] = values[index] ?? "";
      });
      series = this.create(Object.freeze(labels));
      map.set(last, series);
      this.all.push(series);
    }
    return series;
  }

  /** Every series, in the order they first appeared. */
  values(): readonly S[] {
    return this.all;
  }

  clear(): void {
    this.root.clear();
    this.all.length = 0;
    this.lastSeries = undefined;
  }
}

/**
 * Running totals by label values, kept by the adapter itself: the library
 * reads them when it collects (an OpenTelemetry observable counter, a
 * prom-client counter's `collect`) rather than hashing the labels on every
 * event.
 */
export class Tally extends SeriesTable<{ labels: SeriesLabels; value: number }> {
  constructor(labelNames: readonly string[]) {
    super(labelNames, (labels) => ({ labels, value: 0 }));
  }

  /** Add `value` to the series of these label values (in the order of `labelNames`). */
  add(value: number, a: string, b?: string, c?: string, d?: string, e?: string): void {
    this.at(a, b, c, d, e).value += value;
  }
}

/** A histogram series kept by the adapter: the count in each of DURATION_BUCKETS (the last slot: above them all), the sum and the count. */
export interface HistogramSeries {
  labels: SeriesLabels;
  buckets: Float64Array;
  sum: number;
  count: number;
}

/** Histograms kept by the adapter itself (see Tally): an observation is a few map reads and three additions. */
export class HistogramTally extends SeriesTable<HistogramSeries> {
  constructor(labelNames: readonly string[]) {
    super(labelNames, (labels) => ({ labels, buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 }));
  }

  observe(value: number, a: string, b?: string, c?: string, d?: string, e?: string): void {
    const series = this.at(a, b, c, d, e);
    let slot = 0;
    while (slot < DURATION_BUCKETS.length && value > DURATION_BUCKETS[slot]!) slot++;
    series.buckets[slot]! += 1;
    series.sum += value;
    series.count += 1;
  }
}

/**
 * A series of a synchronous OpenTelemetry instrument: its attributes object,
 * made once (a record takes one object per call), and whether it was
 * recorded since the last collection (see BatchedHistogram).
 */
export interface AttributeSeries {
  readonly labels: SeriesLabels;
  started: boolean;
}

/** The series of a synchronous OpenTelemetry instrument, by label values. */
export class AttributeSets extends SeriesTable<AttributeSeries> {
  constructor(labelNames: readonly string[]) {
    super(labelNames, (labels) => ({ labels, started: false }));
  }

  of(a: string, b?: string, c?: string, d?: string, e?: string): AttributeSeries {
    return this.at(a, b, c, d, e);
  }
}

/** The live authenticated sockets of this process by namespace (the package's own count, in memory). */
export function liveSocketsByNamespace(): ReadonlyMap<string, number> {
  return liveSockets;
}
