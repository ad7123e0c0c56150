/**
 * The authorization guards as IOServer middleware: each factory returns a
 * middleware class that IOServer instantiates; the same class guards a
 * controller (Fastify `preValidation`) or a service (Socket.IO namespace
 * middleware). List it after `OidcHttpMiddleware` / `OidcSocketMiddleware`.
 *
 * Inside a namespace, `guardEvent()` and the `@guarded()` method decorator
 * guard single events with the same classes.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { BaseMiddleware } from "ioserver";
import type { AppHandle } from "ioserver";
import type { Socket } from "socket.io";
import { guardFactories, runCheck } from "../guards/checks.js";
import type { GuardCheck, OidcClaimsPredicate } from "../guards/checks.js";
import { guardEvent as guardEventWith, guarded as guardedWith } from "../guards/guardEvent.js";
import type { EventHandler, GuardedDecorator, OidcGuardedEvent } from "../guards/guardEvent.js";
import { httpHook } from "../pipeline/httpHook.js";
import { socketHook } from "../sockets/socketHook.js";
import { rememberHandshakeCheck } from "../sockets/handshakeGuards.js";
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import { contextOf } from "../sockets/socketState.js";

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

type Transport = "http" | "socket" | undefined;

/** What to fix when a guard finds no authenticated user: the authenticating middleware was not listed first. */
function listFirst(transport: Transport): string {
  if (transport === "http") return "list OidcHttpMiddleware before it";
  if (transport === "socket") return "list OidcSocketMiddleware before it";
  return "list OidcHttpMiddleware (controllers) or OidcSocketMiddleware (services) before it";
}

/** The IOServer middleware class of a check. The check's `name` becomes the class's `name`. */
function middlewareOf(guardCheck: GuardCheck): OidcGuard {
  // One function per guard class: the namespace's record of handshake checks
  // holds it once however many sockets (or instances of the class) run it.
  const socketCheck = (context: unknown): void => runCheck(guardCheck, context, listFirst("socket"));

  const Guard = class extends BaseMiddleware {
    static check(context: OidcUserContext | null | undefined): void {
      runCheck(guardCheck, context, listFirst(undefined));
    }

    handle(appHandle: AppHandle): OidcGuardHook {
      const app = appHandle as OidcAppHandle;
      // A check decides at once: a refusal it throws is reported by the hook, a pass lets the request or socket go on within the call.
      const http = httpHook(app, (request) => runCheck(guardCheck, (request as { auth?: unknown }).auth, listFirst("http")), guardCheck.name);
      const socket = socketHook(
        app,
        (target) => {
          // An in-band refresh of this namespace runs the check again (src/sockets/lifecycle.ts).
          rememberHandshakeCheck(target.nsp, socketCheck);
          socketCheck(contextOf(target) ?? (target.data as { auth?: unknown } | undefined)?.auth);
        },
        guardCheck.name,
      );
      // Socket.IO calls a namespace middleware with (socket, next); Fastify a hook with (request, reply, done).
      return function oidcGuard(target: unknown, second: unknown, third?: unknown): void {
        if (third === undefined && typeof second === "function") {
          return socket(target as Socket, second as (err?: Error) => void);
        }
        return http(target as FastifyRequest, second as FastifyReply, third as HookHandlerDoneFunction);
      } as OidcGuardHook;
    }
  };
  Object.defineProperty(Guard, "name", { value: guardCheck.name });
  return Guard;
}

const factories = guardFactories(middlewareOf);

/** All listed roles must be in `context.roles`; `requireRoles.any(...)`: at least one. */
export const requireRoles: OidcGuardFactory = factories.requireRoles;

/** All listed permissions must be in `context.permissions`; `requirePermissions.any(...)`: at least one. */
export const requirePermissions: OidcGuardFactory = factories.requirePermissions;

/**
 * All listed OAuth scopes must be in `context.scopes`; `requireScopes.any(...)`:
 * at least one. A refusal's HTTP challenge carries `scope="<the required scopes>"`.
 */
export const requireScopes: OidcGuardFactory = factories.requireScopes;

/**
 * Allows the caller when `predicate(context)` returns `true` (the context has
 * the verified token's `claims`). Anything else refuses, including a
 * predicate that throws or returns a Promise (predicates must be synchronous).
 * `description` names the guard in logs (default: the predicate's name).
 */
export function requireClaims(predicate: OidcClaimsPredicate, description?: string): OidcGuard {
  return factories.requireClaims(predicate, description);
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
export const guardEvent: <H extends EventHandler>(guards: OidcGuard | readonly OidcGuard[], handler: H) => OidcGuardedEvent<H> =
  guardEventWith;

/**
 * Standard (TC39 / TypeScript 5) method decorator: `@guarded(requirePermissions("rooms:delete"))`
 * on a service method. Same behaviour as `guardEvent()`: the decorated method
 * becomes async and resolves to `undefined` without running when refused.
 * The method stays on the prototype, so IOServer registers its event. Not for
 * `experimentalDecorators` (legacy decorators).
 */
export const guarded: (...guards: OidcGuard[]) => GuardedDecorator = guardedWith;
