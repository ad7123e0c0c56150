/**
 * `sub`, `userId`, `userRole`, `roles`, `permissions`, `features`, `scopes`
 * and `auth` on authenticated requests and sockets.
 *
 * Copying eight properties onto every request or socket costs eight property
 * additions each time (and, on an idle socket, an out-of-object property
 * store of about 90 bytes). Instead they are accessors, defined once on the
 * target's prototype, that read the context the transport stored on the
 * target (one slot): the same values, always the current context (an in-band
 * refresh changes them with it). On a target this package did not
 * authenticate they read `undefined`; assigning one (an app that sets
 * `request.userId` itself) makes it a plain property of that target.
 *
 * Should a prototype already have one of these names (another library's
 * accessor, say), the package leaves it alone and copies the values onto
 * each target instead; so it does onto a target that has one of them as its
 * own property already (set by an earlier hook, or declared with Fastify's
 * `decorateRequest`): the authenticated values replace those, every time.
 */
import type { OidcDecorations, OidcUserContext } from "../types.js";

type Field = "sub" | "userId" | "userRole" | "roles" | "permissions" | "features" | "scopes";
const FIELDS: readonly Field[] = ["sub", "userId", "userRole", "roles", "permissions", "features", "scopes"];

/** Copy the context onto a target as eight own properties. */
export function applyContext(target: object, context: OidcUserContext): void {
  const decorated = target as OidcDecorations;
  decorated.sub = context.sub;
  decorated.userId = context.userId;
  decorated.userRole = context.userRole;
  decorated.roles = context.roles;
  decorated.permissions = context.permissions;
  decorated.features = context.features;
  decorated.scopes = context.scopes;
  decorated.auth = context;
}

/** Whether the target has one of the names as its own property: the authenticated values replace them. */
function hasOwnDecoration(target: object): boolean {
  return (
    Object.hasOwn(target, "auth") ||
    Object.hasOwn(target, "sub") ||
    Object.hasOwn(target, "userId") ||
    Object.hasOwn(target, "userRole") ||
    Object.hasOwn(target, "roles") ||
    Object.hasOwn(target, "permissions") ||
    Object.hasOwn(target, "features") ||
    Object.hasOwn(target, "scopes")
  );
}

/**
 * The decorating function of one transport: `contextOf` reads the context
 * the transport stores on each target (before decorating it). The returned
 * function makes the context readable on a target: nothing to do once the
 * target's prototype has the accessors; a copy of the values where it could
 * not get them.
 */
export function prototypeDecorations(contextOf: (target: object) => OidcUserContext | undefined): (target: object, context: OidcUserContext) => void {
  /** Prototypes seen: true when the accessors are on them, false when a name was taken (copy instead). */
  const prototypes = new WeakMap<object, boolean>();

  const accessor = (read: (context: OidcUserContext) => unknown, name: string): PropertyDescriptor => ({
    configurable: true,
    enumerable: false,
    get(this: object) {
      const context = contextOf(this);
      return context === undefined ? undefined : read(context);
    },
    set(this: object, value: unknown) {
      Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
    },
  });

  const install = (prototype: object): boolean => {
    for (const name of [...FIELDS, "auth"]) if (name in prototype) return false;
    for (const field of FIELDS) Object.defineProperty(prototype, field, accessor((context) => context[field], field));
    Object.defineProperty(prototype, "auth", accessor((context) => context, "auth"));
    return true;
  };

  // The last prototype seen and its answer: every target of a transport usually shares one.
  let lastPrototype: object | undefined;
  let lastInstalled = false;

  return (target, context) => {
    const prototype = Object.getPrototypeOf(target) as object | null;
    if (prototype === null) return applyContext(target, context);
    let installed: boolean | undefined;
    if (prototype === lastPrototype) installed = lastInstalled;
    else {
      installed = prototypes.get(prototype);
      if (installed === undefined) prototypes.set(prototype, (installed = install(prototype)));
      lastPrototype = prototype;
      lastInstalled = installed;
    }
    if (!installed || hasOwnDecoration(target)) applyContext(target, context);
  };
}
