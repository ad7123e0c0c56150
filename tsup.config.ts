import { defineConfig } from "tsup";

// One source tree, two module formats. `jose` is ESM-only; the CommonJS build
// keeps `import("jose")` as a dynamic import (see src/jwt/jose.ts), so it
// loads without relying on require(esm).
export default defineConfig({
  entry: { index: "src/index.ts", testing: "src/testing/index.ts", client: "src/client/index.ts", metrics: "src/metrics/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  // No source maps: the output is unminified and keeps the source's names, so
  // stack traces already read; the maps (with sourcesContent) were ~70 % of the
  // unpacked tarball. Off in the build, not just left out of `files`, so no
  // JS file points at a .map that is not shipped.
  sourcemap: false,
  clean: true,
  target: "node22",
  platform: "node",
  splitting: false,
  treeshake: true,
});
