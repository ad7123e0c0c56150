/**
 * `X.configure(options)` for the package's IOServer classes: IOServer
 * registers classes, not instances, so options travel as a subclass whose
 * static `options` holds them. Each class validates its options, then asks
 * for its subclass here.
 */

/** A subclass of `base` named `Configured<base name>` whose static `options` is `options` (frozen as given). */
export function configuredClass<C extends abstract new (...args: never[]) => unknown>(base: C, options: object): C {
  const Configured = class extends (base as unknown as new (...args: unknown[]) => object) {};
  Object.defineProperty(Configured, "options", { value: Object.isFrozen(options) ? options : Object.freeze({ ...options }), enumerable: false, writable: false, configurable: false });
  Object.defineProperty(Configured, "name", { value: `Configured${base.name}` });
  return Configured as unknown as C;
}
