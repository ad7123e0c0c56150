/**
 * The introspection client against a plain `node:http` endpoint on
 * 127.0.0.1 that answers whatever each test tells it to: malformed and
 * hostile responses, the checks on an active token's claims, cache bounds,
 * the request's shape and each client authentication method, and the
 * options' validation.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { exportJWK, generateKeyPair, jwtVerify } from "jose";
import { isOidcAuthError } from "../../src/errors.js";
import { createIntrospector, MAX_RESPONSE_BYTES, parseMaxAge, type IntrospectorOptions } from "../../src/introspection/createIntrospector.js";
import { sleepUntil, waitFor } from "../helpers/wait.js";

const ISSUER = "https://op.introspection.test";
const TOKEN = "opaque-token-Zx81qT0vW3";

interface Seen {
  method: string;
  headers: IncomingMessage["headers"];
  form: URLSearchParams;
}

type Handler = (res: ServerResponse, seen: Seen) => void;

async function refusedWith(promise: Promise<unknown>, code: string, reason?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isOidcAuthError(error), `expected an OidcAuthError, got ${String(error)}`);
    assert.equal(error.code, code, error.reason);
    if (reason !== undefined) assert.match(error.reason, reason);
    assert.ok(!error.reason.includes(TOKEN), "the token is not in the reason");
    return true;
  });
}

const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(200, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));

const inAMinute = () => Math.floor(Date.now() / 1000) + 60;

describe("introspection responses", { timeout: 60_000 }, () => {
  let server: Server;
  let endpoint: string;
  let handler: Handler;
  let seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const lines: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const entry = { method: req.method ?? "", headers: req.headers, form: new URLSearchParams(Buffer.concat(chunks).toString()) };
        seen.push(entry);
        handler(res, entry);
      });
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  });
  beforeEach(() => {
    seen = [];
    handler = (res) => json(res, { active: true, exp: inAMinute() });
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const line of lines) assert.ok(!line.includes(TOKEN), `a log line contains the token: ${line}`);
  });

  function introspector(extra: Partial<IntrospectorOptions> = {}) {
    return createIntrospector({ issuer: ISSUER, endpoint, clientId: "rs", clientSecret: "s3cret", log: (_l, text) => lines.push(text), ...extra });
  }

  describe("responses that are the endpoint failing → ERR_AUTH_UNAVAILABLE", () => {
    const cases: Array<[string, Handler, RegExp]> = [
      ["a body that is not JSON", (res) => res.writeHead(200, { "content-type": "application/json" }).end("<html>oops</html>"), /not JSON/],
      ["JSON under another content-type", (res) => res.writeHead(200, { "content-type": "text/html" }).end('{"active":true}'), /not application\/json/],
      ["no content-type", (res) => res.writeHead(200).end('{"active":true}'), /not application\/json/],
      ["a JSON array", (res) => json(res, [{ active: true }]), /not an object/],
      ["no active member", (res) => json(res, { exp: inAMinute() }), /"active" is not a boolean/],
      ['active: "true" (a string)', (res) => json(res, { active: "true", exp: inAMinute() }), /"active" is not a boolean/],
      ["active: 1", (res) => json(res, { active: 1, exp: inAMinute() }), /"active" is not a boolean/],
      ["HTTP 500", (res) => res.writeHead(500, { "content-type": "application/json" }).end('{"error":"server_error"}'), /HTTP 500 \("server_error"\)/],
      ["HTTP 429", (res) => res.writeHead(429).end(), /HTTP 429/],
      [
        "a body announced over the limit",
        (res) => res.writeHead(200, { "content-type": "application/json", "content-length": String(10 * 1024 * 1024) }).end(),
        /over the 65536 byte limit/,
      ],
      [
        "a body that streams past the limit",
        (res) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.write(`{"active":true,"pad":"`);
          res.write("x".repeat(MAX_RESPONSE_BYTES + 1024));
          res.end(`"}`);
        },
        /over the 65536 byte limit/,
      ],
    ];
    for (const [name, answer, reason] of cases) {
      it(name, async () => {
        handler = answer;
        const rs = introspector();
        await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_UNAVAILABLE", reason);
        assert.equal(rs.health().circuit, "open");
      });
    }

    it("no answer within the timeout (the circuit opens: the next token fails fast)", async () => {
      handler = () => undefined;
      const rs = introspector({ timeout: 200 });
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_UNAVAILABLE", /no answer within 200 ms/);
      assert.equal(rs.health().circuit, "open");
      await refusedWith(rs.introspect("another-token"), "ERR_AUTH_UNAVAILABLE", /backing off/);
      assert.equal(seen.length, 1);
    });

    it("HTTP 503 opens the circuit for every token", async () => {
      handler = (res) => res.writeHead(503).end();
      const rs = introspector();
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_UNAVAILABLE", /HTTP 503/);
      await refusedWith(rs.introspect("another-token"), "ERR_AUTH_UNAVAILABLE", /backing off/);
      assert.equal(seen.length, 1);
      assert.equal(rs.health().circuit, "open");
    });

    it("rate-limited (429 + Retry-After): cached active answers are still served, new tokens wait", async () => {
      handler = (res, request) => {
        if (request.form.get("token") === TOKEN) return json(res, { active: true, exp: inAMinute() });
        res.writeHead(429, { "retry-after": "120" }).end();
      };
      const rs = introspector();
      await rs.introspect(TOKEN);
      await refusedWith(rs.introspect("token-b"), "ERR_AUTH_UNAVAILABLE", /HTTP 429/);
      assert.equal(rs.health().circuit, "open");
      assert.equal((await rs.introspect(TOKEN)).exp > 0, true);
      await refusedWith(rs.introspect("token-c"), "ERR_AUTH_UNAVAILABLE", /backing off/);
      assert.equal(seen.length, 2, "neither the cached token nor the new one was sent during the back-off");
    });

    it("a body that stalls after the headers", async () => {
      handler = (res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"active":');
      };
      await refusedWith(introspector({ timeout: 200 }).introspect(TOKEN), "ERR_AUTH_UNAVAILABLE", /within 200 ms/);
    });

    it("honours a Retry-After longer than the back-off", async () => {
      handler = (res) => res.writeHead(503, { "retry-after": "120" }).end();
      const rs = introspector();
      const started = Date.now();
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_UNAVAILABLE");
      assert.ok((rs.health().retryAt ?? 0) >= started + 120_000);
    });
  });

  describe("responses no retry fixes → ERR_AUTH_MISCONFIGURED", () => {
    it("HTTP 401 invalid_client", async () => {
      handler = (res) => res.writeHead(401, { "content-type": "application/json" }).end('{"error":"invalid_client"}');
      await refusedWith(introspector().introspect(TOKEN), "ERR_AUTH_MISCONFIGURED", /HTTP 401 \("invalid_client"\)/);
    });

    it("HTTP 400 invalid_client", async () => {
      handler = (res) => res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_client"}');
      const rs = introspector();
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_MISCONFIGURED", /HTTP 400 \("invalid_client"\)/);
      assert.equal(rs.health().circuit, "open");
    });
  });

  describe("a 3xx or 4xx about one token refuses that token only", () => {
    const BLOCKED = "blocked-by-the-waf";
    const cases: Array<[string, (res: ServerResponse) => void, RegExp]> = [
      ["HTTP 403 from a WAF", (res) => res.writeHead(403, { "content-type": "text/html" }).end("blocked"), /HTTP 403/],
      ["HTTP 413", (res) => res.writeHead(413).end(), /HTTP 413/],
      ["HTTP 414", (res) => res.writeHead(414).end(), /HTTP 414/],
      ["HTTP 404", (res) => res.writeHead(404).end(), /HTTP 404/],
      ["HTTP 400 invalid_request", (res) => res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_request"}'), /HTTP 400 \("invalid_request"\)/],
      ["a redirect, which is not followed (the token would go with it)", (res) => res.writeHead(307, { location: `${endpoint}?followed` }).end(), /HTTP 307/],
    ];
    for (const [name, refuse, reason] of cases) {
      it(`${name}: the circuit stays closed, other tokens are introspected, the refusal is cached`, async () => {
        handler = (res, request) => (request.form.get("token") === BLOCKED ? refuse(res) : json(res, { active: true, exp: inAMinute() }));
        const rs = introspector();
        await refusedWith(rs.introspect(BLOCKED), "ERR_AUTH_TOKEN_INVALID", reason);
        assert.equal(rs.health().circuit, "closed");
        assert.equal(rs.health().failures, 0);
        assert.equal(rs.health().refusedByStatus, 1);
        const claims = await rs.introspect(TOKEN);
        assert.ok(claims.exp > 0);
        assert.equal(seen.length, 2, "the other token was sent: no failing fast");
        await refusedWith(rs.introspect(BLOCKED), "ERR_AUTH_TOKEN_INVALID", reason);
        assert.equal(seen.length, 2, "the refusal is cached like active: false");
        assert.equal(rs.health().negativeCache.entries, 1);
        assert.equal(seen.filter((request) => request.form.has("followed")).length, 0);
      });
    }

    it("one refusal logs once a minute at most, without the token", async () => {
      handler = (res) => res.writeHead(403).end();
      const rs = introspector();
      const before = lines.length;
      await refusedWith(rs.introspect("blocked-1"), "ERR_AUTH_TOKEN_INVALID");
      await refusedWith(rs.introspect("blocked-2"), "ERR_AUTH_TOKEN_INVALID");
      const logged = lines.slice(before);
      assert.equal(logged.length, 1);
      assert.match(logged[0]!, /HTTP 403 for a token/);
      assert.ok(!logged[0]!.includes("blocked-1"));
    });
  });

  describe("tokens that cannot be Bearer tokens never reach the endpoint", () => {
    const junk: Array<[string, string]> = [
      ["markup", "<script>alert(1)</script>"],
      ["a space", "abc def"],
      ["a percent escape", "abc%41"],
      ["a quote", 'abc"def'],
      ["non-ASCII", "tökén"],
      ["= before the end", "abc=def"],
      ["a control character", "abc\u0000def"],
      ["over the default 2048 characters", "a".repeat(2049)],
    ];
    for (const [name, token] of junk) {
      it(`refuses ${name} with ERR_AUTH_TOKEN_INVALID, without a request`, async () => {
        const rs = introspector();
        await refusedWith(rs.introspect(token), "ERR_AUTH_TOKEN_INVALID", /b64token|over the introspection limit of 2048/);
        assert.equal(seen.length, 0);
        assert.equal(rs.health().requests, 0);
        assert.equal(rs.health().malformed, 1);
      });
    }

    it("sends every b64token character, trailing = and exactly maxTokenLength characters", async () => {
      const rs = introspector({ maxTokenLength: 80 });
      await rs.introspect("AZaz09-._~+/==");
      await rs.introspect("b".repeat(80));
      await refusedWith(rs.introspect("b".repeat(81)), "ERR_AUTH_TOKEN_INVALID", /over the introspection limit of 80/);
      assert.deepEqual(seen.map((request) => request.form.get("token")), ["AZaz09-._~+/==", "b".repeat(80)]);
    });

    it("a caller that verified the token itself (a JWT) is not held to the limit", async () => {
      const rs = introspector({ maxTokenLength: 10 });
      await rs.introspect("x".repeat(40), true);
      assert.equal(seen.length, 1);
    });
  });

  describe("maxConcurrent", () => {
    it("beyond the limit a new token is refused with ERR_AUTH_UNAVAILABLE without a request; cached tokens and joiners pass", async () => {
      const held: ServerResponse[] = [];
      handler = (res, request) => (request.form.get("token")!.startsWith("slow-") ? held.push(res) : json(res, { active: true, exp: inAMinute() }));
      const rs = introspector({ maxConcurrent: 2, timeout: 20_000 });
      try {
        await rs.introspect(TOKEN);
        const first = rs.introspect("slow-1");
        const second = rs.introspect("slow-2");
        await waitFor("both held requests at the server", () => held.length === 2, 10_000);
        assert.equal(rs.health().inflight, 2);
        await refusedWith(rs.introspect("slow-3"), "ERR_AUTH_UNAVAILABLE", /maxConcurrent/);
        assert.equal(seen.length, 3, "the third slow token was not sent");
        assert.equal(rs.health().overloaded, 1);
        assert.equal(rs.health().circuit, "closed", "being busy is not a failure");
        assert.ok((await rs.introspect(TOKEN)).exp > 0, "a cached token is still served");
        const joiner = rs.introspect("slow-1");
        for (const res of held.splice(0)) json(res, { active: true, exp: inAMinute() });
        await Promise.all([first, second, joiner]);
        assert.equal(seen.length, 3, "the joiner shared the request in flight");
        handler = (res) => json(res, { active: true, exp: inAMinute() }); // answered at once from here on: nothing waits for the timeout
        assert.ok((await rs.introspect("slow-3")).exp > 0, "room again once requests completed");
        assert.equal(seen.length, 4, "the third slow token was sent this time");
      } finally {
        for (const res of held.splice(0)) json(res, { active: false });
      }
    });
  });


  describe("an active answer's claims", () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases: Array<[string, () => Record<string, unknown>, string, RegExp]> = [
      ["no exp", () => ({ active: true }), "ERR_AUTH_TOKEN_INVALID", /no numeric "exp"/],
      ["exp as a string", () => ({ active: true, exp: String(inAMinute()) }), "ERR_AUTH_TOKEN_INVALID", /no numeric "exp"/],
      ["exp in the past", () => ({ active: true, exp: now() - 60 }), "ERR_AUTH_TOKEN_EXPIRED", /passed/],
      ["nbf in the future", () => ({ active: true, exp: inAMinute(), nbf: now() + 30 }), "ERR_AUTH_TOKEN_INVALID", /"nbf"/],
      ["another issuer", () => ({ active: true, exp: inAMinute(), iss: "https://evil.test" }), "ERR_AUTH_TOKEN_INVALID", /"https:\/\/evil.test"/],
      ["sub not a string", () => ({ active: true, exp: inAMinute(), sub: 42 }), "ERR_AUTH_TOKEN_INVALID", /"sub" is not a string/],
      ["scope not a string", () => ({ active: true, exp: inAMinute(), scope: ["a"] }), "ERR_AUTH_TOKEN_INVALID", /"scope" is not a string/],
      ["aud of numbers", () => ({ active: true, exp: inAMinute(), aud: [1] }), "ERR_AUTH_TOKEN_INVALID", /"aud"/],
      ["iat not a number", () => ({ active: true, exp: inAMinute(), iat: "yesterday" }), "ERR_AUTH_TOKEN_INVALID", /"iat" is not a number/],
    ];
    for (const [name, body, code, reason] of cases) {
      it(`refuses ${name} (a valid answer: the circuit stays closed)`, async () => {
        handler = (res) => json(res, body());
        const rs = introspector();
        await refusedWith(rs.introspect(TOKEN), code, reason);
        assert.equal(rs.health().circuit, "closed");
      });
    }

    it("accepts the configured issuer, tolerates clock skew on exp, keeps extension members", async () => {
      const exp = now() - 2;
      handler = (res) => json(res, { active: true, exp, iss: ISSUER, sub: "user-1", aud: ["api", "other"], username: "ann", ext: { tier: "gold" } });
      const claims = await introspector().introspect(TOKEN);
      assert.equal(claims.exp, exp);
      assert.equal(claims.sub, "user-1");
      assert.deepEqual(claims.aud, ["api", "other"]);
      assert.ok(Object.isFrozen(claims.aud));
      assert.deepEqual(claims["ext"], { tier: "gold" });
    });
  });

  describe("the cache", () => {
    it("a flood of refused tokens does not evict a cached active answer", async () => {
      handler = (res, request) => {
        const token = request.form.get("token")!;
        if (token.startsWith("junk-4xx-")) return res.writeHead(403).end();
        json(res, token.startsWith("junk-") ? { active: false } : { active: true, exp: inAMinute() });
      };
      const rs = introspector({ maxEntries: 2 });
      await rs.introspect(TOKEN);
      for (let i = 0; i < 30; i++) {
        await refusedWith(rs.introspect(`junk-${i}`), "ERR_AUTH_TOKEN_INVALID");
        await refusedWith(rs.introspect(`junk-4xx-${i}`), "ERR_AUTH_TOKEN_INVALID");
      }
      const sent = seen.length;
      await rs.introspect(TOKEN);
      assert.equal(seen.length, sent, "the active answer was still cached");
      assert.equal(rs.health().cache.entries, 1);
      assert.equal(rs.health().cache.evictions, 0);
      assert.equal(rs.health().negativeCache.entries, 2);
    });

    it("caches a refusal for negativeCacheTtl, and not at all with 0", async () => {
      handler = (res) => json(res, { active: false });
      const rs = introspector();
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_TOKEN_INVALID");
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_TOKEN_INVALID");
      assert.equal(seen.length, 1);
      const uncached = introspector({ negativeCacheTtl: 0 });
      await refusedWith(uncached.introspect(TOKEN), "ERR_AUTH_TOKEN_INVALID");
      await refusedWith(uncached.introspect(TOKEN), "ERR_AUTH_TOKEN_INVALID");
      assert.equal(seen.length, 3);
    });

    it("Cache-Control: max-age bounds the reuse (max-age=0: none)", async () => {
      handler = (res) => json(res, { active: true, exp: inAMinute() }, { "cache-control": "no-store, max-age=0" });
      const rs = introspector();
      await rs.introspect(TOKEN);
      await rs.introspect(TOKEN);
      assert.equal(seen.length, 2);
    });

    it("no-store alone does not turn the cache off (it addresses HTTP caches)", async () => {
      handler = (res) => json(res, { active: true, exp: inAMinute() }, { "cache-control": "no-store" });
      const rs = introspector();
      await rs.introspect(TOKEN);
      await rs.introspect(TOKEN);
      assert.equal(seen.length, 1);
    });

    it("never reuses an active answer past the token's exp", async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      handler = (res) => json(res, { active: true, exp });
      const rs = introspector({ clockTolerance: 0 });
      await rs.introspect(TOKEN);
      await sleepUntil(exp * 1000 + 50);
      await refusedWith(rs.introspect(TOKEN), "ERR_AUTH_TOKEN_EXPIRED");
      assert.equal(seen.length, 2, "asked again once the cached answer reached exp");
    });

    it("is bounded by maxEntries, the least recently used going first", async () => {
      const rs = introspector({ maxEntries: 2 });
      await rs.introspect("token-a");
      await rs.introspect("token-b");
      await rs.introspect("token-a");
      await rs.introspect("token-c");
      assert.equal(seen.length, 3);
      await rs.introspect("token-a");
      assert.equal(seen.length, 3, "token-a was used recently: kept");
      await rs.introspect("token-b");
      assert.equal(seen.length, 4, "token-b was the least recently used: evicted");
      assert.equal(rs.health().cache.evictions, 2);
      assert.equal(rs.health().cache.entries, 2);
    });

    it("forget() drops a token's answer", async () => {
      const rs = introspector();
      await rs.introspect(TOKEN);
      rs.forget(TOKEN);
      await rs.introspect(TOKEN);
      assert.equal(seen.length, 2);
    });

    it("parses max-age among other directives", () => {
      assert.equal(parseMaxAge("no-store, max-age=30"), 30_000);
      assert.equal(parseMaxAge('max-age="5", private'), 5_000);
      assert.equal(parseMaxAge("s-maxage=30"), undefined);
      assert.equal(parseMaxAge("no-cache"), undefined);
      assert.equal(parseMaxAge(null), undefined);
    });
  });

  describe("the request", () => {
    it("client_secret_basic: POST, form-encoded token and hint, Basic credentials", async () => {
      await introspector({ clientId: "rs:1", clientSecret: "p@ss word" }).introspect(TOKEN);
      const [request] = seen;
      assert.equal(request!.method, "POST");
      assert.equal(request!.headers["content-type"], "application/x-www-form-urlencoded");
      assert.equal(request!.form.get("token"), TOKEN);
      assert.equal(request!.form.get("token_type_hint"), "access_token");
      assert.equal(request!.form.get("client_secret"), null);
      assert.equal(request!.headers.authorization, `Basic ${Buffer.from("rs%3A1:p%40ss+word").toString("base64")}`);
    });

    it("client_secret_post: credentials in the form, no Authorization header", async () => {
      await introspector({ clientAuthMethod: "client_secret_post" }).introspect(TOKEN);
      const [request] = seen;
      assert.equal(request!.headers.authorization, undefined);
      assert.equal(request!.form.get("client_id"), "rs");
      assert.equal(request!.form.get("client_secret"), "s3cret");
    });

    it("private_key_jwt: a signed assertion per request, aud = the issuer, a fresh jti, a short life", async () => {
      const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
      const jwk = { ...(await exportJWK(privateKey)), kid: "k1" };
      const rs = introspector({ clientSecret: undefined, privateKey: jwk });
      await rs.introspect("token-1");
      await rs.introspect("token-2");
      const jtis = new Set<unknown>();
      for (const request of seen) {
        assert.equal(request.headers.authorization, undefined);
        assert.equal(request.form.get("client_id"), "rs");
        assert.equal(request.form.get("client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        const { payload, protectedHeader } = await jwtVerify(request.form.get("client_assertion")!, publicKey, { issuer: "rs", subject: "rs", audience: ISSUER });
        assert.equal(protectedHeader.alg, "ES256");
        assert.equal(protectedHeader.kid, "k1");
        assert.equal(payload.aud, ISSUER);
        assert.ok(payload.exp! - payload.iat! <= 60);
        jtis.add(payload.jti);
      }
      assert.equal(jtis.size, 2);
    });

    it("private_key_jwt with a KeyObject/CryptoKey, an explicit alg and audience", async () => {
      const { privateKey, publicKey } = await generateKeyPair("PS256");
      await introspector({ clientSecret: undefined, clientAuthMethod: "private_key_jwt", privateKey, signingAlg: "PS256", assertionAudience: endpoint }).introspect(TOKEN);
      await jwtVerify(seen[0]!.form.get("client_assertion")!, publicKey, { audience: endpoint, algorithms: ["PS256"] });
    });

    it("a key that cannot sign is a misconfiguration", async () => {
      const { privateKey } = await generateKeyPair("ES256");
      await refusedWith(
        introspector({ clientSecret: undefined, privateKey, signingAlg: "RS256" }).introspect(TOKEN),
        "ERR_AUTH_MISCONFIGURED",
        /could not sign/,
      );
      assert.equal(seen.length, 0);
    });
  });

  describe("options", () => {
    const bad: Array<[string, Partial<IntrospectorOptions>, RegExp]> = [
      ["no client secret", { clientSecret: undefined }, /clientSecret must be a non-empty string/],
      ["an empty client id", { clientId: "" }, /clientId/],
      ["a secret and a key", { privateKey: { kty: "EC", crv: "P-256", x: "x", y: "y", d: "d" } }, /clientSecret is not used with private_key_jwt/],
      ["a key with client_secret_basic", { clientAuthMethod: "client_secret_basic", privateKey: { kty: "EC", crv: "P-256", x: "x", y: "y", d: "d" } }, /privateKey is not used/],
      ["a public JWK", { clientSecret: undefined, privateKey: { kty: "EC", crv: "P-256", x: "x", y: "y" } }, /no "d"/],
      ["a symmetric alg", { clientSecret: undefined, privateKey: { kty: "oct", k: "abc", d: "x" }, signingAlg: "HS256" }, /signingAlg must be one of/],
      ["an unknown method", { clientAuthMethod: "client_secret_jwt" as never }, /clientAuthMethod/],
      ["an endpoint that is not a URL", { endpoint: "/introspect" }, /absolute URL/],
      ["an endpoint that is not http(s)", { endpoint: "ftp://op.test/introspect" }, /http\(s\)/],
      ["credentials in the endpoint", { endpoint: "https://rs:pw@op.test/introspect" }, /credentials/],
      ["a negative cacheTtl", { cacheTtl: -1 }, /cacheTtl/],
      ["a zero timeout", { timeout: 0 }, /timeout must be positive/],
      ["a zero maxTokenLength", { maxTokenLength: 0 }, /maxTokenLength must be positive/],
      ["a zero maxConcurrent", { maxConcurrent: 0 }, /maxConcurrent must be positive/],
    ];
    for (const [name, options, message] of bad) {
      it(`refuses ${name} with a TypeError naming the option`, () => {
        assert.throws(() => introspector(options), (error: unknown) => error instanceof TypeError && message.test(error.message));
      });
    }
  });
});
