/**
 * Keep the server the bottleneck and the load generator out of its way: on a
 * machine with at least two CPUs, the server child runs on CPU 0 and
 * everything else of the bench (this process, the load-generator child, wrk)
 * on the other CPUs, with `taskset` (util-linux). BENCH_PIN=0 turns it off;
 * without taskset or with one CPU nothing is pinned and the header says so.
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";

const SERVER_CPU = "0";

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The CPUs the load side gets ("1" on two CPUs, "1-3" on four), or undefined when nothing is pinned. */
export const LOAD_CPUS: string | undefined =
  process.env.BENCH_PIN !== "0" && process.platform === "linux" && availableParallelism() >= 2 && hasTaskset()
    ? availableParallelism() === 2
      ? "1"
      : `1-${availableParallelism() - 1}`
    : undefined;

/** How the run is pinned, for the header. */
export function pinning(): string {
  return LOAD_CPUS === undefined
    ? "not pinned (BENCH_PIN=0, one CPU, or no taskset): server and load generator share the CPUs"
    : `server on CPU ${SERVER_CPU}, load generator and bench on CPU ${LOAD_CPUS}`;
}

/** Pin a process and all its threads (`taskset -a`): the server to CPU 0, anything else to the load CPUs. */
export function pin(pid: number | undefined, role: "server" | "load"): void {
  if (LOAD_CPUS === undefined || pid === undefined) return;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", role === "server" ? SERVER_CPU : LOAD_CPUS, String(pid)], { stdio: "ignore" });
  } catch {
    // the process may have exited; the figures still stand, unpinned
  }
}
