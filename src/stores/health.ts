/**
 * One app's view of its shared backends (Redis, in practice): one log line
 * (and one `backend` channel message) when an outage starts and one when it
 * ends, whichever of the session store, the revocation store and the
 * adapter's publisher notices first.
 */
import type { OidcAppHandle } from "../types.js";
import { appPart } from "../util/appState.js";
import { oidcLog } from "../util/log.js";
import { describeError } from "../util/text.js";
import { backendChannel } from "../diagnostics.js";

export interface RedisHealth {
  /** Whether some source's last outcome was a failure. */
  readonly down: boolean;
  /**
   * Report a failure of `source` (e.g. "session store", "adapter publish").
   * Logs at level 4 when it starts an outage (no source was down before).
   */
  failed(source: string, error: unknown, operation?: string): void;
  /**
   * Report a success of `source`. Logs at level 6, and returns true, when it
   * ends the outage (no source is down any more).
   */
  ok(source: string, detail?: string): boolean;
}

function createHealth(appHandle: OidcAppHandle): RedisHealth {
  const down = new Set<string>();
  return {
    get down() {
      return down.size > 0;
    },
    failed(source, error, operation) {
      const wasUp = down.size === 0;
      down.add(source);
      if (!wasUp) return;
      if (backendChannel.hasSubscribers) backendChannel.publish({ backend: "redis", source, state: "degraded" });
      oidcLog(
        appHandle,
        4,
        `Redis unavailable (${source}${operation ? ` ${operation}` : ""}: ${describeError(error)}): sessions are node-local and revocations reach this node only until it returns`,
      );
    },
    ok(source, detail) {
      if (!down.delete(source) || down.size > 0) return false;
      if (backendChannel.hasSubscribers) backendChannel.publish({ backend: "redis", source, state: "healed" });
      oidcLog(appHandle, 6, `Redis available again (${source})${detail ? `: ${detail}` : ""}`);
      return true;
    },
  };
}

const health = appPart("backend health", createHealth);

/** The app's backend health. */
export function healthOf(appHandle: OidcAppHandle): RedisHealth {
  return health.of(appHandle);
}
