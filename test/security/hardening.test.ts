/**
 * Hardening against a hostile client or a hostile endpoint: log lines a token
 * cannot forge, discovery that keeps an https issuer's keys off plain http,
 * JWKS and discovery bodies cut off while they stream, and one logout replay
 * store per app. Real keys, real servers on 127.0.0.1, a real IOServer and a
 * real Socket.IO client; every wait bounded.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLocalJWKSet, errors, jwtVerify } from "jose";
import { BACKCHANNEL_LOGOUT_EVENT, MemoryReplayStore, OidcAuthError, verifyOidcToken, type OidcConfigInput } from "../../src/index.js";
import { jwksUriOfDocument } from "../../src/keys/discovery.js";
import { oidcLog } from "../../src/util/log.js";
import { explain } from "../../src/verify/explain.js";
import type { OidcIssuerConfig } from "../../src/types.js";
import { outcome, startApp, type LogLine, type TestApp } from "../helpers/app.js";
import { b64url, makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { waitFor } from "../helpers/wait.js";
import { startLogoutApp, type LogoutApp } from "../helpers/logoutApp.js";

const now = () => Math.floor(Date.now() / 1000);
const TIMEOUT = 8_000;

// --- logs ------------------------------------------------------------------

/** What a hostile token tries to write as a log line of its own. */
const FAKE_LINE = "[fake] admin logged in";
const INJECTED = `\n${FAKE_LINE}`;
/** Longest log line accepted: the attack made lines of over 12,000 characters. */
const MAX_LINE = 1_000;

