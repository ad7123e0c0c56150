/**
 * `ioserver-oidc/metrics`: the package's diagnostics channels as metrics,
 * for OpenTelemetry or prom-client (both optional peers; the app passes its
 * own meter or prom-client module). See docs/observability.md#metrics.
 */
export { attachOpenTelemetryMetrics, type OpenTelemetryMetricsOptions } from "./attachOpenTelemetryMetrics.js";
export { attachPrometheusMetrics, type PrometheusMetricsOptions, type PromClientModule } from "./attachPrometheusMetrics.js";
export type { DetachMetrics } from "./channels.js";
