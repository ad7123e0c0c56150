/**
 * The layers of src/, lowest first. A module may import from its own layer
 * and from the layers below it, never from a layer above: the order is the
 * design (see docs/architecture.md). `types.ts`, `errors.ts`, `events.ts` and
 * `diagnostics.ts` sit under every layer; `index.ts` and the three extra entries (`client/`,
 * `testing/`, `metrics/`) sit on top.
 */
const LAYERS = ["util", "jwt", "claims", "config", "keys", "introspection", "verify", "stores", "dpop", "pipeline", "sockets", "guards", "logout", ["redis", "ioserver"]];
const names = LAYERS.flat();
const leaves = "^src/(types|errors|events|diagnostics)[.]ts$";
const core = `^src/(${names.filter((name) => name !== "redis" && name !== "ioserver").join("|")})/`;

const upward = LAYERS.map((layer, index) => {
  const own = [layer].flat();
  const above = LAYERS.slice(index + 1).flat();
  const beside = own.length > 1 ? own : [];
  const forbidden = [...above];
  return {
    name: `layer-${own.join("-")}`,
    comment: `${own.join(" and ")} may import only from the layers below it${beside.length ? ` (and not from each other)` : ""}`,
    severity: "error",
    from: { path: `^src/(${own.join("|")})/` },
    to: { path: `^src/(${forbidden.length ? forbidden.join("|") + "|" : ""}index[.]ts$|client/|testing/|metrics/)` },
  };
}).filter((rule) => rule.to.path !== "^src/(index[.]ts$|client/|testing/)" || true);

module.exports = {
  forbidden: [
    { name: "no-cycles", severity: "error", from: {}, to: { circular: true } },
    ...upward,
    { name: "redis-not-ioserver", comment: "the Redis stores and adapter stand beside the IOServer front-end", severity: "error", from: { path: "^src/redis/" }, to: { path: "^src/ioserver/" } },
    { name: "ioserver-not-redis", comment: "the IOServer front-end works without Redis", severity: "error", from: { path: "^src/ioserver/" }, to: { path: "^src/redis/" } },
    { name: "leaves", comment: "types.ts, errors.ts, events.ts and diagnostics.ts import nothing of the package", severity: "error", from: { path: leaves }, to: { path: "^src/" , pathNot: leaves } },
    { name: "core-without-ioserver", comment: "the core never imports IOServer: another front-end could stand beside src/ioserver/", severity: "error", from: { path: core }, to: { path: "node_modules/ioserver/" } },
    { name: "core-without-redis", comment: "only src/redis/ talks to a Redis client or the Redis adapter", severity: "error", from: { path: `(${core}|^src/ioserver/)` }, to: { path: "node_modules/(ioredis|redis|@redis|@socket[.]io/redis-adapter)/" } },
    { name: "client-alone", comment: "the browser helper carries nothing of the server", severity: "error", from: { path: "^src/client/" }, to: { path: "^src/", pathNot: "^src/(client/|events[.]ts$)" } },
    { name: "testing-alone", comment: "the test issuer uses only jose and the public types", severity: "error", from: { path: "^src/testing/" }, to: { path: "^src/", pathNot: "^src/(testing/|types[.]ts$|jwt/jose[.]ts$)" } },
    { name: "metrics-alone", comment: "the metrics adapters read the diagnostics channels only (and the package's types)", severity: "error", from: { path: "^src/metrics/" }, to: { path: "^src/", pathNot: "^src/(metrics/|diagnostics[.]ts$|types[.]ts$|errors[.]ts$)" } },
    { name: "metrics-entry-only", comment: "the metrics adapters are an entry point of their own: nothing else of the package loads them", severity: "error", from: { path: "^src/", pathNot: "^src/metrics/" }, to: { path: "^src/metrics/" } },
    { name: "no-stray-folders", comment: "every module of src/ belongs to a layer", severity: "error", from: { path: "^src/", pathNot: `^src/(${names.join("|")}|client|testing|metrics)/|^src/(index|types|errors|events|diagnostics)[.]ts$` }, to: {} },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"], extensions: [".ts", ".js"] },
  },
};
