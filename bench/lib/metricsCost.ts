/**
 * The cost of observability (M3, M5): the rounds of P3 or P5 run in pairs,
 * one with the prom-client metrics adapter attached in the server and one
 * without, in turn (off, on, on, off, …). Each round's figure is already a
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

export async function metricsCost(server: Child, pairs: number, runRound: (index: number) => Promise<number>): Promise<MetricsCost> {
  const cost: MetricsCost = { off: [], on: [], pairs: [] };
  try {
    for (let index = 0; index < pairs; index++) {
      const figures: { off?: number; on?: number } = {};
      for (const attached of index % 2 === 0 ? [false, true] : [true, false]) {
        await server.ask("metrics", { attached });
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

export function metricsRow(id: string, of: string, cost: MetricsCost, how: string): Row {
  const value = median(cost.pairs);
  const spread = `${round(Math.min(...cost.pairs), 3)}–${round(Math.max(...cost.pairs), 3)}`;
  return {
    id,
    measure: `${of} with the prom-client metrics adapter attached ÷ without (server CPU)`,
    value: `${round(value, 3).toFixed(3)}×`,
    target: `≤ ${METRICS_TARGET}×`,
    status: ratioStatus(value, METRICS_TARGET, "<="),
    detail:
      `protected ÷ open CPU ${round(median(cost.on), 3)} attached vs ${round(median(cost.off), 3)} detached (medians); ` +
      `${cost.pairs.length} pairs of rounds, per-pair ${spread}; ${how}`,
    data: { ...cost, value },
  };
}
