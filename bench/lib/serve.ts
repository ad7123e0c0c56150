/** The child side of bench/lib/child.ts (imported by child scripts only). */

/**
 * The child side: call `serve(handlers)` in a child script. It says
 * `spawned`, runs `onStart` with the parent's start message, says `ready`,
 * then answers `{ id, cmd }` messages. It exits when the parent goes away.
 */
export function serve(
  onStart: (message: Record<string, unknown>) => Promise<Record<string, unknown>>,
  handlers: Record<string, (message: Record<string, unknown>) => unknown>,
): void {
  const send = (message: unknown) => {
    if (process.connected) process.send?.(message);
  };
  process.on("disconnect", () => process.exit(0));
  process.on("message", (message: Record<string, unknown>) => {
    if (message.type === "start") {
      onStart(message).then(
        (info) => send({ type: "ready", pid: process.pid, ...info }),
        (error: unknown) => {
          send({ type: "fatal", error: error instanceof Error ? error.stack ?? error.message : String(error) });
          setTimeout(() => process.exit(2), 100);
        },
      );
      return;
    }
    const id = message.id as number;
    const handler = handlers[String(message.cmd)];
    if (handler === undefined) {
      send({ id, error: `unknown command ${String(message.cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message))
      .then(
        (result) => send({ id, result }),
        (error: unknown) => send({ id, error: error instanceof Error ? error.message : String(error) }),
      );
  });
  send({ type: "spawned" });
}
