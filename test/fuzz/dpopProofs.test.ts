/**
 * Property-based fuzzing of DPoP proofs (fast-check), everything real: a
 * test issuer minting a token bound to a key generated here, proofs signed
 * with jose by that key (or another), a real IOServer behind
 * `OidcHttpMiddleware`, raw HTTP requests from node:http (so headers can be
 * duplicated), and the proof verifier alone.
 *
 * Every case carries at least one defect (a payload member replaced by a
 * value of any JSON type, a huge or unicode string, or removed; a bad `typ`
 * or `jwk`; a tampered `alg`; another key; base64url noise; a string
 * mutation of a valid proof whose `jti` was already used; two proofs), with
 * random extra members and duplicated headers on top. Properties:
 *
 * - HTTP: never a crash, never a 5xx, never an acceptance: always 401 with
 *   a well-formed `WWW-Authenticate` (known schemes, quoted parameters), the
 *   package's JSON body, and neither the token nor the proof echoed.
 * - the verifier alone (`verifyDpopProof`), with anything as the proof:
 *   only ever rejects, and only with a `DpopProofError` whose log reason is
 *   bounded and does not repeat a long proof.
 *
 * Each property runs a fixed number of cases, bounded in time too (a few
 * seconds each on a 2-core CI machine). FUZZ_SEED=<n> replays a run.
 */
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { Agent, request } from "node:http";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { CompactSign } from "jose";
import { MemoryReplayStore } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { DpopProofError, isDpopProofError } from "../../src/dpop/DpopProofError.js";
import { resolveDpopOptions, type DpopSettings } from "../../src/dpop/dpopOptions.js";
import { createNonceIssuer } from "../../src/dpop/nonceIssuer.js";
import { verifyDpopProof } from "../../src/dpop/verifyDpopProof.js";
import type { ServerBase } from "../helpers/app.js";
import { ath as accessTokenHash, now as nowSeconds, proofKey, type ProofKey } from "../helpers/dpop.js";
import { startDpopApp } from "../helpers/dpopApp.js";
import { watchProcess, type ProcessWatch } from "./properties.js";

const SEED = process.env["FUZZ_SEED"] === undefined || process.env["FUZZ_SEED"] === "" ? undefined : Number(process.env["FUZZ_SEED"]);
/** Cases per property, and the time after which a property stops early (passing with the cases it ran). */
const HTTP_RUNS = 400;
const VERIFIER_RUNS = 1_500;
const TIME_LIMIT_MS = 8_000;
const MAX_AGE = 60;
const TOLERANCE = 5;
/** Generated times stay this far from the edges of the accepted window. */
const MARGIN = 10;

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const base64urlNoise = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...BASE64URL.split("")), minLength: min, maxLength: max });
/**
 * Longer than a proof may be (8 KiB), short enough for Node's 16 KiB limit
 * on a request's headers (beyond it, Node answers 431 before any app code).
 */
const hugeString = fc.integer({ min: 8_200, max: 10_000 }).map((n) => "A".repeat(n));
/** What a request's `DPoP` header(s) may add up to and still reach the app under Node's 16 KiB header limit. */
const MAX_SENT_PROOF = 14_000;
const unicodeString = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom("\u0000", "\u202e", "\u2028", "\ud800", "\udfff", "\ud83d\ude00", "\"", "\\", "\r\n", "é", "Ａ"),
);
/** A value of any JSON type (and a few that JSON has no literal for after a round trip). */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: unicodeString },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1e308, -1e308, 2 ** 53, "", [], {}, [null], { $ne: null }, "GET", "get") },
  { weight: 1, arbitrary: fc.double() },
);
const ABSENT = Symbol("absent");
const replacement = fc.oneof({ weight: 1, arbitrary: fc.constant<unknown>(ABSENT) }, { weight: 6, arbitrary: anyJson });
const extraMembers = fc.dictionary(
  fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "cnf", "nonce", "exp", "nbf", "jkt", "typ")).filter((k) => !["htm", "htu", "iat", "jti", "ath"].includes(k)),
  anyJson,
  { maxKeys: 4 },
);

type StringMutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "replace"; at: number; text: string }
  | { kind: "truncate"; keep: number }
  | { kind: "append"; text: string }
  | { kind: "prepend"; text: string }
  | { kind: "segment"; which: number; noise: string }
  | { kind: "dots"; at: number; count: number };

const stringMutation: fc.Arbitrary<StringMutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 6 }) }),
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), text: fc.oneof(unicodeString, base64urlNoise(1, 4)) }),
  fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), text: fc.oneof(base64urlNoise(1, 20), unicodeString, fc.constantFrom(".", "..", "=", " ", ", x")) }),
  fc.record({ kind: fc.constant("prepend" as const), text: fc.oneof(base64urlNoise(1, 20), unicodeString, fc.constantFrom(".", "DPoP ", " ")) }),
  fc.record({ kind: fc.constant("segment" as const), which: fc.nat({ max: 2 }), noise: base64urlNoise(0, 200) }),
  fc.record({ kind: fc.constant("dots" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 3 }) }),
);

function mutate(proof: string, mutation: StringMutation): string {
  switch (mutation.kind) {
    case "flip": {
      const at = mutation.at % proof.length;
      return proof.slice(0, at) + String.fromCharCode(proof.charCodeAt(at) ^ (1 << mutation.bit)) + proof.slice(at + 1);
    }
    case "replace": {
      const at = mutation.at % proof.length;
      return proof.slice(0, at) + mutation.text + proof.slice(at + 1);
    }
    case "truncate":
      return proof.slice(0, mutation.keep % proof.length);
    case "append":
      return proof + mutation.text;
    case "prepend":
      return mutation.text + proof;
    case "segment": {
      const parts = proof.split(".");
      parts[mutation.which] = mutation.noise;
      return parts.join(".");
    }
    case "dots": {
      const at = mutation.at % proof.length;
      return proof.slice(0, at) + ".".repeat(mutation.count) + proof.slice(at);
    }
  }
}

type Defect =
  | { kind: "claim"; name: "htm" | "htu" | "iat" | "jti" | "ath"; value: unknown }
  | { kind: "typ"; value: unknown }
  | { kind: "jwk"; value: unknown }
  | { kind: "privateJwk" }
  | { kind: "alg"; value: unknown }
  | { kind: "algNone" }
  | { kind: "otherKey"; jwkToo: boolean }
  | { kind: "mutated"; mutation: StringMutation }
  | { kind: "noise"; value: string }
  | { kind: "twoProofs"; second: "same" | "other" }
  | { kind: "replayed" }
  | { kind: "stale"; by: number }
  | { kind: "future"; by: number };

const defect: fc.Arbitrary<Defect> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("claim" as const), name: fc.constantFrom("htm" as const, "htu" as const, "iat" as const, "jti" as const, "ath" as const), value: replacement }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("typ" as const), value: replacement }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("jwk" as const), value: fc.oneof(replacement, fc.record({ kty: fc.constantFrom("EC", "RSA", "OKP", "oct", "x"), crv: anyJson, x: anyJson, y: anyJson }, { requiredKeys: ["kty"] })) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "privateJwk" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("alg" as const), value: fc.oneof(replacement, fc.constantFrom("none", "HS256", "RS256", "ES384", "es256", "EdDSA")) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "algNone" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("otherKey" as const), jwkToo: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("mutated" as const), mutation: stringMutation }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("noise" as const), value: fc.oneof(base64urlNoise(0, 300), fc.tuple(base64urlNoise(0, 80), base64urlNoise(0, 80), base64urlNoise(0, 80)).map((p) => p.join(".")), unicodeString, hugeString) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("twoProofs" as const), second: fc.constantFrom("same" as const, "other" as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "replayed" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("stale" as const), by: fc.integer({ min: MARGIN, max: 10 ** 9 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("future" as const), by: fc.integer({ min: MARGIN, max: 10 ** 9 }) }) },
);

interface FuzzCase {
  defect: Defect;
  extra: Record<string, unknown>;
  extraHeader: Record<string, unknown>;
  /** Send `Authorization` twice (the second one junk or the same). */
  duplicateAuthorization: "no" | "same" | "junk";
  method: "GET" | "POST";
}

