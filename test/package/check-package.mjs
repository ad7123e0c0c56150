// `npm run check:package`: pack the package the way `npm publish` would (the
// prepack script builds dist/ first), then lint the tarball with publint
// (--strict: warnings fail too) and @arethetypeswrong/cli. Exits non-zero if
// packing or either tool fails, and ends with a one-line-per-step summary.
//
// attw runs with `--profile node16`: the subpaths ./testing and ./client exist
// only in the `exports` map, which TypeScript's legacy `moduleResolution:
// node10` does not read. The package targets Node >= 20 (which always honours
// `exports`), so node10 is out of scope; "." still resolves there via `types`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const TIMEOUT = 5 * 60_000;

function step(label, command, args) {
  process.stdout.write(`\n== ${label}: ${[command, ...args].join(" ")}\n`);
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, encoding: "utf8", timeout: TIMEOUT, killSignal: "SIGKILL", stdio: ["ignore", "pipe", "pipe"] });
  process.stdout.write(result.stdout ?? "");
  process.stderr.write(result.stderr ?? "");
  const ok = result.status === 0 && !result.error;
  const why = result.error ? ` (${result.error.message})` : result.status === 0 ? "" : ` (exit ${result.status ?? result.signal})`;
  return { label, ok, detail: `${ok ? "ok" : "FAILED"}${why}, ${((Date.now() - started) / 1000).toFixed(1)} s`, stdout: result.stdout ?? "" };
}

const dir = mkdtempSync(join(tmpdir(), "ioserver-oidc-check-"));
const summary = [];
try {
  const pack = step("pack", "npm", ["pack", "--json", "--pack-destination", dir]);
  summary.push(pack);
  if (pack.ok) {
    // npm prints the build's output before the JSON; the JSON array is the last thing on stdout.
    const info = JSON.parse(pack.stdout.slice(pack.stdout.lastIndexOf("\n[") + 1))[0];
    const tarball = join(dir, info.filename);
    pack.detail += `, ${info.filename}: ${info.entryCount} files, ${(info.size / 1024).toFixed(1)} kB packed, ${(info.unpackedSize / 1024).toFixed(1)} kB unpacked`;
    summary.push(step("publint", bin("publint"), ["run", tarball, "--strict"]));
    summary.push(step("attw", bin("attw"), [tarball, "--profile", "node16", "--format", "table", "--no-emoji", "--no-color"]));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const failed = summary.filter((each) => !each.ok);
process.stdout.write(`\ncheck:package summary\n${summary.map((each) => `  ${each.label}: ${each.detail}`).join("\n")}\n`);
process.stdout.write(failed.length ? `check:package FAILED (${failed.map((each) => each.label).join(", ")})\n` : "check:package passed\n");
process.exitCode = failed.length ? 1 : 0;
