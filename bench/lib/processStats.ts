/**
 * What the soak and cluster server processes report about themselves: heap
 * (after forced GCs, and the peak sampled four times a second), RSS, V8's
 * code space and the event-loop delay. Everything keeps working when the
 * process has no file descriptor left: process.memoryUsage() reads /proc and
 * throws EMFILE then, v8.getHeapStatistics() opens nothing, and the RSS is
 * NaN while it cannot be read.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";

export const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 100) / 100;

const heapUsed = (): number => getHeapStatistics().used_heap_size;
/**
 * Bytes of compiled code in V8's heap: its code spaces (machine code) and,
 * from Node 22 on, its trusted spaces (bytecode, code metadata,
 * deoptimisation data). It grows as the JIT compiles the paths run, not with
 * what the process holds.
 */
export const compiledCode = (): number =>
  getHeapSpaceStatistics()
    .filter((space) => space.space_name.startsWith("code_") || space.space_name.includes("trusted_"))
    .reduce((sum, space) => sum + space.space_used_size, 0);

function rss(): number {
  try {
    return process.memoryUsage.rss();
  } catch {
    return NaN;
  }
}

/** The histogram records the time between two ticks of a 10 ms timer: the delay is that minus 10 ms. */
const RESOLUTION_MS = 10;

export interface ProcessStats {
  /** Heap and RSS now, with the peaks since the start or the last `reset()`. */
  heap(): { heapUsedMB: number; rssMB: number; peakHeapMB: number; peakRssMB: number };
  /** The same after a forced, repeated full GC (finalizers and weak refs get a chance in between), with the code space. */
  gcHeap(): Promise<{ heapUsedMB: number; codeMB: number; rssMB: number; peakHeapMB: number; peakRssMB: number }>;
  /** Event-loop delay beyond the timer's own interval, ms. */
  eld(): { p50: number; p99: number; max: number; mean: number; count: number };
  /** Forget the peaks and the event-loop delays so far. */
  reset(): void;
  /** Samples in which the RSS could not be read (no descriptor left). */
  readonly rssUnreadable: number;
  stop(): void;
}

/** Start sampling this process (it must run with --expose-gc). */
export function processStats(gc: () => void): ProcessStats {
  let peakHeap = 0;
  let peakRss = 0;
  let rssUnreadable = 0;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, heapUsed());
    const now = rss();
    if (Number.isNaN(now)) rssUnreadable++;
    else peakRss = Math.max(peakRss, now);
  }, 250);
  const eld = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  eld.enable();
  const peaks = () => ({ peakHeapMB: mb(peakHeap), peakRssMB: mb(peakRss) });
  return {
    heap: () => ({ heapUsedMB: mb(heapUsed()), rssMB: mb(rss()), ...peaks() }),
    async gcHeap() {
      for (let i = 0; i < 4; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return { heapUsedMB: mb(heapUsed()), codeMB: mb(compiledCode()), rssMB: mb(rss()), ...peaks() };
    },
    eld() {
      const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
      return { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), mean: ms(eld.mean), count: eld.count };
    },
    reset() {
      eld.reset();
      peakHeap = 0;
      peakRss = 0;
    },
    get rssUnreadable() {
      return rssUnreadable;
    },
    stop() {
      clearInterval(sampler);
      eld.disable();
    },
  };
}