/** A compact JWS with any header and claims and a signature that is not one: every check here runs before the signature's. */
function forged(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.${b64url("not a signature")}`;
}

/**
 * Every line is one line (no raw line break of any kind), bounded, and the
 * injected text only ever appears escaped (`\n` as two characters) inside a
 * quoted string, never where it could start a line of its own.
 */
function assertSafeLines(lines: readonly LogLine[]): void {
  for (const { text } of lines) {
    const excerpt = JSON.stringify(text.slice(0, 300));
    // eslint-disable-next-line no-control-regex -- looking for raw control characters in log lines is the test
    assert.doesNotMatch(text, /[\r\n\u000b\u000c\u0085\u2028\u2029]/, `a raw line break in the log line ${excerpt}`);
    assert.ok(text.length <= MAX_LINE, `a log line of ${text.length} characters: ${excerpt}`);
    for (let at = text.indexOf(FAKE_LINE); at !== -1; at = text.indexOf(FAKE_LINE, at + 1)) {
      assert.equal(text.slice(at - 2, at), "\\n", `the injected text is not escaped in ${excerpt}`);
      const quotes = text.slice(0, at).match(/(?<!\\)"/g)?.length ?? 0;
      assert.equal(quotes % 2, 1, `the injected text is not inside a quoted string in ${excerpt}`);
    }
  }
}

describe("logs cannot be forged by a token", () => {
  const ISSUER = "https://idp.hardening-logs.test";
  const AUDIENCE = "logs-api";
  const CLIENT = "logs-client";
  let key: SigningKey;
  let jwks: JwksServer;
  let app: TestApp;
  let logoutApp: LogoutApp;

  const accessClaims = () => ({ iss: ISSUER, aud: AUDIENCE, sub: "mallory", iat: now(), exp: now() + 300 });
  const logoutClaims = () => ({ iss: ISSUER, aud: CLIENT, sub: "victim", iat: now(), jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } });

  /**
   * The hostile tokens, each refused before any signature check: a `crit`
   * member name (jose quotes it in its error message) and a `kid`, each a
   * line break, a fake log line and 9,000 more characters; an untrusted `iss`
   * doing the same.
   */
  function hostileTokens(claims: () => Record<string, unknown>, typ: string): Array<[string, string]> {
    const padding = (c: string) => c.repeat(9_000);
    return [
      ["crit", forged({ alg: "RS256", kid: key.kid, typ, crit: [`x${INJECTED}${padding("A")}`] }, claims())],
      ["kid", forged({ alg: "RS256", kid: `k${INJECTED}${padding("B")}`, typ }, claims())],
      ["iss", forged({ alg: "RS256", kid: key.kid, typ }, { ...claims(), iss: `https://evil.test/${INJECTED}${padding("C")}` })],
    ];
  }

  before(async () => {
    key = await makeKey("RS256");
    jwks = await startJwksServer([key.jwk]);
    app = await startApp({ config: { issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.jwksUri } });
    logoutApp = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri } });
  });
  after(async () => {
    await app?.close();
    await logoutApp?.close();
    await jwks?.close();
  });

  it("explain(): a jose error whose message holds a line break is quoted, escaped and shortened, on every branch", async () => {
    const issuer = { issuer: ISSUER, clockTolerance: 5 } as unknown as OidcIssuerConfig;
    const context = { issuer, audiences: [AUDIENCE], maxAge: undefined, maxAgeName: "maxTokenAge", kid: `k${INJECTED}` };
    // A real jose refusal: the crit member name comes back inside jose's message.
    const token = forged({ alg: "RS256", kid: key.kid, crit: [`x${INJECTED}${"A".repeat(9_000)}`] }, accessClaims());
    const fromJose = await jwtVerify(token, createLocalJWKSet({ keys: [key.jwk] })).then(
      () => assert.fail("jose accepted the token"),
      (error: unknown) => error,
    );
    assert.ok(fromJose instanceof errors.JOSEError);
    assert.ok(fromJose.message.includes(INJECTED), "jose's own message carries the raw line break");
    const failures: unknown[] = [
      fromJose,
      new errors.JWTInvalid(`bad${INJECTED}`),
      new errors.JWTClaimValidationFailed(`odd${INJECTED}`, {}, `claim${INJECTED}`, `reason${INJECTED}`),
      Object.assign(new Error(`other${INJECTED}`), { code: `ERR_FAKE${INJECTED}` }),
      `a thrown string${INJECTED}`,
    ];
    for (const failure of failures) {
      const sentence = explain(failure, context);
      assertSafeLines([{ level: 4, text: sentence }]);
      assert.ok(sentence.length <= 300, `${sentence.length} characters: ${sentence}`);
      assert.ok(sentence.includes(`\\n${FAKE_LINE}`), `the escaped text is kept for the reader: ${sentence}`);
    }
    assert.match(explain(fromJose, context), /^ERR_JOSE_NOT_SUPPORTED: "Extension Header Parameter \\"x\\n\[fake\] admin logged inA+\.\.\.$/);
  });

  it("over HTTP (Authorization: Bearer): every log line stays one bounded line", async () => {
    const before = app.logs.length;
    for (const [field, token] of hostileTokens(accessClaims, "JWT")) {
      const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(TIMEOUT) });
      assert.equal(response.status, 401, `${field}: ${await response.text()}`);
    }
    const lines = app.logs.slice(before);
    assert.ok(lines.some((l) => /ERR_AUTH_TOKEN_INVALID: ERR_JOSE_NOT_SUPPORTED: "Extension Header Parameter/.test(l.text)), `the crit refusal is logged: ${JSON.stringify(lines).slice(0, 500)}`);
    assert.equal(lines.filter((l) => l.text.includes("ERR_AUTH_TOKEN_INVALID")).length, 3, "one line per refusal");
    assertSafeLines(lines);
  });

  it("over the Socket.IO handshake (auth.token): every log line stays one bounded line", async () => {
    const before = app.logs.length;
    for (const [field, token] of hostileTokens(accessClaims, "JWT")) {
      const socket = app.connect("chat", { auth: { token } });
      try {
        const result = await outcome(socket, TIMEOUT);
        assert.equal(result.connected, false, `${field}: the handshake was accepted`);
        if (!result.connected) assert.equal(result.message, "ERR_AUTH_TOKEN_INVALID");
      } finally {
        socket.disconnect();
      }
    }
    const lines = app.logs.slice(before);
    assert.ok(lines.some((l) => /socket \/chat .*ERR_AUTH_TOKEN_INVALID: ERR_JOSE_NOT_SUPPORTED: "Extension Header Parameter/.test(l.text)), `the crit refusal is logged: ${JSON.stringify(lines).slice(0, 500)}`);
    assertSafeLines(lines);
  });

  it("as a logout_token on the back-channel logout route (before any signature check): every log line stays one bounded line", async () => {
    const before = logoutApp.logs.length;
    const tokens = [...hostileTokens(logoutClaims, "logout+jwt"), ["typ", forged({ alg: "RS256", kid: key.kid, typ: `logout+jwt${INJECTED}` }, logoutClaims())] as [string, string]];
    for (const [field, token] of tokens) {
      const response = await logoutApp.logout(token);
      assert.equal(response.status, 400, `${field}: ${response.text}`);
    }
    const lines = logoutApp.logs.slice(before);
    assert.ok(lines.some((l) => l.level === 4 && /logout token refused: ERR_JOSE_NOT_SUPPORTED: "Extension Header Parameter/.test(l.text)), `the crit refusal is logged: ${JSON.stringify(lines).slice(0, 500)}`);
    assert.equal(lines.filter((l) => l.text.includes("logout token refused")).length, tokens.length, "one line per refusal");
    assertSafeLines(lines);
  });

  it("the back-channel logout route: a request's content type is quoted, a C1 line break (NEL) included", async () => {
    const before = logoutApp.logs.length;
    const response = await logoutApp.post("logout_token=x", { "content-type": `text/plain; x=${"\u0085".repeat(3)}${"D".repeat(2_000)}` });
    assert.equal(response.status, 400);
    assertSafeLines(logoutApp.logs.slice(before));
    assert.ok(logoutApp.logs.slice(before).some((l) => /refused the request: content type "text\/plain/.test(l.text)));
  });

  it("the last guard: whatever text reaches the package's logger, the app's log gets one line of at most 2,000 characters", () => {
    const lines: LogLine[] = [];
    const appHandle = { log: (level: number, text: string) => void lines.push({ level, text }) };
    oidcLog(appHandle, 4, `left unquoted${INJECTED}\r\u0085\u2028\u202e${"E".repeat(20_000)}`);
    assert.equal(lines.length, 1);
    const [line] = lines;
    assert.ok(line !== undefined && line.text.length <= 2_000, `${line?.text.length} characters`);
    assert.ok(line.text.startsWith("[ioserver-oidc] left unquoted\\u000a[fake] admin logged in\\u000d\\u0085\\u2028\\u202eEEE"), line.text.slice(0, 120));
    assert.ok(line.text.endsWith("E..."));
    assert.doesNotMatch(line.text, /[\r\n\u0085\u2028\u2029]/);
  });
});

// --- discovery: https issuer, http jwks_uri ----------------------------------

describe("discovery: an https issuer's jwks_uri is https, or http on a loopback host", () => {
  const URL_ = "https://idp.example.com/.well-known/openid-configuration";
  const ISSUER = "https://idp.example.com";
  const documentWith = (jwks_uri: unknown, issuer: unknown = ISSUER) => ({ issuer, jwks_uri });

  it("accepts https, and http on localhost, 127.0.0.0/8 and [::1] (development)", () => {
    for (const uri of [
      "https://idp.example.com/jwks",
      "https://keys.elsewhere.test/jwks",
      "http://localhost:8080/jwks",
      "http://LOCALHOST/jwks",
      "http://127.0.0.1:9000/jwks",
      "http://127.255.3.4/jwks",
      "http://127.1/jwks",
      "http://[::1]:8443/jwks",
      "http://[0:0:0:0:0:0:0:1]/jwks",
    ]) {
      assert.equal(typeof jwksUriOfDocument(documentWith(uri), URL_, ISSUER), "string", uri);
    }
  });

  it("refuses http on any other host for an https issuer", () => {
    for (const uri of [
      "http://idp.example.com/jwks",
      "http://10.0.0.1/jwks",
      "http://128.0.0.1/jwks",
      "http://0.0.0.0/jwks",
      "http://localhost.evil.test/jwks",
      "http://127.0.0.1.evil.test/jwks",
      "http://localhost./jwks",
      "http://[::2]/jwks",
      // Loopback in fact, but not one of the three spellings allowed: refused (fail closed).
      "http://[::ffff:127.0.0.1]/jwks",
    ]) {
      assert.throws(() => jwksUriOfDocument(documentWith(uri), URL_, ISSUER), /jwks_uri .* is http: for an https issuer \(only a loopback host may be\)/, uri);
    }
  });

  it("an http issuer may name an http jwks_uri (its keys are on plain http anyway)", () => {
    const issuer = "http://idp.internal.test";
    assert.equal(jwksUriOfDocument(documentWith("http://keys.internal.test/jwks", issuer), `${issuer}/.well-known/openid-configuration`, issuer), "http://keys.internal.test/jwks");
  });

  it("still refuses a document naming another issuer, and a jwks_uri that is not an http(s) URL", () => {
    assert.throws(() => jwksUriOfDocument(documentWith("https://idp.example.com/jwks", "https://other.test"), URL_, ISSUER), /names issuer "https:\/\/other.test"/);
    for (const uri of [undefined, 42, "", "ftp://idp.example.com/jwks", "/jwks", "javascript:alert(1)", "not a url"]) {
      assert.throws(() => jwksUriOfDocument(documentWith(uri), URL_, ISSUER), /has no http\(s\) jwks_uri/, String(uri));
    }
  });

  const openssl = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;

  it(
    "end to end over real TLS: the key set of an https issuer whose discovery names a non-loopback http jwks_uri is unavailable; http on 127.0.0.1 and https are used",
    { skip: openssl ? false : "openssl is needed to make the test certificate" },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "ioserver-oidc-tls-"));
      let https: HttpsServer | undefined;
      let jwks: JwksServer | undefined;
      try {
        // A throwaway self-signed certificate for 127.0.0.1, trusted only by the child process below.
        const made = spawnSync(
          "openssl",
          ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
          { stdio: "ignore", timeout: 30_000 },
        );
        assert.equal(made.status, 0, "openssl made the certificate");
        const key = await makeKey("ES256");
        jwks = await startJwksServer([key.jwk]);
        const jwksServer = jwks;
        let origin = "";
        const discoveryHits: Record<string, number> = {};
        const server = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (req, res) => {
          const path = req.url ?? "/";
          discoveryHits[path] = (discoveryHits[path] ?? 0) + 1;
          const jwksUris: Record<string, string> = {
            "/plain": "http://idp.example.com/jwks",
            "/loopback": jwksServer.jwksUri,
            "/secure": `${origin}/jwks`,
          };
          const match = /^(\/[a-z]+)\/\.well-known\/openid-configuration$/.exec(path);
          const json = (body: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
          if (path === "/jwks") return json({ keys: [key.jwk] });
          if (match !== null && jwksUris[match[1]!] !== undefined) return json({ issuer: `${origin}${match[1]}`, jwks_uri: jwksUris[match[1]!] });
          res.writeHead(404).end();
        });
        https = server;
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

        const cases = await Promise.all(
          ["/plain", "/loopback", "/secure"].map(async (path) => {
            const issuer = `${origin}${path}`;
            return { issuer, audience: "tls-api", token: await sign(key, { iss: issuer, aud: "tls-api", sub: `user${path}`, iat: now(), exp: now() + 300 }) };
          }),
        );
        const results = await runInChild(join(dir, "cert.pem"), cases);
        assert.equal(results.length, 3, JSON.stringify(results));
        const [plain, loopback, secure] = results;
        assert.equal(plain?.ok, false, JSON.stringify(plain));
        assert.equal(plain?.code, "ERR_AUTH_UNAVAILABLE");
        assert.match(plain?.reason ?? "", /discovery of .*\/plain could not be obtained: .*jwks_uri "http:\/\/idp\.example\.com\/jwks" that is http: for an https issuer/);
        assert.deepEqual(loopback, { ok: true, sub: "user/loopback" }, "http on 127.0.0.1 is the development exception");
        assert.deepEqual(secure, { ok: true, sub: "user/secure" });
        assert.equal(discoveryHits["/plain/.well-known/openid-configuration"], 1, "the document was served over TLS and read");
      } finally {
        if (https !== undefined) {
          https.closeAllConnections();
          await new Promise<void>((resolve) => https?.close(() => resolve()));
        }
        await jwks?.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

interface ChildCase {
  issuer: string;
  audience: string;
  token: string;
}
interface ChildResult {
  ok: boolean;
  sub?: string;
  code?: string;
  reason?: string;
}

/** Verify tokens in a child process that trusts `certPath` (Node reads NODE_EXTRA_CA_CERTS at start-up only). */
function runInChild(certPath: string, cases: ChildCase[]): Promise<ChildResult[]> {
  const script = join(import.meta.dirname, "verifyInChild.ts");
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", script],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: certPath, CASES: JSON.stringify(cases) }, timeout: 60_000, killSignal: "SIGKILL", maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error !== null) return reject(new Error(`the child failed: ${error.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as ChildResult[]);
        } catch {
          reject(new Error(`the child printed no JSON: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

// --- size limits while streaming --------------------------------------------

/** A server that answers every request with a body that never ends, or with a `Content-Length` it never sends. */
interface HostileServer {
  url: string;
  /** Requests received. */
  readonly requests: number;
  /** Bytes of body written so far. */
  readonly bytesSent: number;
  /** Connections a request came on that are still open. */
  readonly answering: number;
  /** TCP connections open now, idle ones included. */
  readonly open: number;
  close(): Promise<void>;
}

async function startHostileServer(mode: "endless" | "lying-length"): Promise<HostileServer> {
  const state = { requests: 0, bytesSent: 0 };
  const sockets = new Set<Socket>();
  const answering = new Set<Socket>();
  const chunk = Buffer.from(`{"kty":"oct","k":"${"A".repeat(16 * 1024)}"},`);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    answering.add(req.socket);
    req.socket.once("close", () => answering.delete(req.socket));
    if (mode === "lying-length") {
      // Claims 64 MiB, sends a few bytes, then nothing: a client trusting the header would wait for the rest.
      res.writeHead(200, { "content-type": "application/json", "content-length": String(64 * 1024 * 1024) });
      res.write('{"keys":[');
      state.bytesSent += 9;
      return;
    }
    // Chunked, no Content-Length, never ending: written as fast as the client reads it.
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"keys":[');
    const pump = () => {
      while (!res.destroyed) {
        state.bytesSent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
    };
    req.socket.once("close", () => res.off("drain", pump));
    pump();
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return state.requests;
    },
    get bytesSent() {
      return state.bytesSent;
    },
    get answering() {
      return answering.size;
    },
    get open() {
      return sockets.size;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("JWKS and discovery bodies are size-limited while they stream", () => {
  const AUDIENCE = "limits-api";
  /** Far longer than a failing fetch may take: the limit, not the timeout, must end it. */
  const JWKS_TIMEOUT = 15_000;
  const FAST = 3_000;
  let key: SigningKey;
  before(async () => {
    key = await makeKey("RS256");
  });

  async function unavailable(token: string, config: OidcConfigInput): Promise<{ error: OidcAuthError; ms: number }> {
    const started = Date.now();
    const error = await verifyOidcToken(token, config).then(
      () => assert.fail("accepted without a key set"),
      (e: unknown) => e,
    );
    const ms = Date.now() - started;
    assert.ok(error instanceof OidcAuthError, String(error));
    assert.equal(error.code, "ERR_AUTH_UNAVAILABLE", error.reason);
    assert.equal(error.statusCode, 503);
    return { error, ms };
  }

  for (const [what, mode, reason] of [
    ["an endless chunked JWKS body", "endless", /JWKS .* could not be obtained: the key set is over the 524288 byte limit \(\d+ bytes received\)/],
    ["a JWKS Content-Length of 64 MiB (a lie)", "lying-length", /JWKS .* could not be obtained: the key set of 67108864 bytes \(Content-Length\) is over the 524288 byte limit/],
  ] as const) {
    it(`${what}: the fetch stops at the limit, the key set is unavailable (503), the server sees the connection closed`, async () => {
      const hostile = await startHostileServer(mode);
      try {
        const issuer = "https://idp.limits.test";
        const config = { issuer, audience: AUDIENCE, jwksUri: `${hostile.url}/jwks`, jwksTimeout: JWKS_TIMEOUT };
        const { error, ms } = await unavailable(await sign(key, { iss: issuer, aud: AUDIENCE, sub: "u", exp: now() + 300 }), config);
        assert.match(error.reason, reason);
        assert.ok(ms < FAST, `failed after ${ms} ms, not at once`);
        await waitFor(() => hostile.answering === 0, 2_000);
        assert.equal(hostile.requests, 1);
        assert.ok(hostile.bytesSent < 32 * 1024 * 1024, `${hostile.bytesSent} bytes were sent before the client gave up`);
      } finally {
        await hostile.close();
      }
    });
  }

  for (const [what, mode, reason] of [
    ["an endless chunked discovery document", "endless", /discovery of .* could not be obtained: the discovery document .* is over the 262144 byte limit \(\d+ bytes received\)/],
    ["a discovery Content-Length of 64 MiB (a lie)", "lying-length", /discovery of .* could not be obtained: the discovery document .* of 67108864 bytes \(Content-Length\) is over the 262144 byte limit/],
  ] as const) {
    it(`${what}: the fetch stops at the limit, the key set is unavailable (503), the server sees the connection closed`, async () => {
      const hostile = await startHostileServer(mode);
      try {
        const issuer = hostile.url;
        const config = { issuer, audience: AUDIENCE, jwksTimeout: JWKS_TIMEOUT };
        const { error, ms } = await unavailable(await sign(key, { iss: issuer, aud: AUDIENCE, sub: "u", exp: now() + 300 }), config);
        assert.match(error.reason, reason);
        assert.ok(ms < FAST, `failed after ${ms} ms, not at once`);
        await waitFor(() => hostile.answering === 0, 2_000);
        assert.equal(hostile.requests, 1, "the first discovery URL failed: the fallback is not tried");
        assert.ok(hostile.bytesSent < 32 * 1024 * 1024, `${hostile.bytesSent} bytes were sent before the client gave up`);
      } finally {
        await hostile.close();
      }
    });
  }

  it("through a real IOServer: an endless JWKS answers 503 with Retry-After on HTTP, and the log says why", async () => {
    const hostile = await startHostileServer("endless");
    const issuer = "https://idp.limits-app.test";
    const app = await startApp({ config: { issuer, audience: AUDIENCE, jwksUri: `${hostile.url}/jwks`, jwksTimeout: JWKS_TIMEOUT } });
    try {
      const token = await sign(key, { iss: issuer, aud: AUDIENCE, sub: "u", exp: now() + 300 });
      const started = Date.now();
      const response = await fetch(`${app.url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(TIMEOUT) });
      assert.equal(response.status, 503, await response.text());
      assert.equal(response.headers.get("retry-after"), "5");
      assert.ok(Date.now() - started < FAST, "answered at once");
      await waitFor(() => app.logs.some((l) => /over the 524288 byte limit/.test(l.text)), 5_000);
      await waitFor(() => hostile.answering === 0, 2_000);
      // Node's fetch opens one spare connection after a response it gave up on; it is idle and closed
      // on its keep-alive timeout: within a bounded time, nothing is left open.
      await waitFor(() => hostile.open === 0, 10_000);
    } finally {
      await app.close();
      await hostile.close();
    }
  });
});

// --- one replay store per app ------------------------------------------------

describe("one in-memory logout replay store per app", () => {
  const ISSUER = "https://idp.hardening-replay.test";
  const CLIENT = "replay-client";
  let key: SigningKey;
  let jwks: JwksServer;
  before(async () => {
    key = await makeKey("ES256");
    jwks = await startJwksServer([key.jwk]);
  });
  after(async () => {
    await jwks?.close();
  });

  const config = () => ({ issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri });
  const logoutToken = () => sign(key, { iss: ISSUER, aud: CLIENT, sub: `user-${randomUUID()}`, iat: now(), jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } });

  it("a logout token accepted on one route is refused as a replay on the app's other logout routes (another controller instance, a handler)", async () => {
    const app = await startLogoutApp({ config: config(), formParser: true });
    try {
      const token = await logoutToken();
      const first = await app.logout(token);
      assert.equal(first.status, 200, first.text);
      for (const path of ["/parsed/backchannel-logout", "/custom/sso/logout", "/oidc/backchannel-logout"]) {
        const replay = await app.logout(token, path);
        assert.equal(replay.status, 400, `${path} accepted a replay`);
        assert.deepEqual(JSON.parse(replay.text), { error: "invalid_request", error_description: "The logout token is invalid" });
      }
      assert.equal(app.logs.filter((l) => l.level === 4 && /jti .* was already received/.test(l.text)).length, 3);
    } finally {
      await app.close();
    }
  });

  it("an explicit replayStore still wins over the app's default", async () => {
    const own = new MemoryReplayStore();
    const app = await startLogoutApp({ config: config(), custom: { replayStore: own } });
    try {
      const token = await logoutToken();
      assert.equal((await app.logout(token)).status, 200, "the controller, on the app's store");
      assert.equal((await app.logout(token, "/custom/sso/logout")).status, 200, "the handler, on its own store");
      assert.equal(own.size, 1);
      assert.equal((await app.logout(token, "/custom/sso/logout")).status, 400);
    } finally {
      await app.close();
    }
  });

  it("two apps in one process keep one default store each", async () => {
    const [one, two] = await Promise.all([startLogoutApp({ config: config() }), startLogoutApp({ config: config() })]);
    try {
      const token = await logoutToken();
      assert.equal((await one.logout(token)).status, 200);
      assert.equal((await two.logout(token)).status, 200);
      assert.equal((await two.logout(token, "/custom/sso/logout")).status, 400);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
