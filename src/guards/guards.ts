/**
 * Fine-grained authorization guards: roles, permissions, OAuth scopes and
 * custom claim predicates. Each factory returns a middleware class that
 * IOServer instantiates; the same class guards a controller (Fastify
 * `preValidation`) or a service (Socket.IO namespace middleware). List it
 * after `OidcHttpMiddleware` / `OidcSocketMiddleware`.
 *
 * Inside a namespace, `guardEvent()` and the `@guarded()` method decorator
 * guard single events with the same classes.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import type { Socket } from "socket.io";
import { reportFailure } from "../pipeline/authenticate.js";
import { httpHook, socketHook } from "../sockets/adapters.js";
import { rememberHandshakeCheck } from "../sockets/handshakeGuards.js";
import { OidcAuthError } from "../errors.js";
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import { show } from "../util/text.js";

/**
 * What a guard's `handle()` returns: a Fastify `preValidation` hook when
 * called with `(request, reply, done)`, a Socket.IO namespace middleware when
 * called with `(socket, next)`.
 */
export interface OidcGuardHook {
  (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void;
  (socket: Socket, next: (err?: Error) => void): void;
}

/** An instance of a guard class, as IOServer creates it. */
export interface OidcGuardMiddleware {
  handle(appHandle: AppHandle): OidcGuardHook;
}

/** A guard class returned by `requireRoles()`, `requirePermissions()`, `requireScopes()` or `requireClaims()`. */
export interface OidcGuard {
  new (): OidcGuardMiddleware;
  /** Readable name, e.g. `RequireRoles(admin)` or `RequireScopes.any(read, write)`. */
  readonly name: string;
  /**
   * Throws an `ERR_FORBIDDEN` `OidcAuthError` unless the context passes;
   * returns nothing when it does. Used by `guardEvent()` and usable directly.
   */
  check(context: OidcUserContext | null | undefined): void;
}

/** `requireRoles(...)` (all required) with `requireRoles.any(...)` (at least one). */
export interface OidcGuardFactory {
  (...values: string[]): OidcGuard;
  any(...values: string[]): OidcGuard;
}

/** Predicate of `requireClaims()`. Must be synchronous and return `true` to allow. */
export type OidcClaimsPredicate = (context: OidcUserContext) => boolean;

type Transport = "http" | "socket" | undefined;

function firstMiddleware(transport: Transport): string {
  if (transport === "http") return "OidcHttpMiddleware";
  if (transport === "socket") return "OidcSocketMiddleware";
  return "OidcHttpMiddleware (controllers) or OidcSocketMiddleware (services)";
}

function isContext(context: unknown): context is OidcUserContext {
  return context !== null && typeof context === "object";
}

function who(context: OidcUserContext): string {
  return `user ${show(context.userId ?? context.sub)}`;
}

/** A middleware class from a check. `name` becomes the class's `name`. */
function makeGuard(name: string, test: (context: OidcUserContext) => void): OidcGuard {
  const checkFor = (context: unknown, transport: Transport): void => {
    if (!isContext(context)) {
      throw new OidcAuthError("ERR_FORBIDDEN", {
        reason: `${name} found no authenticated user: list ${firstMiddleware(transport)} before it`,
      });
    }
    test(context);
  };

  // One function per guard class: the namespace's record of handshake checks
  // holds it once however many sockets (or instances of the class) run it.
  const socketCheck = (context: unknown): void => checkFor(context, "socket");

  const Guard = class extends BaseMiddleware {
    static check(context: OidcUserContext | null | undefined): void {
      checkFor(context, undefined);
    }

    handle(appHandle: AppHandle): OidcGuardHook {
      const app = appHandle as OidcAppHandle;
      const http = httpHook(app, async (request) => checkFor((request as { auth?: unknown }).auth, "http"));
      const socket = socketHook(app, async (target) => {
        // An in-band refresh of this namespace runs the check again (src/lib/socketLifecycle.ts).
        rememberHandshakeCheck(target.nsp, socketCheck);
        socketCheck((target.data as { auth?: unknown } | undefined)?.auth);
      });
      // Socket.IO calls a namespace middleware with (socket, next); Fastify a hook with (request, reply, done).
      return function oidcGuard(target: unknown, second: unknown, third?: unknown): void {
        if (third === undefined && typeof second === "function") {
          return socket(target as Socket, second as (err?: Error) => void);
        }
        return http(target as FastifyRequest, second as FastifyReply, third as HookHandlerDoneFunction);
      } as OidcGuardHook;
    }
  };
  Object.defineProperty(Guard, "name", { value: name });
  return Guard as OidcGuard;
}

/** Eager argument validation: at least one value, each a non-empty string. */
function requireNames(factory: string, what: string, values: readonly unknown[], noSpaces = false): readonly string[] {
  if (values.length === 0) throw new TypeError(`${factory}() needs at least one ${what}`);
  for (const value of values) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`${factory}(): each ${what} must be a non-empty string, got ${typeof value === "string" ? '""' : show(value)}`);
    }
    if (noSpaces && /\s/.test(value)) {
      throw new TypeError(`${factory}(): a ${what} cannot contain whitespace (pass each one separately), got ${show(value)}`);
    }
  }
  return Object.freeze([...(values as string[])]);
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

