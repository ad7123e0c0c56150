/**
 * The attack catalogue through a real IOServer: the same hostile tokens on
 * both transports, plus the header tricks only HTTP has.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { before, describe, it } from "node:test";
import { SignJWT, exportSPKI, generateKeyPair } from "jose";
import { type TestIssuer } from "../../src/testing/index.js";
import { call, outcome, type TestApp } from "../helpers/app.js";
import { useIssuerAndApp } from "../helpers/fixtures.js";

let issuer: TestIssuer;
let app: TestApp;
useIssuerAndApp((created) => ({ issuer, app } = created));

const nowS = () => Math.floor(Date.now() / 1000);
const seg = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** Raw HTTP GET, so headers can repeat exactly as given. */
function rawGet(path: string, headers: Array<[string, string]>): Promise<{ status: number; body: { code?: string; sub?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { method: "GET", timeout: 8_000 }, (res) => {
      let data = "";
      res.on("data", (chunk) => (data += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data === "" ? {} : (JSON.parse(data) as { code?: string; sub?: string }) }));
    });
    const grouped = new Map<string, string[]>();
    for (const [name, value] of headers) grouped.set(name, [...(grouped.get(name) ?? []), value]);
    for (const [name, values] of grouped) req.setHeader(name, values.length === 1 ? values[0]! : values); // an array sends repeated lines
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function hostileTokens(): Promise<Record<string, string>> {
  const good = await issuer.mint();
  const [h, p] = good.split(".");
  const attacker = await generateKeyPair("RS256");
  const pem = await exportSPKI((await generateKeyPair("RS256", { extractable: true })).publicKey);
  return {
    "alg none": `${seg({ alg: "none" })}.${p}.`,
    "HS256 with a public key as secret": await new SignJWT({ iss: issuer.issuer, aud: issuer.appSlug, sub: "x", exp: nowS() + 60 })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(pem)),
    "signed by the attacker under a real kid": await new SignJWT({ iss: issuer.issuer, aud: issuer.appSlug, sub: "admin", exp: nowS() + 60 })
      .setProtectedHeader({ alg: "RS256", kid: (JSON.parse(Buffer.from(h!, "base64url").toString()) as { kid?: string }).kid })
      .sign(attacker.privateKey),
    "tampered payload": `${h}.${seg({ iss: issuer.issuer, aud: issuer.appSlug, sub: "admin", roles: ["admin"], exp: nowS() + 60 })}.${good.split(".")[2]}`,
    "expired": await issuer.mint({ exp: nowS() - 60 }),
    "wrong audience": await issuer.mint({ aud: "another-api" }),
    "iss with a trailing slash": await issuer.mint({ iss: `${issuer.issuer}/` }),
    "missing exp": await issuer.mint({ exp: undefined }),
    "sub empty": await issuer.mint({ sub: "" }),
    "JWE shape": `${seg({ alg: "RSA-OAEP", enc: "A128GCM" })}.a.b.c.d`,
    "over the size cap": `${h}.${"A".repeat(16 * 1024)}.x`,
    "kid path traversal": await issuer.mint({}, { kid: "../../../../etc/passwd" }),
    "jku and embedded jwk pointing at the attacker": await new SignJWT({ iss: issuer.issuer, aud: issuer.appSlug, sub: "admin", exp: nowS() + 60 })
      .setProtectedHeader({ alg: "RS256", kid: "attacker", jku: "http://127.0.0.1:9/jwks", jwk: { kty: "RSA", n: "AQAB", e: "AQAB" } })
      .sign(attacker.privateKey),
    "exp as a string": await issuer.mint({ exp: String(nowS() + 300) }),
    "aud array without the audience": await issuer.mint({ aud: ["a", "b"] }),
    "iss with userinfo": await issuer.mint({ iss: issuer.issuer.replace("http://", "http://evil@") }),
    "sub as a number": await issuer.mint({ sub: 42 }),
    "nbf in the future": await issuer.mint({ nbf: nowS() + 600 }),
    "header not JSON": `${seg("not json")}.${p}.${good.split(".")[2]}`,
  };
}

