/**
 * The shape every transport front-end shares: one asynchronous step (which
 * throws `OidcAuthError` to refuse) run for a request or a socket, its
 * failure logged once and handed to the transport to answer.
 */
import type { OidcAuthError } from "../errors.js";
import type { OidcAppHandle } from "../types.js";
import { reportFailure } from "./authenticate.js";

export type Step<T> = (target: T, appHandle: OidcAppHandle) => Promise<void>;

/** Run a step; `settle` receives `undefined` on success or the logged failure. */
export function runStep<T>(step: Step<T>, target: T, appHandle: OidcAppHandle, where: () => string, settle: (failure?: OidcAuthError) => void): void {
  let failure: OidcAuthError | undefined;
  step(target, appHandle)
    .catch((error: unknown) => {
      failure = reportFailure(appHandle, where(), error);
    })
    .then(() => settle(failure))
    .catch((error: unknown) => reportFailure(appHandle, `${where()} (after the auth decision)`, error));
}
