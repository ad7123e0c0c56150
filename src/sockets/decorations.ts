/**
 * `socket.sub`, `socket.userId`, `socket.userRole`, `socket.roles`,
 * `socket.permissions`, `socket.features`, `socket.scopes` and `socket.auth`
 * on authenticated sockets.
 *
 * Copying eight properties onto every socket (as requests get them) would
 * give each idle socket an out-of-object property store of its own, about
 * 90 bytes. Instead they are accessors, defined once on the sockets'
 * prototype, that read the socket's context (`socket.data.auth`, see
 * `socketState.ts`): the same values, always the current context (an in-band
 * refresh changes them with it), nothing per socket. On a socket this package
 * did not authenticate they read `undefined`; assigning one (an app that sets
 * `socket.userId` itself) makes it a plain property of that socket.
 *
 * Should a prototype already have one of these names (another library's
 * accessor, say), the package leaves it alone and copies the values onto each
 * socket instead; so it does onto a socket that something set one of them on
 * before (the authenticated values replace those, on every authentication).
 */
import type { Socket } from "socket.io";
import type { OidcUserContext } from "../types.js";
import { applyContext } from "../pipeline/applyContext.js";
import { contextOf } from "./socketState.js";

type Field = "sub" | "userId" | "userRole" | "roles" | "permissions" | "features" | "scopes";
const FIELDS: readonly Field[] = ["sub", "userId", "userRole", "roles", "permissions", "features", "scopes"];

/** Prototypes seen: true when the accessors are on them, false when a name was taken (copy instead). */
const prototypes = new WeakMap<object, boolean>();

function accessor(read: (context: OidcUserContext) => unknown, name: string): PropertyDescriptor {
  return {
    configurable: true,
    enumerable: false,
    get(this: Socket) {
      const context = contextOf(this);
      return context === undefined ? undefined : read(context);
    },
    set(this: Socket, value: unknown) {
      Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
    },
  };
}

function install(prototype: object): boolean {
  for (const name of [...FIELDS, "auth"]) if (name in prototype) return false;
  for (const field of FIELDS) Object.defineProperty(prototype, field, accessor((context) => context[field], field));
  Object.defineProperty(prototype, "auth", accessor((context) => context, "auth"));
  return true;
}

/**
 * Make the context readable on the socket: nothing to do once its prototype
 * has the accessors; a copy of the values when it could not get them.
 */
export function decorateSocket(socket: Socket, context: OidcUserContext): void {
  const prototype = Object.getPrototypeOf(socket) as object | null;
  if (prototype === null) return applyContext(socket, context);
  let installed = prototypes.get(prototype);
  if (installed === undefined) prototypes.set(prototype, (installed = install(prototype)));
  if (!installed || hasOwnDecoration(socket)) applyContext(socket, context);
}

/** Whether something set one of the names on this socket itself (an earlier middleware, say): the authenticated values replace them. */
function hasOwnDecoration(socket: Socket): boolean {
  for (const field of FIELDS) if (Object.prototype.hasOwnProperty.call(socket, field)) return true;
  return Object.prototype.hasOwnProperty.call(socket, "auth");
}
