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

/**
 * Running totals by label values, kept by the adapter itself: counting an
 * event is a string join and a map lookup, and the library reads the totals
 * when it collects (an OpenTelemetry observable counter, a prom-client
 * counter's `collect`), rather than hashing the labels on every event.
 */
export class Tally {
  private readonly series = new Map<string, { labels: Record<string, string>; value: number }>();

  constructor(private readonly labelNames: readonly string[]) {}

  /** Add `value` to the series of these label values (in the order of `labelNames`). */
  add(value: number, values: readonly string[]): void {
    // Label values hold no NUL (configured issuers, namespaces, codes, enums): the join names one series.
    const key = values.join("\u0000");
    const found = this.series.get(key);
    if (found !== undefined) {
      found.value += value;
      return;
    }
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, index) => {
      labels[name] = values[index] ?? "";
    });
    this.series.set(key, { labels, value });
  }

  /** Every series: its labels and its total. */
  values(): IterableIterator<{ labels: Record<string, string>; value: number }> {
    return this.series.values();
  }
}

/** The live authenticated sockets of this process by namespace (the package's own count, in memory). */
export function liveSocketsByNamespace(): ReadonlyMap<string, number> {
  return liveSockets;
}
