/**
 * The cost of observability (M3, M5): the rounds of P3 or P5 run in pairs,
 * one with a metrics adapter attached in the server and one without, in
 * turn (off, on, on, off, …), for each adapter: prom-client's, then
 * OpenTelemetry's (the rows "M3 OTel", "M5 OTel"). Each round's figure is
 * already a ratio to the open route or namespace of the same round (which publishes
 * nothing), so a pair's quotient cancels the machine's drift; the row is the
 * median of the pairs. Attaching subscribes every channel, so the package
 * builds and publishes each message: that, plus the adapter's counting, is
 * what is measured.
 */
import type { Child } from "./child.js";
import { log, median, ratioStatus, round, type Row } from "./common.js";

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

/** The adapters in the order measured, with the suffix of their rows' ids ("M3", "M3 OTel"). */
const ADAPTERS: ReadonlyArray<readonly [MetricsAdapter, string]> = [
  ["prom-client", ""],
  ["opentelemetry", " OTel"],
];

/** The rows of figure `id` (M3 or M5), one per adapter: `runRound` runs one round and gives its protected ÷ open CPU. */
export async function metricsRows(server: Child, id: string, of: string, pairs: number, how: string, runRound: (index: number) => Promise<number>): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [adapter, suffix] of ADAPTERS) {
    const cost = await metricsCost(server, pairs, runRound, adapter);
    log(`${id}${suffix}: per-pair attached ÷ detached ${cost.pairs.map((each) => round(each, 3)).join(", ")}`);
    rows.push(metricsRow(`${id}${suffix}`, of, cost, how, adapter));
  }
  return rows;
}

async function metricsCost(server: Child, pairs: number, runRound: (index: number) => Promise<number>, adapter: MetricsAdapter): Promise<MetricsCost> {
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

function metricsRow(id: string, of: string, cost: MetricsCost, how: string, adapter: MetricsAdapter): Row {
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
