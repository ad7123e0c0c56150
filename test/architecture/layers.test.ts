/**
 * The layering of src/ is enforced by dependency-cruiser (`npm run layers`,
 * part of `npm test`). These tests prove the rules bite: a copy of src/ with
 * one forbidden import added is refused, for each kind of rule, and the real
 * tree passes.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cruiser = join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");

/** Run dependency-cruiser over `dir`'s src/ with the project's rules; resolves to its exit code and output. */
function cruise(dir: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cruiser, "src", "--config", join(root, ".dependency-cruiser.cjs")], { cwd: dir, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe("layers", { timeout: 240_000 }, () => {
  let scratch: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), "ioserver-oidc-layers-"));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  /** A copy of the project's src/ (and what resolution needs) with `line` appended to `file`. */
  function treeWith(name: string, file: string, line: string): string {
    const dir = join(scratch, name);
    cpSync(join(root, "src"), join(dir, "src"), { recursive: true });
    cpSync(join(root, "tsconfig.json"), join(dir, "tsconfig.json"));
    cpSync(join(root, "package.json"), join(dir, "package.json"));
    // Resolution of packages (ioserver, socket.io) goes through the real node_modules.
    cpSync(join(root, "node_modules", "ioserver"), join(dir, "node_modules", "ioserver"), { recursive: true, dereference: true });
    appendFileSync(join(dir, file), `\n${line}\n`);
    return dir;
  }

  it("the source tree follows every rule", async () => {
    const { code, output } = await cruise(root);
    assert.equal(code, 0, output);
  });

  const violations: Array<[string, string, string, RegExp]> = [
    ["upward", "src/util/log.ts", 'export { authenticate } from "../pipeline/authenticate.js";', /layer-util/],
    ["sideways into a front-end", "src/sockets/rooms.ts", 'export { OidcSessionManager } from "../ioserver/OidcSessionManager.js";', /layer-sockets/],
    ["core importing ioserver", "src/pipeline/extractToken.ts", 'export { BaseMiddleware } from "ioserver";', /core-without-ioserver/],
    ["a leaf importing the package", "src/errors.ts", 'export { show } from "./util/text.js";', /leaves/],
    ["the diagnostics leaf importing the package", "src/diagnostics.ts", 'export { oidcLog } from "./util/log.js";', /leaves/],
    ["a cycle", "src/util/text.ts", 'export { oneLine } from "./log.js";', /no-cycles/],
  ];
  for (const [name, file, line, rule] of violations) {
    it(`refuses ${name}`, async () => {
      const { code, output } = await cruise(treeWith(name.replace(/\W+/g, "-"), file, line));
      assert.notEqual(code, 0, `accepted: ${output}`);
      assert.match(output, rule);
    });
  }
});