const fuzzCase: fc.Arbitrary<FuzzCase> = fc.record({
  defect,
  extra: extraMembers,
  extraHeader: fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => !["alg", "typ", "jwk", "crit", "b64"].includes(k)), anyJson, { maxKeys: 2 }),
  duplicateAuthorization: fc.constantFrom<FuzzCase["duplicateAuthorization"]>("no", "no", "same", "junk"),
  method: fc.constantFrom<FuzzCase["method"]>("GET", "GET", "POST"),
});

// ---------------------------------------------------------------------------
// Building a proof for a case
// ---------------------------------------------------------------------------

interface Keys {
  key: ProofKey;
  other: ProofKey;
  privateJwk: Record<string, unknown>;
}

const encoder = new TextEncoder();
const b64 = (value: string | Uint8Array) => Buffer.from(value).toString("base64url");

/** Whether `value` could pass for the member `name` (such cases get no defect from it). */
function acceptable(name: string, value: unknown, valid: Record<string, unknown>): boolean {
  if (value === ABSENT) return false;
  switch (name) {
    case "htm":
      return value === valid.htm;
    case "htu":
      return typeof value === "string" && /api\/me/i.test(value);
    case "iat":
      return typeof value === "number" && value > nowSeconds() - MAX_AGE - TOLERANCE - MARGIN && value < nowSeconds() + TOLERANCE + MARGIN;
    case "jti":
      return typeof value === "string" && value.length > 0 && value.length <= 256;
    case "ath":
      return value === valid.ath;
    case "typ":
      return typeof value === "string" && /dpop\+jwt\s*$/i.test(value);
    default:
      return false;
  }
}

async function sign(key: ProofKey, header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  return new CompactSign(encoder.encode(JSON.stringify(payload))).setProtectedHeader({ alg: "ES256", ...header }).sign(key.privateKey);
}

/**
 * The proof (or proofs) a case sends, and the `jti` to mark as used first
 * (for string mutations of an otherwise valid proof: even a mutation that
 * changes nothing the verifier reads is then a replay).
 */