interface ListGuardSpec {
  /** `requireRoles` */
  factory: string;
  /** `RequireRoles` */
  className: string;
  /** `role` */
  what: string;
  /** The context property compared against. */
  field: "roles" | "permissions" | "scopes";
  /** Add the required scopes to the challenge. */
  challengeScope: boolean;
}

function listGuardFactory(spec: ListGuardSpec): OidcGuardFactory {
  const build = (mode: "all" | "any", values: readonly unknown[]): OidcGuard => {
    const factory = mode === "all" ? spec.factory : `${spec.factory}.any`;
    const required = requireNames(factory, spec.what, values, spec.field === "scopes");
    const name = `${mode === "all" ? spec.className : `${spec.className}.any`}(${required.join(", ")})`;
    const scope = spec.challengeScope ? required.join(" ") : undefined;
    return makeGuard(name, (context) => {
      const had = stringsOf((context as unknown as Record<string, unknown>)[spec.field]);
      const missing = required.filter((value) => !had.includes(value));
      const passed = mode === "all" ? missing.length === 0 : missing.length < required.length;
      if (passed) return;
      const wanted = mode === "all" ? `all of ${show(required)}` : `one of ${show(required)}`;
      const detail = mode === "all" ? ` (missing ${show(missing)})` : "";
      throw new OidcAuthError("ERR_FORBIDDEN", {
        reason: `${name} refused ${who(context)}: requires ${spec.field} ${wanted}, user has ${show(had)}${detail}`,
        scope,
      });
    });
  };
  const all = (...values: string[]) => build("all", values);
  Object.defineProperty(all, "name", { value: spec.factory });
  const any = (...values: string[]) => build("any", values);
  Object.defineProperty(any, "name", { value: "any" });
  return Object.assign(all, { any }) as OidcGuardFactory;
}

/** All listed roles must be in `context.roles`; `requireRoles.any(...)`: at least one. */
export const requireRoles: OidcGuardFactory = listGuardFactory({
  factory: "requireRoles",
  className: "RequireRoles",
  what: "role",
  field: "roles",
  challengeScope: false,
});

/** All listed permissions must be in `context.permissions`; `requirePermissions.any(...)`: at least one. */
export const requirePermissions: OidcGuardFactory = listGuardFactory({
  factory: "requirePermissions",
  className: "RequirePermissions",
  what: "permission",
  field: "permissions",
  challengeScope: false,
});

/**
 * All listed OAuth scopes must be in `context.scopes`; `requireScopes.any(...)`:
 * at least one. A refusal's HTTP challenge carries `scope="<the required scopes>"`.
 */
export const requireScopes: OidcGuardFactory = listGuardFactory({
  factory: "requireScopes",
  className: "RequireScopes",
  what: "scope",
  field: "scopes",
  challengeScope: true,
});

/**
 * Allows the caller when `predicate(context)` returns `true` (the context has
 * the verified token's `claims`). Anything else refuses, including a
 * predicate that throws or returns a Promise (predicates must be synchronous).
 * `description` names the guard in logs (default: the predicate's name).
 */
export function requireClaims(predicate: OidcClaimsPredicate, description?: string): OidcGuard {
  if (typeof predicate !== "function") throw new TypeError(`requireClaims(): predicate must be a function, got ${show(predicate)}`);
  if (description !== undefined && (typeof description !== "string" || description === "")) {
    throw new TypeError(`requireClaims(): description must be a non-empty string when given, got ${show(description)}`);
  }
  const name = `RequireClaims(${description ?? (predicate.name || "predicate")})`;
  return makeGuard(name, (context) => {
    let result: unknown;
    try {
      result = predicate(context);
    } catch (error) {
      throw new OidcAuthError("ERR_FORBIDDEN", {
        reason: `${name} refused ${who(context)}: the predicate threw: ${error instanceof Error ? error.message : show(error)}`,
        cause: error,
      });
    }
    if (result === true) return;
    const thenable = result !== null && typeof result === "object" && typeof (result as { then?: unknown }).then === "function";
    throw new OidcAuthError("ERR_FORBIDDEN", {
      reason: thenable
        ? `${name} refused ${who(context)}: the predicate returned a Promise (predicates must be synchronous)`
        : `${name} refused ${who(context)}: the predicate returned ${show(result)}`,
    });
  });
}

