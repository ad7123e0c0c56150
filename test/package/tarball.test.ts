/**
 * The package as published: `npm pack` of the built dist/, installed into a
 * scratch consumer project with a STRICT layout, then imported (ESM and CJS,
 * every entry) and type-checked with tsc in three flavours (scratch/esm:
 * node16 + "type": "module"; scratch/cjs: node16 + CommonJS; scratch/bundler:
 * moduleResolution bundler), all over the same scratch/consumer.ts.
 *
 * Layout, like pnpm's store or Yarn PnP, without a registry (offline,
 * deterministic):
 *   <tmp>/store/node_modules/ioserver-oidc/   the unpacked tarball
 *   <tmp>/store/node_modules/<dep>            -> repo node_modules/<dep>, ONLY for
 *                                               the tarball's dependencies and
 *                                               peerDependencies
 *   <tmp>/app/node_modules/ioserver-oidc      -> the store copy
 *   <tmp>/app/node_modules/<dep>              -> repo node_modules/<dep>, the
 *                                               consumer's own dependencies
 * The store is not an ancestor of the app, so the package sees exactly what its
 * package.json declares (its peers link to the same fastify / socket.io files
 * the consumer and IOServer use, as a strict installer does). A control store
 * without the fastify and socket.io peers shows the check is strict: there the
 * augmentation is lost and tsc fails.
 *
 * It packs with --ignore-scripts: the prepack build would rewrite dist/ under
 * tests running beside this one. `npm run check:package` packs with the build.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

const here = fileURLToPath(new URL("./", import.meta.url));
const repo = fileURLToPath(new URL("../../", import.meta.url));
const repoModules = join(repo, "node_modules");
const tsc = join(repoModules, "typescript", "bin", "tsc");

/** What the consumer itself depends on (it imports their types or runs them). */
const CONSUMER_DEPS = ["ioserver", "fastify", "socket.io", "socket.io-client", "@types/node"];
const FLAVOURS = ["esm", "cjs", "bundler"] as const;

type Run = { code: number | null; stdout: string; stderr: string };

function run(command: string, args: string[], cwd: string, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

function link(modules: string, name: string): void {
  const target = realpathSync(join(repoModules, name));
  mkdirSync(dirname(join(modules, name)), { recursive: true });
  symlinkSync(target, join(modules, name), "dir");
}

/** Unpacks the tarball into <root>/<store>/node_modules and links its declared deps, minus `leave`. */
async function makeStore(root: string, tarball: string, store: string, leave: string[] = []): Promise<string> {
  const modules = join(root, store, "node_modules");
  mkdirSync(modules, { recursive: true });
  const untar = await run("tar", ["-xzf", tarball, "-C", modules], modules);
  assert.equal(untar.code, 0, untar.stderr);
  const pkg = join(modules, "ioserver-oidc");
  renameSync(join(modules, "package"), pkg);
  const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
    if (!leave.includes(name) && existsSync(join(repoModules, name))) link(modules, name);
  }
  return pkg;
}

/** A consumer app whose node_modules holds the store's package and the consumer's own deps. */
function makeApp(root: string, app: string, pkg: string): string {
  const dir = join(root, app);
  const modules = join(dir, "node_modules");
  mkdirSync(modules, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `scratch-${app}`, private: true }));
  symlinkSync(pkg, join(modules, "ioserver-oidc"), "dir");
  for (const name of CONSUMER_DEPS) link(modules, name);
  for (const flavour of FLAVOURS) {
    cpSync(join(here, "scratch", flavour), join(dir, flavour), { recursive: true });
    cpSync(join(here, "scratch", "consumer.ts"), join(dir, flavour, "consumer.ts"));
  }
  for (const file of ["consumer.mjs", "consumer.cjs", "scenario.cjs"]) cpSync(join(here, file), join(dir, file));
  return dir;
}