async function buildProof(c: FuzzCase, keys: Keys, htu: string, token: string): Promise<{ proof: string | string[]; usedJti?: string }> {
  const jti = randomUUID();
  const valid: Record<string, unknown> = { htm: c.method, htu, iat: nowSeconds(), jti, ath: accessTokenHash(token) };
  const payload: Record<string, unknown> = { ...c.extra, ...valid };
  const header: Record<string, unknown> = { ...c.extraHeader, typ: "dpop+jwt", jwk: keys.key.jwk };
  const { defect: d } = c;
  switch (d.kind) {
    case "claim":
      fc.pre(!acceptable(d.name, d.value, valid));
      if (d.value === ABSENT) delete payload[d.name];
      else payload[d.name] = d.value;
      return { proof: await sign(keys.key, header, payload) };
    case "typ":
      fc.pre(!acceptable("typ", d.value, valid));
      if (d.value === ABSENT) delete header.typ;
      else header.typ = d.value;
      return { proof: await sign(keys.key, header, payload) };
    case "jwk":
      if (d.value === ABSENT) delete header.jwk;
      else header.jwk = d.value;
      return { proof: await sign(keys.key, header, payload) };
    case "privateJwk":
      header.jwk = keys.privateJwk;
      return { proof: await sign(keys.key, header, payload) };
    case "alg": {
      // The protected header is signed: a changed alg breaks the signature, or names an algorithm refused first.
      fc.pre(d.value !== "ES256");
      const proof = await sign(keys.key, header, payload);
      const parts = proof.split(".");
      const tampered = { ...(JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")) as Record<string, unknown>) };
      if (d.value === ABSENT) delete tampered.alg;
      else tampered.alg = d.value;
      return { proof: `${b64(JSON.stringify(tampered))}.${parts[1]}.${parts[2]}` };
    }
    case "algNone":
      return { proof: `${b64(JSON.stringify({ ...header, alg: "none" }))}.${b64(JSON.stringify(payload))}.` };
    case "otherKey":
      // Signed by another key: with that key's jwk it is a good proof of the wrong key; with the bound key's jwk the signature fails.
      return { proof: await sign(keys.other, d.jwkToo ? { ...header, jwk: keys.other.jwk } : header, payload) };
    case "mutated": {
      const proof = await sign(keys.key, header, payload);
      const mutated = mutate(proof, d.mutation);
      fc.pre(mutated !== proof);
      return { proof: mutated, usedJti: jti };
    }
    case "noise":
      return { proof: d.value };
    case "twoProofs": {
      const first = await sign(keys.key, header, payload);
      const second = d.second === "same" ? first : await sign(keys.key, header, { ...payload, jti: randomUUID() });
      return { proof: [first, second] };
    }
    case "replayed":
      return { proof: await sign(keys.key, header, payload), usedJti: jti };
    case "stale":
      payload.iat = nowSeconds() - MAX_AGE - TOLERANCE - d.by;
      return { proof: await sign(keys.key, header, payload) };
    case "future":
      payload.iat = nowSeconds() + TOLERANCE + d.by;
      return { proof: await sign(keys.key, header, payload) };
  }
}

// ---------------------------------------------------------------------------
// Checking a response
// ---------------------------------------------------------------------------

const SCHEMES = new Set(["Bearer", "DPoP"]);
const PARAMS = new Set(["realm", "error", "error_description", "algs", "scope"]);

/**
 * Parse a `WWW-Authenticate` value: challenges `Scheme` or `Scheme p="v", …`,
 * comma-separated; every parameter a known name and a quoted string of
 * visible ASCII (RFC 9110 section 11.6.1). Throws with the reason otherwise.
 */
function parseChallenges(value: string): Array<{ scheme: string; params: Record<string, string> }> {
  const challenges: Array<{ scheme: string; params: Record<string, string> }> = [];
  let rest = value;
  for (;;) {
    const scheme = /^([A-Za-z]+)/.exec(rest);
    if (scheme === null || !SCHEMES.has(scheme[1]!)) throw new Error(`no known scheme at ${JSON.stringify(rest.slice(0, 40))}`);
    const current = { scheme: scheme[1]!, params: {} as Record<string, string> };
    challenges.push(current);
    rest = rest.slice(scheme[1]!.length);
    let first = true;
    for (;;) {
      const param = new RegExp(`^${first ? " " : ", "}([a-z_]+)="((?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e])*)"`).exec(rest);
      if (param === null) break;
      if (!PARAMS.has(param[1]!)) throw new Error(`unknown parameter ${param[1]}`);
      current.params[param[1]!] = param[2]!;
      rest = rest.slice(param[0].length);
      first = false;
    }
    if (rest === "") return challenges;
    if (!rest.startsWith(", ")) throw new Error(`unexpected text ${JSON.stringify(rest.slice(0, 40))}`);
    rest = rest.slice(2);
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A connection per request: an idle keep-alive connection the server closes
 * just as it is reused would show up as a hang-up that says nothing of the
 * proof; on a fresh connection a hang-up is the server's doing.
 */
const agent = new Agent({ keepAlive: false, maxSockets: 4 });

/** One request with raw headers (an array value is sent as repeated header lines), bounded to 10 s. */
function send(url: string, method: string, headers: Record<string, string | string[]>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** Proof pieces long enough that finding them in a response means they were echoed. */
function echoPieces(proof: string | string[], token: string): string[] {
  const pieces = [token, ...token.split(".").filter((s) => s.length >= 24)];
  for (const each of Array.isArray(proof) ? proof : [proof]) {
    if (each.length >= 24) pieces.push(each);
    for (const part of each.split(".")) if (part.length >= 24) pieces.push(part.slice(0, 24));
  }
  return pieces;
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

let issuer: TestIssuer;
let keys: Keys;
let token: string;
let watch: ProcessWatch;

before(
  async () => {
    watch = watchProcess();
    issuer = await createTestIssuer();
    const key = await proofKey();
    const other = await proofKey();
    // The proof key's own private JWK (its `d` included): the public members match, only the private ones are wrong.
    keys = { key, other, privateJwk: { ...key.privateJwk } };
    token = await issuer.mint({ sub: "fuzz", cnf: { jkt: key.jkt } });
  },
  { timeout: 30_000 },
);
after(async () => {
  watch?.stop();
  agent.destroy();
  await issuer?.close();
});

const params = (numRuns: number) => ({ numRuns, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false, ...(SEED === undefined ? {} : { seed: SEED }) });

describe("fuzz: DPoP proofs on HTTP", () => {
  let app: ServerBase;
  const replayStore = new MemoryReplayStore();
  const used = (jti: string) => replayStore.claim(createHash("sha256").update(`${keys.key.jkt}.${jti}`, "utf8").digest("base64url"), 120_000);

  before(async () => {
    app = await startDpopApp({ ...issuer.config, realm: "fuzz", dpop: { maxAge: MAX_AGE, clockTolerance: TOLERANCE, replayStore } });
  });
  after(async () => {
    await app?.close();
  });

  it("a valid proof is accepted (the harness itself works)", async () => {
    const htu = `${app.url}/api/me`;
    const jti = randomUUID();
    const proof = await sign(keys.key, { typ: "dpop+jwt", jwk: keys.key.jwk }, { htm: "GET", htu, iat: nowSeconds(), jti, ath: accessTokenHash(token) });
    const res = await send(htu, "GET", { authorization: `DPoP ${token}`, dpop: proof });
    assert.equal(res.status, 200, res.body);
  });

  it("defective proofs: never accepted, never a 5xx; always 401 with a well-formed challenge and nothing echoed", { timeout: 120_000 }, async (t) => {
    const htu = `${app.url}/api/me`;
    const codes: Record<string, number> = {};
    let ran = 0;
    const property = fc.asyncProperty(fuzzCase, async (c) => {
      const { proof, usedJti } = await buildProof(c, keys, htu, token);
      fc.pre((Array.isArray(proof) ? proof.join("") : proof).length <= MAX_SENT_PROOF);
      if (usedJti !== undefined) assert.equal(await used(usedJti), true);
      const headers: Record<string, string | string[]> = { dpop: proof };
      headers.authorization = c.duplicateAuthorization === "no" ? `DPoP ${token}` : [`DPoP ${token}`, c.duplicateAuthorization === "same" ? `DPoP ${token}` : "Bearer junk.junk.junk"];
      let res: RawResponse;
      try {
        res = await send(htu, c.method, headers);
      } catch (error) {
        // A header value the HTTP client itself refuses to send (control characters): nothing reached the server.
        if (error instanceof TypeError && /header/i.test(error.message)) return;
        throw error;
      }
      ran++;
      assert.equal(res.status, 401, `status ${res.status}: ${res.body.slice(0, 300)}`);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      codes[String(body.code)] = (codes[String(body.code)] ?? 0) + 1;
      assert.deepEqual(Object.keys(body).sort(), ["code", "error", "message", "statusCode"]);
      assert.ok(["ERR_AUTH_DPOP_INVALID", "ERR_AUTH_TOKEN_INVALID"].includes(String(body.code)), `code ${String(body.code)}`);
      const challenge = res.headers["www-authenticate"];
      assert.equal(typeof challenge, "string", "one WWW-Authenticate header");
      const parsed = parseChallenges(challenge as string);
      const dpop = parsed.find((each) => each.scheme === "DPoP");
      assert.ok(dpop !== undefined, `a DPoP challenge: ${challenge as string}`);
      assert.ok(["invalid_dpop_proof", "invalid_token"].includes(dpop.params.error ?? ""), challenge as string);
      assert.equal(dpop.params.realm, "fuzz");
      const visible = `${challenge as string}\n${res.body}\n${String(res.headers["dpop-nonce"] ?? "")}`;
      for (const piece of echoPieces(proof, token)) assert.ok(!visible.includes(piece), `the response echoes ${piece.slice(0, 30)}…`);
    });
    const report = await fc.check(property, params(HTTP_RUNS));
    t.diagnostic(`${report.numRuns} cases (${report.numSkips} skipped, ${ran} sent), seed ${report.seed}${report.interrupted ? ", stopped at the time limit" : ""}; codes ${JSON.stringify(codes)}`);
    assert.ok(!report.failed, `${fc.defaultReportMessage(report) ?? "failed"}\n${String(report.errorInstance)}`);
    assert.ok(ran >= 100, `only ${ran} cases reached the server`);
  });

  it("the app still answers a valid proof afterwards", async () => {
    const htu = `${app.url}/api/me`;
    const proof = await sign(keys.key, { typ: "dpop+jwt", jwk: keys.key.jwk }, { htm: "GET", htu, iat: nowSeconds(), jti: randomUUID(), ath: accessTokenHash(token) });
    const res = await send(htu, "GET", { authorization: `DPoP ${token}`, dpop: proof });
    assert.equal(res.status, 200, res.body);
  });
});

describe("fuzz: verifyDpopProof alone", () => {
  const HTU = "https://api.fuzz.test/api/me";
  let plain: DpopSettings;
  let withNonces: DpopSettings;
  let replayStore: MemoryReplayStore;

  before(() => {
    replayStore = new MemoryReplayStore();
    plain = resolveDpopOptions({ maxAgeSeconds: MAX_AGE, clockToleranceSeconds: TOLERANCE, replayStore });
    withNonces = resolveDpopOptions({ maxAgeSeconds: MAX_AGE, clockToleranceSeconds: TOLERANCE, replayStore, nonces: createNonceIssuer({ secret: "a nonce secret for the fuzz test, 32+ bytes" }) });
  });

  /** Anything at all as the proof, or a defective proof built like the HTTP cases. */
  const input = fc.oneof(
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }).map((value) => ({ value, usedJti: undefined as string | undefined })) },
    { weight: 1, arbitrary: fc.oneof(base64urlNoise(0, 400), unicodeString, hugeString, fc.integer({ min: 8_200, max: 200_000 }).map((n) => `${"e".repeat(n)}.e.e`)).map((value) => ({ value: value, usedJti: undefined as string | undefined })) },
    { weight: 6, arbitrary: fuzzCase.map((c) => ({ value: c, usedJti: "build" })) },
  );

  it("rejects every defective or malformed proof, only ever with a DpopProofError and a bounded log reason", { timeout: 120_000 }, async (t) => {
    const errors: Record<string, number> = {};
    const property = fc.asyncProperty(input, fc.boolean(), async ({ value, usedJti }, nonces) => {
      let proof: unknown = value;
      let method = "GET";
      if (usedJti === "build") {
        const c = value as FuzzCase;
        method = c.method;
        const built = await buildProof(c, keys, HTU, token);
        proof = built.proof;
        if (built.usedJti !== undefined) await replayStore.claim(createHash("sha256").update(`${keys.key.jkt}.${built.usedJti}`, "utf8").digest("base64url"), 120_000);
      }
      let outcome: { ok: true } | { ok: false; error: unknown };
      try {
        await verifyDpopProof(proof, { method, url: HTU, accessToken: token, expectedJkt: keys.key.jkt }, nonces ? withNonces : plain);
        outcome = { ok: true };
      } catch (error) {
        outcome = { ok: false, error };
      }
      if (outcome.ok) throw new Error(`accepted: ${JSON.stringify(proof)?.slice(0, 200)}`);
      const { error } = outcome;
      assert.ok(error instanceof DpopProofError && isDpopProofError(error), `rejected with ${String(error)}`);
      errors[error.error] = (errors[error.error] ?? 0) + 1;
      assert.equal(typeof error.reason, "string");
      assert.ok(error.reason.length <= 600, `a log reason of ${error.reason.length} characters`);
      if (typeof proof === "string" && proof.length > 200) assert.ok(!error.reason.includes(proof), "the reason repeats the proof");
      assert.ok(!error.reason.includes(token), "the reason repeats the token");
    });
    const report = await fc.check(property, params(VERIFIER_RUNS));
    t.diagnostic(`${report.numRuns} cases (${report.numSkips} skipped), seed ${report.seed}${report.interrupted ? ", stopped at the time limit" : ""}; errors ${JSON.stringify(errors)}`);
    assert.ok(!report.failed, `${fc.defaultReportMessage(report) ?? "failed"}\n${String(report.errorInstance)}`);
    assert.ok(report.numRuns >= 300, `only ${report.numRuns} cases ran`);
  });

  it("no unhandled rejection, no uncaught exception", async () => {
    await watch.settle();
    assert.equal(watch.unhandledRejections, 0, String(watch.errors[0]));
    assert.equal(watch.uncaughtExceptions, 0, String(watch.errors[0]));
  });
});