/** The names of the cases, known before the tokens are minted (one named test each). */
const CASES = [
  "alg none",
  "HS256 with a public key as secret",
  "signed by the attacker under a real kid",
  "tampered payload",
  "expired",
  "wrong audience",
  "iss with a trailing slash",
  "missing exp",
  "sub empty",
  "JWE shape",
  "over the size cap",
  "kid path traversal",
  "jku and embedded jwk pointing at the attacker",
  "exp as a string",
  "aud array without the audience",
  "iss with userinfo",
  "sub as a number",
  "nbf in the future",
  "header not JSON",
];

describe("hostile tokens on both transports", () => {
  let tokens: Record<string, string>;
  before(async () => {
    tokens = await hostileTokens();
    assert.deepEqual(Object.keys(tokens).sort(), [...CASES].sort());
  });

  for (const name of CASES) {
    it(`HTTP: ${name} → 401 ERR_AUTH_TOKEN_INVALID`, async () => {
      const http = await rawGet("/api/me", [["authorization", `Bearer ${tokens[name]}`]]);
      if (name === "over the size cap" && http.status === 431) return; // Node's own 16 KiB header limit refuses it before Fastify
      assert.equal(http.status, 401);
      assert.equal(http.body.code, "ERR_AUTH_TOKEN_INVALID");
    });

    it(`Socket.IO: ${name} → connect_error ERR_AUTH_TOKEN_INVALID`, async () => {
      const socket = await outcome(app.connect("chat", { auth: { token: tokens[name] } }));
      assert.ok(!socket.connected);
      if (!socket.connected) assert.equal(socket.message, "ERR_AUTH_TOKEN_INVALID");
    });
  }

  it("no token reached the log", () => {
    assert.ok(app.logs.every((l) => Object.values(tokens).every((t) => !l.text.includes(t))));
  });
});

describe("HTTP header tricks", () => {
  it("two Bearer credentials in one Authorization header are refused", async () => {
    const a = await issuer.mint({ sub: "a" });
    const b = await issuer.mint({ sub: "b" });
    const res = await rawGet("/api/me", [["authorization", `Bearer ${a}, Bearer ${b}`]]);
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "ERR_AUTH_TOKEN_INVALID");
  });

  it("a repeated Authorization header: Node keeps the first, deterministically", async () => {
    const good = await issuer.mint({ sub: "first" });
    const first = await rawGet("/api/me", [["authorization", `Bearer ${good}`], ["authorization", "Bearer garbage"]]);
    assert.equal(first.status, 200);
    assert.equal(first.body.sub, "first");
    const second = await rawGet("/api/me", [["authorization", "Bearer garbage"], ["authorization", `Bearer ${good}`]]);
    assert.equal(second.status, 401);
  });

  it("a token in the query string is not a credential", async () => {
    const res = await rawGet(`/api/me?access_token=${await issuer.mint()}`, []);
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "ERR_AUTH_TOKEN_REQUIRED");
  });
});

describe("Socket.IO handshake tricks", () => {
  it("auth.token and the header with different subjects: auth.token wins, the header is not consulted", async () => {
    const result = await outcome(
      app.connect("chat", { auth: { token: await issuer.mint({ sub: "from-auth" }) }, extraHeaders: { authorization: `Bearer ${await issuer.mint({ sub: "from-header", roles: ["admin"] })}` } }),
    );
    assert.ok(result.connected);
    assert.equal((await call<{ sub: string; roles: string[] }>(result.socket, "whoami")).sub, "from-auth");
    result.socket.disconnect();
  });

  it("a valid auth.token does not rescue a hostile header, and a hostile auth.token is not rescued by a valid header", async () => {
    const result = await outcome(app.connect("chat", { auth: { token: "garbage" }, extraHeaders: { authorization: `Bearer ${await issuer.mint()}` } }));
    assert.ok(!result.connected);
    if (!result.connected) assert.equal(result.message, "ERR_AUTH_TOKEN_INVALID");
  });
});
