/**
 * The single place that loads `jose`.
 *
 * jose 6 ships only as an ES module. A static `import` would become a
 * `require("jose")` in our CommonJS build, which works only on Node versions
 * with require(esm). A dynamic `import()` works from both builds on every
 * supported Node, and every jose call we make is asynchronous anyway.
 */
export type Jose = typeof import("jose");

let loading: Promise<Jose> | undefined;

export function loadJose(): Promise<Jose> {
  loading ??= import("jose");
  return loading;
}
