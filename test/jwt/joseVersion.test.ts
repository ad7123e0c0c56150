import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, it } from "node:test";

import { PROVED_JOSE } from "../differential/provedJose.js";

const require = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { dependencies: Record<string, string> };

describe("jose is a version the differential suites proved the fast path against", () => {
  it(`the installed jose is within ${PROVED_JOSE.range} (see test/differential/provedJose.ts to move it)`, () => {
    const version = (require("jose/package.json") as { version: string }).version;
    const [major, minor] = version.split(".").map(Number);
    assert.ok(
      major === PROVED_JOSE.major && minor === PROVED_JOSE.minor,
      `jose ${version} is installed, the fast path was last proved against ${PROVED_JOSE.range}: run the differential suites, then bump test/differential/provedJose.ts`,
    );
  });

  it("package.json declares exactly the proved range", () => {
    assert.equal(manifest.dependencies.jose, PROVED_JOSE.range);
    assert.equal(PROVED_JOSE.range, `~${PROVED_JOSE.major}.${PROVED_JOSE.minor}.0`);
  });
});
