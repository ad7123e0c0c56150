import { defineConfig } from "tsup";

// One source tree, two module formats. `jose` is ESM-only; the CommonJS build
// keeps `import("jose")` as a dynamic import (see src/lib/jose.ts), so it loads
// on every Node >= 20, not only on versions with require(esm).
export default defineConfig({
  entry: { index: "src/index.ts", testing: "src/testing/index.ts", client: "src/client/index.ts" },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  platform: "node",
  splitting: false,
  treeshake: true,
});
