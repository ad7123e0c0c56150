/**
 * Child processes of the bench (the IOServer app, the load generator) and
 * their IPC: request/answer with an id, every wait bounded, and every child
 * killed when the run ends — normally, on failure, or on Ctrl-C.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const live = new Set<ChildProcess>();

/** Kill every child still running (SIGKILL): used on exit, on signals and after a failure. */
export function killAllChildren(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  live.clear();
}
process.on("exit", killAllChildren);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}

interface Answer {
  id?: number;
  result?: unknown;
  error?: string;
  type?: string;
}

export interface ChildOptions {
  /** Extra node flags (before `--import tsx`), e.g. `--expose-gc`. */
  nodeArgs?: string[];
  /** How long to wait for the child's `{ type: "ready" }`. */
  readyTimeoutMs?: number;
  /** Sent once the child says `{ type: "spawned" }`; the child answers `ready`. */
  start?: Record<string, unknown>;
}

export class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private exitError: Error | undefined;
  /** Whatever the child sent with `ready`. */
  ready: Record<string, unknown> = {};

  private constructor(readonly name: string, readonly process: ChildProcess) {
    process.on("message", (message: Answer) => {
      if (message.id === undefined) return;
      const entry = this.waiting.get(message.id);
      if (entry === undefined) return;
      this.waiting.delete(message.id);
      clearTimeout(entry.timer);
      if (message.error !== undefined) entry.reject(new Error(`${name}: ${message.error}`));
      else entry.resolve(message.result);
    });
    process.once("exit", (code, signal) => {
      live.delete(process);
      this.exitError = new Error(`${name} exited (code ${code}, signal ${signal})`);
      for (const [id, entry] of this.waiting) {
        clearTimeout(entry.timer);
        entry.reject(this.exitError);
        this.waiting.delete(id);
      }
    });
  }

  /** Fork `script` (relative to bench/) with `--import tsx` and wait for it to be ready. */
  static async start(name: string, script: string, options: ChildOptions = {}): Promise<Child> {
    const path = fileURLToPath(new URL(`../${script}`, import.meta.url));
    const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const child = fork(path, [], {
      execArgv: [...(options.nodeArgs ?? []), ...(name.startsWith("server") ? extra : []), "--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    live.add(child);
    const wrapper = new Child(name, child);
    const timeoutMs = options.readyTimeoutMs ?? 30_000;
    try {
      wrapper.ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs} ms`)), timeoutMs);
        const onMessage = (message: Answer & Record<string, unknown>) => {
          if (message.type === "spawned") child.send({ type: "start", ...(options.start ?? {}) });
          if (message.type === "ready") done(undefined, message);
          if (message.type === "fatal") done(new Error(`${name}: ${String(message.error)}`));
        };
        const onExit = (code: number | null) => done(new Error(`${name} exited during start-up (code ${code})`));
        const done = (error?: Error, message?: Record<string, unknown>) => {
          clearTimeout(timer);
          child.off("message", onMessage);
          child.off("exit", onExit);
          if (error) reject(error);
          else resolve(message ?? {});
        };
        child.on("message", onMessage);
        child.once("exit", onExit);
      });
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    }
    return wrapper;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Send a command and wait (bounded) for its answer. */
  ask<T>(cmd: string, payload: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name} did not answer ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.process.send({ id, cmd, ...payload });
    });
  }

  /** Ask the child to stop; SIGKILL if it has not exited 5 s later. */
  async stop(): Promise<void> {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await this.ask("stop", {}, 5_000).catch(() => undefined);
    const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(killer);
  }
}
