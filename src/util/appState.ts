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

/** Everything the package keeps for one app: its parts, each at the index of the `AppPart` that owns it. */
export interface AppState {
  readonly app: OidcAppHandle;
  readonly parts: unknown[];
}

/** One named part of every app's record, created for an app the first time it is asked for. */
export interface AppPart<T> {
  readonly name: string;
  /** The app's part (created now if the app has none yet). */
  of(app: OidcAppHandle): T;
}

/**
 * The record lives on the handle itself, under a symbol (not enumerable, not
 * writable): found with one property read on every request and handshake,
 * and collected with the handle. A record read through the prototype chain
 * (a handle made with `Object.create(handle)`) is another handle's: such a
 * handle, and one that cannot take a property (frozen, or a proxy that
 * refuses), has its record in a WeakMap instead.
 */
const STATE = Symbol("ioserver-oidc.state");
const elsewhere = new WeakMap<object, AppState>();

function appStateOf(app: OidcAppHandle): AppState {
  let own: AppState | undefined;
  try {
    own = (app as { [STATE]?: AppState })[STATE];
  } catch {
    own = undefined; // a proxy that throws on keys it does not know
  }
  if (own !== undefined && own.app === app) return own;
  let state = elsewhere.get(app);
  if (state !== undefined) return state;
  state = { app, parts: [] };
  let kept: boolean;
  try {
    kept = own === undefined && Reflect.defineProperty(app, STATE, { value: state, enumerable: false, writable: false, configurable: false });
  } catch {
    kept = false;
  }
  if (!kept) elsewhere.set(app, state);
  return state;
}

/** Parts declared so far: each new part takes the next index of every record. */
let declared = 0;

export function appPart<T>(name: string, create: (app: OidcAppHandle) => T): AppPart<T> {
  const index = declared++;
  return {
    name,
    of(app) {
      const parts = appStateOf(app).parts;
      let value = parts[index] as T | undefined;
      if (value === undefined) parts[index] = value = create(app);
      return value;
    },
  };
}
