import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const dir = fileURLToPath(new URL("./", import.meta.url));

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // No loader: plain Node, as a user runs it. A leaked handle keeps the child alive until the timeout kills it.
    execFile(process.execPath, [file], { cwd: dir, timeout: 30_000, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

describe("the built package (npm run build) protects a real IOServer", () => {
  it("dist exists", () => {
    assert.ok(existsSync(fileURLToPath(new URL("../../dist/index.js", import.meta.url))), "run npm run build first");
  });

  for (const file of ["consumer.mjs", "consumer.cjs"]) {
    it(`${file}: import/require works, both transports are protected, and the process exits on its own`, async () => {
      const { code, stdout, stderr } = await run(file);
      assert.equal(code, 0, `exit ${code}\n${stderr}`);
      const result = JSON.parse(stdout.trim().split("\n").pop()!);
      assert.equal(result.format, file.endsWith(".mjs") ? "esm" : "cjs");
      assert.deepEqual(result.http, {
        status: 200,
        body: { userId: "pkg-user", roles: ["admin"] },
        deniedStatus: 401,
        deniedCode: "ERR_AUTH_TOKEN_REQUIRED",
      });
      assert.deepEqual(result.socket, { error: null, who: { userId: "pkg-user", dataAuth: "pkg-user" }, refused: "ERR_AUTH_TOKEN_INVALID" });
      assert.equal(result.verified, "pkg-user");
      assert.deepEqual(result.errorClass, { statusCode: 403, error: "Forbidden", code: "ERR_FORBIDDEN", message: "Access is forbidden" });
    });
  }
});
