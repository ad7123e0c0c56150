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
import type { RefusalSource } from "../util/refusalLog.js";

export type Step<T> = (target: T, appHandle: OidcAppHandle) => void | Promise<void>;

/**
 * Run a step; `settle` receives `undefined` on success or the logged
 * failure, synchronously when the step finished synchronously, with the
 * target and the transport's two values `a` and `b` (its reply and
 * callback), so a front-end passes one function made once, not a closure
 * per request. `where` describes the target for the log (request id,
 * address, route, …); it is only called when something is logged, so an
 * accepted target costs nothing.
 */
export function runStep<T, A, B>(
  step: Step<T>,
  target: T,
  appHandle: OidcAppHandle,
  where: (target: T) => RefusalSource,
  settle: Settle<T, A, B>,
  a: A,
  b: B,
): void {
  let pending: void | Promise<void>;
  try {
    pending = step(target, appHandle);
  } catch (error) {
    decide(settle, reportFailure(appHandle, where(target), error), target, a, b, appHandle, where);
    return;
  }
  if (pending === undefined) {
    decide(settle, undefined, target, a, b, appHandle, where);
    return;
  }
  pending.then(
    () => decide(settle, undefined, target, a, b, appHandle, where),
    (error: unknown) => decide(settle, reportFailure(appHandle, where(target), error), target, a, b, appHandle, where),
  );
}

/** How a transport answers a decision: `failure` undefined to let the target through. */
export type Settle<T, A, B> = (failure: OidcAuthError | undefined, target: T, a: A, b: B) => void;

/** Hand the decision to the transport; what the transport throws then (the app's own code, run from there) is logged, not lost. */
function decide<T, A, B>(
  settle: Settle<T, A, B>,
  failure: OidcAuthError | undefined,
  target: T,
  a: A,
  b: B,
  appHandle: OidcAppHandle,
  where: (target: T) => RefusalSource,
): void {
  try {
    settle(failure, target, a, b);
  } catch (error) {
    reportFailure(appHandle, { ...where(target), note: "after the auth decision" }, error);
  }
}
