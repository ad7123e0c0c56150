/**
 * Diagnosis, not part of `npm run bench`: what the HTTP hook costs on a
 * cached token when the package's code and data are out of the CPU's data
 * caches, as they are between two requests in a busy server, for two builds
 * of the package compared in one process (so the host's noise cancels).
 *
 *   B=node_modules/.cache/cold-builds   # inside the repository, so a build finds node_modules
 *   npm run build && mkdir -p $B && rm -rf $B/a && cp -r dist $B/a
 *   (change something) && npm run build && rm -rf $B/b && cp -r dist $B/b
 *   COLD_A=$B/a COLD_B=$B/b node --import tsx bench/coldHook.ts
 *
 * Each build gets an IOServer app of its own (not started: the hook is
 * called directly) with a token verified and cached. Chunks of calls
 * alternate between the builds; before each call an 8 MiB sweep pushes the
 * caches' contents out, and the same sweep before a bare `done()` is the
 * baseline subtracted. Prints each build's median µs per call and the
 * median of the paired differences (B − A). Two copies of the same build
 * read within about ± 0.02 µs of each other.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { IOServer } from "ioserver";
import { claims, makeKey, signToken } from "./lib/jwt.js";
import { startJwksServer } from "./lib/jwksServer.js";

type Hook = (request: object, reply: object, done: () => void) => void;

const buildA = process.env.COLD_A;
const buildB = process.env.COLD_B;
if (buildA === undefined || buildB === undefined) {
  console.error("COLD_A and COLD_B must name two build directories (copies of dist/), see the comment at the top of bench/coldHook.ts");
  process.exit(2);
}
const chunks = Number(process.env.COLD_CHUNKS ?? 300);
const CALLS = 200;

const key = makeKey("RS256");
const jwks = await startJwksServer([key.jwk]);
const issuer = "https://issuer.bench";
const config = { issuer, audience: "bench-api", jwksUri: jwks.jwksUri };
const token = await signToken(key, claims(issuer, "bench-api", "user-single", 3_600, { email: "user-single@bench.invalid" }));

/** An app of the build in `dir`, as the bench server has it (a revocation of another user on its deny-list), and its hook. */
async function hookOf(dir: string): Promise<Hook> {
  const oidc = (await import(pathToFileURL(resolve(dir, "index.js")).href)) as typeof import("ioserver-oidc");
  const server = new IOServer({ host: "127.0.0.1", port: 1, verbose: "ERROR" });
  server.addManager({ name: "oidcConfig", manager: oidc.OidcConfigManager.configure(config) });
  server.addManager({ name: "revocations", manager: oidc.OidcSessionManager });
  // IOServer hands this object to every middleware it registers; here the hook is made by hand.
  const appHandle = (server as unknown as { appHandle: Record<string, unknown> }).appHandle;
  await (appHandle.revocations as InstanceType<typeof oidc.OidcSessionManager>).disconnectSubject("bench-revoked-user", { iss: issuer, reason: "on the deny-list" });
  return new oidc.OidcHttpMiddleware().handle(appHandle as never) as unknown as Hook;
}

/** Request-like objects: own fields set by a constructor, `headers` a prototype getter, as Fastify's. One class per build, so neither build finds the other's accessors on its prototype. */
function requestClass() {
  return class Request {
    readonly id: string;
    readonly params = {};
    readonly raw: { headers: Record<string, string> };
    readonly query = {};
    readonly log = {};
    readonly body = undefined;
    constructor(id: number, headers: Record<string, string>) {
      this.id = `req-${id}`;
      this.raw = { headers };
    }
    get headers(): Record<string, string> {
      return this.raw.headers;
    }
  };
}

const sides = await Promise.all(
  [buildA, buildB].map(async (dir) => ({ hook: await hookOf(dir), Request: requestClass(), times: [] as number[] })),
);
const reply = {
  header() {
    return reply;
  },
};
let accepted = 0;
const done = () => {
  accepted++;
};
// The token is cached from its second verification; the key set is fetched by the first.
for (const side of sides) {
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the warm-up request was not answered within 10 s")), 10_000);
      side.hook(new side.Request(i, { authorization: `Bearer ${token}` }), { ...reply, code: () => reject(new Error("the warm-up request was refused")) }, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const sweep = new Float64Array(1 << 20);
let sink = 0;
const evict = (k: number) => {
  for (let i = k & 63; i < sweep.length; i += 512) sink += sweep[i]!;
};

/** µs per call of one chunk, the baseline subtracted. */
function chunk(side: (typeof sides)[number]): number {
  let spent = 0;
  let baseline = 0;
  for (let i = 0; i < CALLS; i++) {
    evict(i);
    const request = new side.Request(i, { host: "127.0.0.1", authorization: `Bearer ${token}` });
    const t0 = performance.now();
    side.hook(request, reply, done);
    spent += performance.now() - t0;
    evict(i + 1);
    const other = new side.Request(i, { host: "127.0.0.1", authorization: `Bearer ${token}` });
    const t1 = performance.now();
    done();
    sink += other.id.length;
    baseline += performance.now() - t1;
  }
  return ((spent - baseline) / CALLS) * 1000;
}

for (let c = 0; c < chunks; c++) {
  const order = c % 2 === 0 ? [0, 1] : [1, 0];
  for (const index of order) sides[index]!.times.push(chunk(sides[index]!));
}
const expected = 2 * chunks * CALLS * 2;
if (accepted !== expected) throw new Error(`${expected - accepted} calls were not accepted at once: the token was not a cache hit`);

const median = (values: number[]) => [...values].sort((x, y) => x - y)[values.length >> 1]!;
// The first quarter of the chunks is warm-up (V8 optimises the hook meanwhile).
const from = chunks >> 2;
const [a, b] = sides.map((side) => side.times.slice(from));
const paired = a!.map((value, index) => b![index]! - value);
console.log(
  `A ${median(a!).toFixed(3)} µs per call, B ${median(b!).toFixed(3)} µs, B − A ${median(paired).toFixed(3)} µs (median of ${paired.length} pairs of chunks)` +
    (sink === 0 ? "" : " "),
);
await jwks.close();
process.exit(0);
