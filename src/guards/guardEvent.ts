/**
 * Per-event guards inside a Socket.IO namespace: `guardEvent()` and the
 * `@guarded()` method decorator run guards' checks against the socket's
 * current context before a handler, so one event can need more than the
 * namespace's handshake asked for.
 */
import { reportFailure } from "../pipeline/authenticate.js";
import type { OidcAuthError } from "../errors.js";
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import { show } from "../util/text.js";
import { contextOf } from "../sockets/socketState.js";
import { socketSource } from "../sockets/refusalSource.js";

/** What per-event guarding needs of a guard: a function (a front-end's guard class or hook) carrying its check. */
export interface EventGuard {
  readonly name: string;
  check(context: OidcUserContext | null | undefined): void;
}

/** What a refused event's acknowledgement receives. */
export interface OidcGuardedEventRefusal {
  status: "error";
  code: OidcAuthError["code"];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handlers take IOServer/Socket.IO sockets and any arguments; `any` keeps user handlers assignable whatever their parameter types (`unknown` would reject them)
export type EventHandler = (this: any, socket: any, ...rest: any[]) => unknown;

/** What `guarded(...)` returns: a standard method decorator. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handlers take IOServer/Socket.IO sockets and any arguments; `any` keeps user handlers assignable whatever their parameter types (`unknown` would reject them)
export type GuardedDecorator = <This, T extends (this: This, socket: any, ...rest: any[]) => any>(
  method: T,
  context: ClassMethodDecoratorContext<This, T>,
) => T;

/**
 * What `guardEvent(guards, handler)` returns: an async function with the
 * handler's `this` and parameters (IOServer always passes `socket, data,
 * callback`, so extra arguments are accepted) resolving to the handler's
 * result, or to `undefined` when refused.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handlers take IOServer/Socket.IO sockets and any arguments; `any` keeps user handlers assignable whatever their parameter types (`unknown` would reject them)
export type OidcGuardedEvent<H extends (this: any, socket: any, ...rest: any[]) => unknown> = (
  this: ThisParameterType<H>,
  ...args: [...Parameters<H>, ...unknown[]]
) => Promise<Awaited<ReturnType<H>> | undefined>;

function validateGuards(caller: string, guards: unknown): readonly EventGuard[] {
  const list = Array.isArray(guards) ? [...(guards as unknown[])] : [guards];
  if (list.length === 0) throw new TypeError(`${caller}: needs at least one guard`);
  for (const guard of list) {
    if (typeof guard !== "function" || typeof (guard as { check?: unknown }).check !== "function") {
      throw new TypeError(
        `${caller}: each guard must be a class from requireRoles(), requirePermissions(), requireScopes() or requireClaims(), got ${show(guard)}`,
      );
    }
  }
  return Object.freeze(list as EventGuard[]);
}

/** The property of `self` (or its prototypes) holding `method`: the event name the handler was registered under. */
function propertyHolding(self: unknown, method: unknown): string | undefined {
  let target: unknown = self;
  while (target !== null && (typeof target === "object" || typeof target === "function") && target !== Object.prototype) {
    for (const key of Object.getOwnPropertyNames(target)) {
      if (Object.getOwnPropertyDescriptor(target, key)?.value === method) return key;
    }
    target = Object.getPrototypeOf(target);
  }
  return undefined;
}

/** What the wrapper reads of the socket IOServer passes (anything may come: it is checked with `?.`). */
interface GuardedSocket {
  data?: { auth?: OidcUserContext | null } | null;
  nsp?: { name?: string } | null;
  id?: string;
}

function wrapHandler(guards: readonly EventGuard[], handler: EventHandler, eventName: string | undefined): EventHandler {
  return async function guardedEvent(this: unknown, socket: GuardedSocket | null | undefined, data?: unknown, callback?: unknown, ...rest: unknown[]): Promise<unknown> {
    try {
      // Checked on every event, so a context replaced by an in-band refresh counts.
      for (const guard of guards) guard.check((socket === null || typeof socket !== "object" ? undefined : contextOf(socket)) ?? socket?.data?.auth);
    } catch (error) {
      const appHandle = (this as { appHandle?: unknown } | null | undefined)?.appHandle;
      const event = eventName ?? propertyHolding(this, guardedEvent) ?? (handler.name || "(anonymous handler)");
      const where = socketSource(socket, "event", { event });
      // reportFailure logs when the service's appHandle is reachable and normalises unexpected errors.
      const failure = reportFailure(appHandle !== null && typeof appHandle === "object" ? (appHandle as OidcAppHandle) : {}, where, error);
      if (typeof callback === "function") {
        const refusal: OidcGuardedEventRefusal = { status: "error", code: failure.code };
        (callback as (refusal: OidcGuardedEventRefusal) => unknown)(refusal);
      }
      return undefined;
    }
    return await handler.call(this, socket, data, callback, ...rest);
  };
}

/**
 * `handler` guarded by `guards`: it runs only when every check passes for
 * `socket.data.auth`; otherwise the refusal is logged through `this.appHandle.log`
 * and the acknowledgement (if any) receives `{ status: "error", code }`.
 */
export function guardEvent<H extends EventHandler>(guards: EventGuard | readonly EventGuard[], handler: H): OidcGuardedEvent<H> {
  const list = validateGuards("guardEvent()", guards);
  if (typeof handler !== "function") throw new TypeError(`guardEvent(): handler must be a function, got ${show(handler)}`);
  return wrapHandler(list, handler, undefined) as unknown as OidcGuardedEvent<H>;
}

/**
 * `guardEvent()` as a standard method decorator. It replaces the method where
 * it was declared, on the prototype, because frameworks find event handlers
 * there; `propertyHolding()` is not needed since the decorator knows the name.
 */
export function guarded(...guards: EventGuard[]): GuardedDecorator {
  const list = validateGuards("@guarded()", guards);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- handlers take IOServer/Socket.IO sockets and any arguments; `any` keeps user handlers assignable whatever their parameter types (`unknown` would reject them)
  return function guardedDecorator<This, T extends (this: This, socket: any, ...rest: any[]) => any>(
    method: T,
    context: ClassMethodDecoratorContext<This, T>,
  ): T {
    if (context === null || typeof context !== "object" || context.kind !== "method") {
      throw new TypeError("@guarded() decorates methods only (standard decorators, not experimentalDecorators)");
    }
    if (context.static) throw new TypeError(`@guarded() cannot decorate the static method ${String(context.name)}`);
    return wrapHandler(list, method, String(context.name)) as T;
  };
}
