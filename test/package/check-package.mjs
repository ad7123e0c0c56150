// `npm run check:package`: pack the package the way `npm publish` would (the
// prepack script builds dist/ first), then lint the tarball with publint
// (--strict: warnings fail too) and @arethetypeswrong/cli. Exits non-zero if
// packing or either tool fails, and ends with a one-line-per-step summary.
// It also unpacks the tarball into an empty app folder and loads the
// `ioserver-oidc/metrics` entry from ES module and from CommonJS code there:
// with neither @opentelemetry/api nor prom-client installed beside it (both
// are optional peers, which an app passes in), it must load; given the
// repository's prom-client, it registers its metrics.
//
// attw runs with `--profile node16`: the subpaths ./testing, ./client and ./metrics exist
// only in the `exports` map, which TypeScript's legacy `moduleResolution:
// node10` does not read. The package targets Node >= 20 (which always honours
// `exports`), so node10 is out of scope; "." still resolves there via `types`.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
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
    const app = join(dir, "app");
    const installed = join(app, "node_modules", "ioserver-oidc");
    mkdirSync(installed, { recursive: true });
    const unpack = step("unpack", "tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"]);
    summary.push(unpack);
    if (unpack.ok) {
      summary.push(loadIn(app, "metrics (ESM)", "module", `const metrics = await import("ioserver-oidc/metrics");\nconst { default: promClient } = await import(${JSON.stringify(join(root, "node_modules", "prom-client", "index.js"))});`));
      summary.push(loadIn(app, "metrics (CJS)", "commonjs", `const metrics = require("ioserver-oidc/metrics");\nconst promClient = require(${JSON.stringify(join(root, "node_modules", "prom-client"))});`));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Run a script in the unpacked app that loads the metrics entry (`load`),
 * checks both adapters are there and that neither optional peer can be
 * found from the app, then attaches the prom-client adapter to a registry.
 */
function loadIn(app, label, type, load) {
  const body = `(async () => {
${load}
for (const name of ["attachOpenTelemetryMetrics", "attachPrometheusMetrics"]) if (typeof metrics[name] !== "function") throw new Error(name + " is missing");
for (const peer of ["@opentelemetry/api", "prom-client"]) {
  let found = true;
  try { await import(peer); } catch { found = false; }
  if (found) throw new Error(peer + " is installed beside the app: the check would not show that it is optional");
}
const registry = new promClient.Registry();
const detach = metrics.attachPrometheusMetrics({ client: promClient, registry });
const text = await registry.metrics();
if (!text.includes("# TYPE ioserver_oidc_authentications_total counter") || !text.includes("# TYPE ioserver_oidc_live_sockets gauge")) throw new Error("metrics not registered:\\n" + text);
detach();
if ((await registry.metrics()).includes("ioserver_oidc_")) throw new Error("detach left metrics behind");
console.log("loaded, attached and detached");
})().catch((error) => { console.error(error); process.exit(1); });`;
  return spawnStep(label, app, type, body);
}

function spawnStep(label, cwd, type, body) {
  process.stdout.write(`\n== ${label}: node --input-type=${type} (in ${cwd})\n`);
  const started = Date.now();
  const result = spawnSync(process.execPath, [`--input-type=${type}`, "-e", body], { cwd, encoding: "utf8", timeout: TIMEOUT, killSignal: "SIGKILL", stdio: ["ignore", "pipe", "pipe"] });
  process.stdout.write(result.stdout ?? "");
  process.stderr.write(result.stderr ?? "");
  const ok = result.status === 0 && !result.error;
  return { label, ok, detail: `${ok ? "ok" : "FAILED"}${ok ? "" : ` (exit ${result.status ?? result.signal})`}, ${((Date.now() - started) / 1000).toFixed(1)} s` };
}

const failed = summary.filter((each) => !each.ok);
process.stdout.write(`\ncheck:package summary\n${summary.map((each) => `  ${each.label}: ${each.detail}`).join("\n")}\n`);
process.stdout.write(failed.length ? `check:package FAILED (${failed.map((each) => each.label).join(", ")})\n` : "check:package passed\n");
process.exitCode = failed.length ? 1 : 0;
