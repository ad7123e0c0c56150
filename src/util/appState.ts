/**
 * One state record per app, created on first use and found from the app's
 * handle (IOServer passes the same `appHandle` object to every manager,
 * middleware and controller of one app). Each layer declares the part of the
 * record it owns with `appPart`, so this module imports nothing from above,
 * and an app's whole state is one object that is collected with the app.
 *
 * Process-wide caches (key sets, discovery documents, parsed headers) are not
 * here: they are shared by every app of the process, each bounded where it
 * is declared.
 */
import type { OidcAppHandle } from "../types.js";

/** Everything the package keeps for one app: its parts, by the `AppPart` that owns each. */
export interface AppState {
  readonly app: OidcAppHandle;
  readonly parts: Map<AppPart<unknown>, unknown>;
}

/** One named part of every app's record, created for an app the first time it is asked for. */
export interface AppPart<T> {
  readonly name: string;
  /** The app's part (created now if the app has none yet). */
  of(app: OidcAppHandle): T;
}

const states = new WeakMap<object, AppState>();
/**
 * The last record found: most processes run one app, whose record is then
 * found without a lookup. Held weakly, so a dropped app is not kept alive.
 */
let last: WeakRef<AppState> | undefined;

function appStateOf(app: OidcAppHandle): AppState {
  const recent = last?.deref();
  if (recent !== undefined && recent.app === app) return recent;
  let state = states.get(app);
  if (state === undefined) states.set(app, (state = { app, parts: new Map() }));
  last = new WeakRef(state);
  return state;
}

export function appPart<T>(name: string, create: (app: OidcAppHandle) => T): AppPart<T> {
  const part: AppPart<T> = {
    name,
    of(app) {
      const parts = appStateOf(app).parts;
      let value = parts.get(part) as T | undefined;
      if (value === undefined) parts.set(part, (value = create(app)));
      return value;
    },
  };
  return part;
}