describe("the packed tarball, installed strictly into a scratch consumer", () => {
  let root = "";
  let app = "";
  let control = "";
  let files: string[] = [];

  before(async () => {
    assert.ok(existsSync(join(repo, "dist", "index.js")), "run npm run build first");
    root = mkdtempSync(join(tmpdir(), "ioserver-oidc-tarball-"));
    const pack = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", root], repo);
    assert.equal(pack.code, 0, pack.stderr);
    const info = (JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    files = info.files.map((each) => each.path);
    const tarball = join(root, info.filename);
    app = makeApp(root, "app", await makeStore(root, tarball, "store"));
    control = makeApp(root, "control", await makeStore(root, tarball, "store-without-peers", ["fastify", "socket.io"]));
  });

  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("ships dist with declarations for both formats, and no sources, maps or tests", () => {
    for (const entry of ["index", "testing", "client", "metrics"]) {
      for (const ext of [".js", ".cjs", ".d.ts", ".d.cts"]) assert.ok(files.includes(`dist/${entry}${ext}`), `dist/${entry}${ext} missing`);
    }
    for (const file of ["package.json", "README.md", "LICENSE", "CHANGELOG.md"]) assert.ok(files.includes(file), `${file} missing`);
    assert.deepEqual(files.filter((file) => !/^(dist\/[^/]+\.(js|cjs|d\.ts|d\.cts)|package\.json|README\.md|LICENSE|CHANGELOG\.md)$/.test(file)), []);
    const dts = readFileSync(join(root, "store", "node_modules", "ioserver-oidc", "dist", "index.d.ts"), "utf8");
    assert.match(dts, /declare module "fastify"/);
    assert.match(dts, /declare module "socket.io"/);
  });

  it("every entry imports from ESM and requires from CommonJS, each to its own format", async () => {
    const esm = await run(process.execPath, [
      "--input-type=module",
      "-e",
      `const names = ["ioserver-oidc", "ioserver-oidc/testing", "ioserver-oidc/client", "ioserver-oidc/metrics"];
       const mods = await Promise.all(names.map((name) => import(name)));
       console.log(JSON.stringify({ files: names.map((name) => import.meta.resolve(name).replace(/^.*\\/dist\\//, "")),
         kinds: [typeof mods[0].verifyOidcToken, typeof mods[1].createTestIssuer, typeof mods[2].connectWithOidc, typeof mods[3].attachPrometheusMetrics] }));`,
    ], app, 30_000);
    assert.equal(esm.code, 0, esm.stderr);
    assert.deepEqual(JSON.parse(esm.stdout), { files: ["index.js", "testing.js", "client.js", "metrics.js"], kinds: ["function", "function", "function", "function"] });

    const cjs = await run(process.execPath, [
      "-e",
      `const names = ["ioserver-oidc", "ioserver-oidc/testing", "ioserver-oidc/client", "ioserver-oidc/metrics"];
       const mods = names.map((name) => require(name));
       console.log(JSON.stringify({ files: names.map((name) => require.resolve(name).replace(/^.*\\/dist\\//, "")),
         kinds: [typeof mods[0].verifyOidcToken, typeof mods[1].createTestIssuer, typeof mods[2].connectWithOidc, typeof mods[3].attachPrometheusMetrics] }));`,
    ], app, 30_000);
    assert.equal(cjs.code, 0, cjs.stderr);
    assert.deepEqual(JSON.parse(cjs.stdout), { files: ["index.cjs", "testing.cjs", "client.cjs", "metrics.cjs"], kinds: ["function", "function", "function", "function"] });
  });

  for (const file of ["consumer.mjs", "consumer.cjs"]) {
    it(`${file} protects a real IOServer with the installed package and exits on its own`, async () => {
      const { code, stdout, stderr } = await run(process.execPath, [file], app, 30_000);
      assert.equal(code, 0, `exit ${code}\n${stderr}`);
      const result = JSON.parse(stdout.trim().split("\n").pop()!) as Record<string, unknown>;
      assert.equal(result.format, file.endsWith(".mjs") ? "esm" : "cjs");
      assert.deepEqual(result.http, { status: 200, body: { userId: "pkg-user", roles: ["admin"] }, deniedStatus: 401, deniedCode: "ERR_AUTH_TOKEN_REQUIRED" });
      assert.deepEqual(result.socket, { error: null, who: { userId: "pkg-user", dataAuth: "pkg-user" }, refused: "ERR_AUTH_TOKEN_INVALID" });
    });
  }

  for (const flavour of FLAVOURS) {
    it(`type-checks in the ${flavour} flavour (tsc --noEmit)`, async () => {
      const { code, stdout, stderr } = await run(process.execPath, [tsc, "--noEmit", "-p", "tsconfig.json"], join(app, flavour), 120_000);
      assert.equal(code, 0, `tsc failed in ${flavour}:\n${stdout}${stderr}`);
    });
  }

  it("control: without the fastify and socket.io peers in reach, the augmentation is lost (the layout is strict)", async () => {
    assert.deepEqual(readdirSync(join(root, "store-without-peers", "node_modules")).filter((name) => name === "fastify" || name === "socket.io"), []);
    const { code, stdout } = await run(process.execPath, [tsc, "--noEmit", "-p", "tsconfig.json"], join(control, "esm"), 120_000);
    assert.notEqual(code, 0, "tsc passed although the package could not see fastify: the scratch layout is not strict");
    assert.match(stdout, /consumer\.ts\(\d+,\d+\): error TS\d+: .*userId/);
  });
});
