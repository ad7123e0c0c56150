/**
 * DPoP proofs for the load generator, made with node:crypto directly (fast,
 * and independent of the code under test), and a small token introspection
 * endpoint on 127.0.0.1 for opaque tokens.
 */
import { createHash, randomUUID, sign } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchKey } from "./jwt.js";

const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/** RFC 7638 SHA-256 thumbprint of an EC P-256, OKP or RSA public JWK. */
export function thumbprint(jwk: Record<string, unknown>): string {
  const members = jwk.kty === "EC" ? ["crv", "kty", "x", "y"] : jwk.kty === "OKP" ? ["crv", "kty", "x"] : ["e", "kty", "n"];
  return createHash("sha256")
    .update(JSON.stringify(Object.fromEntries(members.map((name) => [name, jwk[name]]))))
    .digest("base64url");
}

/** What every proof of one run shares: the key, the request it is for, and the token it goes with. */
export interface ProofTarget {
  key: BenchKey;
  method: string;
  url: string;
  accessToken: string;
}

/**
 * `count` proofs for `target`, each with its own `jti` and `iat` now (valid
 * for the server's 60 s window). Synchronous: about the cost of one
 * signature each, made before the run that sends them, never during it.
 */
export function makeProofs(target: ProofTarget, count: number): string[] {
  const { alg, privateKey, jwk } = target.key;
  const publicJwk = Object.fromEntries(Object.entries(jwk).filter(([name]) => !["kid", "alg", "use"].includes(name)));
  const header = b64(JSON.stringify({ typ: "dpop+jwt", alg, jwk: publicJwk }));
  const ath = createHash("sha256").update(target.accessToken).digest("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const keyArg = alg === "ES256" ? { key: privateKey, dsaEncoding: "ieee-p1363" as const } : privateKey;
  const digest = alg === "EdDSA" ? null : "sha256";
  const proofs = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const input = `${header}.${b64(JSON.stringify({ htm: target.method, htu: target.url, iat, jti: randomUUID(), ath }))}`;
    proofs[i] = `${input}.${b64(sign(digest, Buffer.from(input), keyArg))}`;
  }
  return proofs;
}

/**
 * The wrk script of a DPoP run: `Authorization: DPoP <token>` on every
 * request and the next proof of the file as the `DPoP` header (each proof
 * once; past the end it would start over, and the server would refuse the
 * replays: the run counts them as failed requests).
 */
export function dpopScript(dir: string, accessToken: string): string {
  const script = join(dir, "dpop.lua");
  writeFileSync(
    script,
    `
local proofs = {}
for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
  if #line > 0 then proofs[#proofs + 1] = line end
end
local count = #proofs
local next = 0
local authorization = "DPoP ${accessToken}"
request = function()
  next = next + 1
  if next > count then next = 1 end
  return wrk.format(nil, nil, { ["Authorization"] = authorization, ["DPoP"] = proofs[next] })
end
`,
  );
  return script;
}

export interface IntrospectionEndpoint {
  readonly endpoint: string;
  /** Introspection requests answered since start. */
  readonly hits: number;
  close(): Promise<void>;
}

/**
 * RFC 7662 token introspection on 127.0.0.1: `active: true` with the given
 * claims for `token`, `active: false` for anything else. Client
 * authentication is not checked (the package's is tested elsewhere).
 */
export async function startIntrospection(token: string, claims: Record<string, unknown>): Promise<IntrospectionEndpoint> {
  let hits = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      hits++;
      const active = new URLSearchParams(body).get("token") === token;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(active ? { active: true, ...claims } : { active: false }));
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/introspect`,
    get hits() {
      return hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
