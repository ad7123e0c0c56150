/**
 * The app's metrics: ioserver-oidc's events recorded by its prom-client
 * adapter (`ioserver-oidc/metrics`) in a registry of the demo's own. Served
 * as Prometheus text at `/metrics`, and summed up as a small JSON view for
 * the admin page's live panel (`/admin/metrics`).
 */
import { BaseManager, type AppHandle } from "ioserver";
import type { Registry } from "prom-client";

/** The admin panel's view: running totals (the page turns them into rates) and current states. */
export interface MetricsSummary {
  /** When it was read (ms since the epoch). */
  at: number;
  /** Authentications since start, by outcome ("success" or the refusal's code). */
  authentications: Record<string, number>;
  /** Authenticated sockets connected now, by namespace. */
  liveSockets: Record<string, number>;
  /** Each key set's state after its last fetch, and its number of keys. */
  keySets: Array<{ issuer: string; state: string; keys: number }>;
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
}

export class MetricsManager extends BaseManager {
  protected static readonly registry: Registry | undefined;

  /** Bound to a registry like UsersManager to its database: `addManager({ name: "metrics", manager: MetricsManager.using(registry) })`. */
  static using(registry: Registry): typeof MetricsManager {
    return class RegistryMetricsManager extends MetricsManager {
      protected static override readonly registry = registry;
    };
  }

  private readonly registry: Registry;

  constructor(appHandle: AppHandle) {
    super(appHandle);
    const registry = (this.constructor as typeof MetricsManager).registry;
    if (registry === undefined) throw new TypeError("MetricsManager: register MetricsManager.using(registry)");
    this.registry = registry;
  }

  /** The Prometheus text exposition and its content type. */
  async prometheus(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  async summary(): Promise<MetricsSummary> {
    const samples = async (name: string): Promise<Sample[]> => ((await this.registry.getSingleMetric(name)?.get())?.values ?? []) as Sample[];
    const authentications: Record<string, number> = {};
    for (const { labels, value } of await samples("ioserver_oidc_authentications_total")) {
      const outcome = String(labels.outcome);
      authentications[outcome] = (authentications[outcome] ?? 0) + value;
    }
    const liveSockets: Record<string, number> = {};
    for (const { labels, value } of await samples("ioserver_oidc_live_sockets")) liveSockets[String(labels.namespace)] = value;
    const keys = new Map((await samples("ioserver_oidc_jwks_keys")).map(({ labels, value }) => [String(labels.issuer), value]));
    const keySets = (await samples("ioserver_oidc_jwks_state"))
      .filter(({ value }) => value === 1)
      .map(({ labels }) => ({ issuer: String(labels.issuer), state: String(labels.state), keys: keys.get(String(labels.issuer)) ?? 0 }));
    return { at: Date.now(), authentications, liveSockets, keySets };
  }
}
