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
 * `decorateRequest`): the authenticated values replace those, every time the
 * context is set.
 */
import type { OidcDecorations, OidcUserContext } from "../types.js";

type Field = "sub" | "userId" | "userRole" | "roles" | "permissions" | "features" | "scopes";
const FIELDS: readonly Field[] = ["sub", "userId", "userRole", "roles", "permissions", "features", "scopes"];

/**
 * Copy the context onto a target as eight own properties: defined, not
 * assigned, so an accessor of the same name on the target's prototype (one
 * without a setter, say) neither refuses nor takes the values.
 */
export function applyContext(target: object, context: OidcUserContext): void {
  own(target, "sub", context.sub);
  own(target, "userId", context.userId);
  own(target, "userRole", context.userRole);
  own(target, "roles", context.roles);
  own(target, "permissions", context.permissions);
  own(target, "features", context.features);
  own(target, "scopes", context.scopes);
  own(target, "auth", context);
}

function own(target: object, name: keyof OidcDecorations, value: unknown): void {
  Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * The decorating function of one transport: `contextOf` reads the context
 * the transport stores on each target, which it must have stored before
 * decorating the target (the accessors read it). The returned
 * function makes the context readable on a target: nothing to do once the
 * target's prototype has the accessors; a copy of the values where it could
 * not get them.
 */
export function prototypeDecorations(contextOf: (target: object) => OidcUserContext | undefined): (target: object, context: OidcUserContext) => void {
  /** Prototypes seen: true when the accessors are on them (or inherited from one that has them), false when a name was taken (copy instead). */
  const prototypes = new WeakMap<object, boolean>();
  /** The getters this function defines: a prototype that inherits them is decorated already. */
  const ours = new WeakSet<object>();

  /**
   * Whether a target has an own property hiding one of the accessors, or
   * reads another context: the eight names are read on it and compared with
   * the context's values, and each of this function's getters marks
   * its bit in `reached` when it runs for the target being checked
   * (`checking`). A name whose bit stays clear was answered by something
   * else (an own data property or accessor, which is called once here); one
   * that throws counts as hiding its name too. Once the target's prototype
   * has the getters these are plain property loads, cheaper than looking
   * each name up among the target's own properties.
   */
  let checking: object | undefined;
  let reached = 0;
  const ALL = 0xff;
  // One getter per name, each reading its field by name: a read of `request.userId` is a plain property load on the context.
  const getters: Record<keyof OidcDecorations, (this: object) => unknown> = {
    sub() {
      if (this === checking) reached |= 0x01;
      return contextOf(this)?.sub;
    },
    userId() {
      if (this === checking) reached |= 0x02;
      return contextOf(this)?.userId;
    },
    userRole() {
      if (this === checking) reached |= 0x04;
      return contextOf(this)?.userRole;
    },
    roles() {
      if (this === checking) reached |= 0x08;
      return contextOf(this)?.roles;
    },
    permissions() {
      if (this === checking) reached |= 0x10;
      return contextOf(this)?.permissions;
    },
    features() {
      if (this === checking) reached |= 0x20;
      return contextOf(this)?.features;
    },
    scopes() {
      if (this === checking) reached |= 0x40;
      return contextOf(this)?.scopes;
    },
    auth() {
      if (this === checking) reached |= 0x80;
      return contextOf(this);
    },
  };
  const shadowed = (target: object, context: OidcUserContext): boolean => {
    const read = target as Partial<OidcDecorations>;
    checking = target;
    reached = 0;
    try {
      const same =
        read.auth === context &&
        read.sub === context.sub &&
        read.userId === context.userId &&
        read.userRole === context.userRole &&
        read.roles === context.roles &&
        read.permissions === context.permissions &&
        read.features === context.features &&
        read.scopes === context.scopes;
      return !same || reached !== ALL;
    } catch {
      return true;
    } finally {
      checking = undefined;
    }
  };
  const accessor = (name: keyof OidcDecorations): PropertyDescriptor => {
    const get = getters[name];
    ours.add(get);
    return {
      configurable: true,
      enumerable: false,
      get,
      set(this: object, value: unknown) {
        Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
      },
    };
  };

  /** Whether `name`, on `prototype` or above it, is one of this function's accessors. */
  const isOurs = (prototype: object, name: string): boolean => {
    for (let holder: object | null = prototype; holder !== null; holder = Object.getPrototypeOf(holder) as object | null) {
      const descriptor = Object.getOwnPropertyDescriptor(holder, name);
      if (descriptor !== undefined) {
        const getter: unknown = Reflect.get(descriptor, "get");
        return typeof getter === "function" && ours.has(getter);
      }
    }
    return false;
  };

  const install = (prototype: object): boolean => {
    // Never on the shared prototypes every plain object or array has: a plain object standing in for a request gets copies.
    if (prototype === Object.prototype || prototype === Array.prototype || prototype === Function.prototype) return false;
    const names: Array<keyof OidcDecorations> = [...FIELDS, "auth"];
    const present = names.filter((name) => name in prototype);
    if (present.length > 0) return present.length === names.length && names.every((name) => isOurs(prototype, name));
    if (!Object.isExtensible(prototype)) return false;
    for (const name of names) if (!Reflect.defineProperty(prototype, name, accessor(name))) return false;
    return true;
  };

  return (target, context) => {
    const prototype = Object.getPrototypeOf(target) as object | null;
    if (prototype === null) return applyContext(target, context);
    let installed = prototypes.get(prototype);
    if (installed === undefined) prototypes.set(prototype, (installed = install(prototype)));
    if (!installed || shadowed(target, context)) applyContext(target, context);
  };
}
