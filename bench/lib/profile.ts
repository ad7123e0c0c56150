/**
 * A plain-text summary of a V8 .cpuprofile: self time by function and by
 * package (node_modules/<name>, this package's dist/, node internals, GC,
 * idle), to see what a protected route or namespace spends its CPU on.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

function packageOf(url: string, name: string): string {
  if (name === "(idle)" || name === "(program)" || name === "(garbage collector)") return name;
  if (url === "") return "(native)";
  const modules = url.lastIndexOf("/node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith("node:")) return "node";
  if (/\/dist\/[^/]+\.(c?js)$/.test(url)) return "ioserver-oidc (dist)";
  if (url.includes("/bench/")) return "bench";
  return url;
}

export function summariseProfile(path: string, top = 20): string {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time per node: sum of the time deltas of its samples (falls back to hit counts).
  const self = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i]!;
      self.set(id, (self.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0));
    }
  } else {
    for (const node of profile.nodes) self.set(node.id, node.hitCount ?? 0);
  }
  let total = 0;
  for (const value of self.values()) total += value;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const [id, value] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || "(anonymous)";
    const pkg = packageOf(url, name);
    const file = url.split("/").slice(-1)[0] ?? "";
    const key = `${name}  [${pkg}${file && pkg !== name ? ` ${file}:${lineNumber + 1}` : ""}]`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + value);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + value);
  }
  const pct = (value: number) => `${((value / Math.max(1, total)) * 100).toFixed(1).padStart(5)} %`;
  const lines = [`  self time by package (${(total / 1e6).toFixed(2)} s sampled):`];
  for (const [pkg, value] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`    ${pct(value)}  ${pkg}`);
  lines.push(`  top ${top} functions by self time:`);
  for (const [key, value] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(value)}  ${key}`);
  return lines.join("\n");
}
