/**
 * The shape every transport front-end shares: one step (which throws
 * `OidcAuthError` to refuse) run for a request or a socket, its failure
 * logged once and handed to the transport to answer. A step that can decide
 * at once (a cached token, a guard) returns nothing and is settled at once:
 * no promise and no microtask turn; otherwise it returns a promise.
 */
import type { OidcAuthError } from "../errors.js";
import type { OidcAppHandle } from "../types.js";
import { reportFailure } from "./authenticate.js";

export type Step<T> = (target: T, appHandle: OidcAppHandle) => void | Promise<void>;

/**
 * Run a step; `settle` receives `undefined` on success or the logged
 * failure, synchronously when the step finished synchronously. `where`
 * names the target in the log; it is only called when something is logged.
 */
export function runStep<T>(step: Step<T>, target: T, appHandle: OidcAppHandle, where: (target: T) => string, settle: (failure?: OidcAuthError) => void): void {
  let pending: void | Promise<void>;
  try {
    pending = step(target, appHandle);
  } catch (error) {
    decide(settle, reportFailure(appHandle, where(target), error), target, appHandle, where);
    return;
  }
  if (pending === undefined) {
    decide(settle, undefined, target, appHandle, where);
    return;
  }
  pending.then(
    () => decide(settle, undefined, target, appHandle, where),
    (error: unknown) => decide(settle, reportFailure(appHandle, where(target), error), target, appHandle, where),
  );
}

/** Hand the decision to the transport; what the transport throws then (the app's own code, run from there) is logged, not lost. */
function decide<T>(settle: (failure?: OidcAuthError) => void, failure: OidcAuthError | undefined, target: T, appHandle: OidcAppHandle, where: (target: T) => string): void {
  try {
    settle(failure);
  } catch (error) {
    reportFailure(appHandle, `${where(target)} (after the auth decision)`, error);
  }
}
