/**
 * The cost of observability (M3, M5): the rounds of P3 or P5 run in pairs,
 * one with a metrics adapter attached in the server and one without, in
 * turn (off, on, on, off, …), for each adapter: prom-client's, then
 * OpenTelemetry's (the rows "M3 OTel", "M5 OTel"). Each round's figure is already a
 * ratio to the open route or namespace of the same round (which publishes
 * nothing), so a pair's quotient cancels the machine's drift; the row is the
 * median of the pairs. Attaching subscribes every channel, so the package
 * builds and publishes each message: that, plus the adapter's counting, is
 * what is measured.
 */
import type { Child } from "./child.js";
import { median, ratioStatus, round, type Row } from "./common.js";

/** With the adapter attached, server CPU per request or handshake: at most this many times the same without. */
export const METRICS_TARGET = 1.05;

export interface MetricsCost {
  /** Each round's figure (protected ÷ open CPU) with the adapter detached, and attached. */
  off: number[];
  on: number[];
  /** Per pair: attached ÷ detached. */
  pairs: number[];
}

/** The adapters measured: the `metrics` message of the server child (bench/servers/app.ts) attaches either. */
export type MetricsAdapter = "prom-client" | "opentelemetry";

/** The rows of each figure, one per adapter. */
export const METRICS_ROWS: Readonly<Record<"M3" | "M5", ReadonlyArray<readonly [string, MetricsAdapter]>>> = {
  M3: [
    ["M3", "prom-client"],
    ["M3 OTel", "opentelemetry"],
  ],
  M5: [
    ["M5", "prom-client"],
    ["M5 OTel", "opentelemetry"],
  ],
};

export async function metricsCost(server: Child, pairs: number, runRound: (index: number) => Promise<number>, adapter: MetricsAdapter = "prom-client"): Promise<MetricsCost> {
  const cost: MetricsCost = { off: [], on: [], pairs: [] };
  try {
    for (let index = 0; index < pairs; index++) {
      const figures: { off?: number; on?: number } = {};
      for (const attached of index % 2 === 0 ? [false, true] : [true, false]) {
        const state = await server.ask<{ attached: boolean; adapter: MetricsAdapter | null }>("metrics", { attached, adapter });
        if (state.attached !== attached || (attached && state.adapter !== adapter)) throw new Error(`the server did not ${attached ? `attach the ${adapter}` : "detach the"} metrics adapter`);
        const figure = await runRound(index);
        figures[attached ? "on" : "off"] = figure;
        cost[attached ? "on" : "off"].push(figure);
      }
      cost.pairs.push(figures.on! / figures.off!);
    }
  } finally {
    await server.ask("metrics", { attached: false });
  }
  return cost;
}

export function metricsRow(id: string, of: string, cost: MetricsCost, how: string, adapter: MetricsAdapter = "prom-client"): Row {
  const value = median(cost.pairs);
  const spread = `${round(Math.min(...cost.pairs), 3)}–${round(Math.max(...cost.pairs), 3)}`;
  return {
    id,
    measure: `${of} with the ${adapter === "prom-client" ? "prom-client" : "OpenTelemetry (SDK meter)"} metrics adapter attached ÷ without (server CPU)`,
    value: `${round(value, 3).toFixed(3)}×`,
    target: `≤ ${METRICS_TARGET}×`,
    status: ratioStatus(value, METRICS_TARGET, "<="),
    detail:
      `protected ÷ open CPU ${round(median(cost.on), 3)} attached vs ${round(median(cost.off), 3)} detached (medians); ` +
      `${cost.pairs.length} pairs of rounds, per-pair ${spread}; ${how}`,
    data: { ...cost, value },
  };
}
