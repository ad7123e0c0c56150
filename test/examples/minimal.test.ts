import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { freePort } from "../helpers/app.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("examples/minimal (npm run example)", () => {
  it("starts, protects its route and namespace, and stops cleanly on SIGINT", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ["--import", "tsx", "examples/minimal/server.ts"], {
      cwd: root,
      env: { ...process.env, PORT: String(port), IDP_PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes("Ctrl-C to stop")) {
        if (Date.now() > deadline) throw new Error(`example did not start:\n${out}\n${err}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const alice = /ALICE=(\S+)/.exec(out)?.[1];
      const bob = /BOB=(\S+)/.exec(out)?.[1];
      assert.ok(alice && bob);
      const url = `http://127.0.0.1:${port}`;

      const denied = await fetch(`${url}/api/me`, { signal: AbortSignal.timeout(5_000) });
      assert.equal(denied.status, 401);
      const me = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${alice}` }, signal: AbortSignal.timeout(5_000) });
      assert.equal(me.status, 200);
      const body = (await me.json()) as { userId: string; roles: string[] };
      assert.equal(body.userId, "alice");
      assert.deepEqual(body.roles, ["admin"]);

      const client = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ["examples/minimal/client.mjs", url], { cwd: root, env: { ...process.env, TOKEN: bob }, timeout: 15_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      assert.equal(client.code, 0, client.stderr);
      assert.match(client.stdout, /"sent":true,"from":"bob"/);

      const refused = await new Promise<{ stderr: string }>((resolve) => {
        execFile(process.execPath, ["examples/minimal/client.mjs", url], { cwd: root, env: { ...process.env, TOKEN: "" }, timeout: 15_000 }, (_e, _o, stderr) =>
          resolve({ stderr }),
        );
      });
      assert.match(refused.stderr, /connect_error: ERR_AUTH_TOKEN_REQUIRED/);
    } finally {
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      assert.equal(code, 0, `exit code ${code}\n${err}`);
      assert.match(out, /stopped/);
    }
  });
});