// ---------------------------------------------------------------------------
// Per-event guards
// ---------------------------------------------------------------------------

/** What a refused event's acknowledgement receives. */
export interface OidcGuardedEventRefusal {
  status: "error";
  code: OidcAuthError["code"];
}

type EventHandler = (this: any, socket: any, ...rest: any[]) => unknown;

/**
 * What `guardEvent(guards, handler)` returns: an async function with the
 * handler's `this` and parameters (IOServer always passes `socket, data,
 * callback`, so extra arguments are accepted) resolving to the handler's
 * result, or to `undefined` when refused.
 */
export type OidcGuardedEvent<H extends (this: any, socket: any, ...rest: any[]) => unknown> = (
  this: ThisParameterType<H>,
  ...args: [...Parameters<H>, ...unknown[]]
) => Promise<Awaited<ReturnType<H>> | undefined>;

function validateGuards(caller: string, guards: unknown): readonly OidcGuard[] {
  const list = Array.isArray(guards) ? [...(guards as unknown[])] : [guards];
  if (list.length === 0) throw new TypeError(`${caller}: needs at least one guard`);
  for (const guard of list) {
    if (typeof guard !== "function" || typeof (guard as { check?: unknown }).check !== "function") {
      throw new TypeError(
        `${caller}: each guard must be a class from requireRoles(), requirePermissions(), requireScopes() or requireClaims(), got ${show(guard)}`,
      );
    }
  }
  return Object.freeze(list as OidcGuard[]);
}

/** The property of `self` (or its prototypes) holding `method`: the event name IOServer registered it under. */
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

function wrapHandler(guards: readonly OidcGuard[], handler: EventHandler, eventName: string | undefined): EventHandler {
  return async function guardedEvent(this: unknown, socket: any, data?: unknown, callback?: unknown, ...rest: unknown[]): Promise<unknown> {
    try {
      for (const guard of guards) guard.check(socket?.data?.auth);
    } catch (error) {
      const appHandle = (this as { appHandle?: unknown } | null | undefined)?.appHandle;
      const event = eventName ?? propertyHolding(this, guardedEvent) ?? (handler.name || "(anonymous handler)");
      const where = `socket ${socket?.nsp?.name ?? "?"} ${socket?.id ?? "?"} event ${show(event)}`;
      // reportFailure logs when the service's appHandle is reachable and normalises unexpected errors.
      const failure = reportFailure(appHandle !== null && typeof appHandle === "object" ? (appHandle as OidcAppHandle) : {}, where, error);
      if (typeof callback === "function") {
        const refusal: OidcGuardedEventRefusal = { status: "error", code: failure.code };
        callback(refusal);
      }
      return undefined;
    }
    return await handler.call(this, socket, data, callback, ...rest);
  };
}

/**
 * A service method that runs `handler` only when every guard passes for the
 * socket's `socket.data.auth` (checked on each event, so a refreshed token's
 * context counts); otherwise the handler never runs, the refusal is logged
 * through the service's `this.appHandle.log`, and the acknowledgement (if
 * any) receives `{ status: "error", code: "ERR_FORBIDDEN" }`. The result is
 * always async (IOServer awaits service methods).
 *
 * IOServer 2.0.6 only listens to events named after methods on the service's
 * prototype, so a class field (`deleteRoom = guardEvent(...)`) is never
 * registered. Assign on the prototype instead:
 *
 * ```ts
 * class RoomsService extends BaseService {
 *   declare deleteRoom: (socket: Socket, data: { room: string }, ack?: (r: unknown) => void) => Promise<void>;
 * }
 * RoomsService.prototype.deleteRoom = guardEvent(requirePermissions("rooms:delete"), async function (socket, data, ack) { … });
 * ```
 *
 * or decorate a method with `@guarded(...)`.
 */
export function guardEvent<H extends EventHandler>(
  guards: OidcGuard | readonly OidcGuard[],
  handler: H,
): OidcGuardedEvent<H> {
  const list = validateGuards("guardEvent()", guards);
  if (typeof handler !== "function") throw new TypeError(`guardEvent(): handler must be a function, got ${show(handler)}`);
  return wrapHandler(list, handler, undefined) as unknown as OidcGuardedEvent<H>;
}

/**
 * Standard (TC39 / TypeScript 5) method decorator: `@guarded(requirePermissions("rooms:delete"))`
 * on a service method. Same behaviour as `guardEvent()`: the decorated method
 * becomes async and resolves to `undefined` without running when refused.
 * The method stays on the prototype, so IOServer registers its event. Not for
 * `experimentalDecorators` (legacy decorators).
 */
export function guarded(...guards: OidcGuard[]) {
  const list = validateGuards("@guarded()", guards);
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
