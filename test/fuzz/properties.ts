/**
 * Property-based fuzzing of verifyOidcToken, shared by the CI test
 * (test/fuzz/fuzz.test.ts, ≥ 20,000 cases) and `npm run fuzz`
 * (test/fuzz/run.ts, 1,000,000 cases by default).
 *
 * Everything is real: RSA and EC keys from makeKey, a JWKS server on
 * 127.0.0.1 that counts hits, tokens signed by jose (or WebCrypto, for raw
 * headers), and the package's public verifyOidcToken. Each property is an
 * fc.asyncProperty built against a FuzzTarget; runProperty runs it with
 * fc.check and returns the numbers and, on failure, fast-check's report with
 * the counterexample, seed and path to replay it.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { exportJWK, SignJWT, type JWK } from "jose";
import { OidcAuthError, verifyOidcToken, type OidcConfigInput, type OidcUserContext } from "../../src/index.js";
import { b64url, makeKey, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";

export const ISS = "https://idp.fuzz.test";
export const AUD = "fuzz-api";
/** The package defaults the fuzzed config relies on. */
export const TOLERANCE = 5;
export const MAX_TOKEN_LENGTH = 16 * 1024;
export const JWKS_COOLDOWN_MS = 30_000;
/** Generated clock-relative values stay this many seconds away from every tolerance edge. */
export const MARGIN = 3;

const YEAR = 365 * 24 * 3600;
const nowS = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------
// Failures, by kind (run.ts counts them by class)
// ---------------------------------------------------------------------------

/** A token that must be refused was accepted. */
export class WronglyAccepted extends Error {
  override readonly name = "WronglyAccepted";
}
/** verifyOidcToken rejected with something that is not an OidcAuthError (or timed out). */
export class Crash extends Error {
  override readonly name = "Crash";
}
/** An OidcAuthError with another code than expected (e.g. 503 for a hostile token). */
export class WrongCode extends Error {
  override readonly name = "WrongCode";
}
/** A token the oracle says is valid was refused. */
export class WronglyRefused extends Error {
  override readonly name = "WronglyRefused";
}

export type FailureKind = "accepted wrongly" | "crash" | "wrong code" | "refused wrongly" | "other";

export function failureKind(error: unknown): FailureKind {
  if (error instanceof WronglyAccepted) return "accepted wrongly";
  if (error instanceof Crash) return "crash";
  if (error instanceof WrongCode) return "wrong code";
  if (error instanceof WronglyRefused) return "refused wrongly";
  // fast-check's own timeout, or an assertion we did not classify.
  if (error instanceof Error && /timeout/i.test(error.message)) return "crash";
  return "other";
}

// ---------------------------------------------------------------------------
// The target: keys, JWKS server, config, base tokens
// ---------------------------------------------------------------------------

export interface BaseToken {
  token: string;
  segments: readonly [string, string, string];
  key: SigningKey;
  claims: Readonly<Record<string, unknown>>;
}

export interface FuzzTarget {
  config: OidcConfigInput;
  keys: { rsa: SigningKey; ec: SigningKey; attacker: SigningKey };
  /** The attacker's public key, for `jwk` header parameters. */
  attackerJwk: JWK;
  jwks: JwksServer;
  /** A server the attacker controls (jku / x5u): it must never be contacted. */
  bait: { url: string; readonly hits: number };
  /** Valid tokens: different claims, both keys; all verify at setup. */
  tokens: readonly BaseToken[];
  startedAt: number;
  /** jose re-fetches on an unknown kid at most once per cooldown: the most hits the JWKS may have seen by now. */
  maxJwksHits(): number;
  close(): Promise<void>;
}

function splitToken(token: string): [string, string, string] {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${token}`);
  return [parts[0]!, parts[1]!, parts[2]!];
}

export async function createFuzzTarget(): Promise<FuzzTarget> {
  const [rsa, ec, attacker] = await Promise.all([makeKey("RS256"), makeKey("ES256"), makeKey("RS256")]);
  const jwks = await startJwksServer([rsa.jwk, ec.jwk]);
  const config: OidcConfigInput = { authServiceUrl: ISS, appSlug: AUD, jwksUri: jwks.jwksUri };

  const baitState = { hits: 0 };
  const baitServer = createServer((_req, res) => {
    baitState.hits++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [attacker.jwk] }));
  });
  await new Promise<void>((resolve) => baitServer.listen(0, "127.0.0.1", resolve));
  const baitUrl = `http://127.0.0.1:${(baitServer.address() as AddressInfo).port}`;

  // Valid for a day, so a long `npm run fuzz` never sees them expire.
  const now = nowS();
  const base = (sub: string, extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, sub, iat: now, exp: now + 24 * 3600, ...extra });
  const specs: Array<[SigningKey, Record<string, unknown>]> = [
    [rsa, base("alice", { roles: ["member"] })],
    [rsa, base("bob", { roles: ["admin"], permissions: ["users:write"] })],
    [rsa, base("alice", { aud: [AUD, "other-api"], scope: "read write" })],
    [ec, base("alice", { roles: ["member"] })],
    [ec, base("carol", { features: { beta: true } })],
    [ec, base("bob", { roles: ["admin"], nbf: now - 60 })],
  ];
  const tokens: BaseToken[] = [];
  for (const [key, claims] of specs) {
    const token = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);
    // Each base token really verifies (this also warms the key cache: one JWKS hit).
    const context = await verifyOidcToken(token, config);
    if (context.sub !== claims["sub"]) throw new Error(`base token for ${String(claims["sub"])} did not verify as itself`);
    tokens.push({ token, segments: splitToken(token), key, claims: Object.freeze(claims) });
  }

  const startedAt = Date.now();
  return {
    config,
    keys: { rsa, ec, attacker },
    attackerJwk: { ...(await exportJWK(attacker.publicKey)), kid: attacker.kid },
    jwks,
    bait: {
      url: baitUrl,
      get hits() {
        return baitState.hits;
      },
    },
    tokens,
    startedAt,
    maxJwksHits: () => 2 + Math.floor((Date.now() - startedAt) / JWKS_COOLDOWN_MS),
    async close() {
      await jwks.close();
      baitServer.closeAllConnections();
      await new Promise<void>((resolve) => baitServer.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------
// Process health: unhandled rejections and uncaught exceptions
// ---------------------------------------------------------------------------

export interface ProcessWatch {
  readonly unhandledRejections: number;
  readonly uncaughtExceptions: number;
  readonly errors: readonly unknown[];
  /** Let pending microtasks and immediates run, so late rejections are counted. */
  settle(): Promise<void>;
  stop(): void;
}

export function watchProcess(): ProcessWatch {
  const state = { unhandledRejections: 0, uncaughtExceptions: 0, errors: [] as unknown[] };
  const onRejection = (reason: unknown) => {
    state.unhandledRejections++;
    if (state.errors.length < 10) state.errors.push(reason);
  };
  const onException = (error: unknown) => {
    state.uncaughtExceptions++;
    if (state.errors.length < 10) state.errors.push(error);
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return {
    get unhandledRejections() {
      return state.unhandledRejections;
    },
    get uncaughtExceptions() {
      return state.uncaughtExceptions;
    },
    get errors() {
      return state.errors;
    },
    async settle() {
      for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    },
    stop() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

type Outcome = { accepted: true; context: OidcUserContext } | { accepted: false; error: unknown };

/** Call verifyOidcToken with anything; a synchronous throw is caught too. */
async function attempt(token: unknown, config: OidcConfigInput): Promise<Outcome> {
  try {
    return { accepted: true, context: await verifyOidcToken(token as string, config) };
  } catch (error) {
    return { accepted: false, error };
  }
}

function describeError(error: unknown): string {
  if (error instanceof OidcAuthError) return `OidcAuthError ${error.code}: ${error.reason}`;
  if (error instanceof Error) return `${error.name}: ${error.message}\n${error.stack ?? ""}`;
  return `non-Error thrown: ${String(error)}`;
}

/** The refusal must be an OidcAuthError with one of the expected codes. */
function expectRefusal(outcome: Outcome, codes: readonly string[], what: string): OidcAuthError {
  if (outcome.accepted) throw new WronglyAccepted(`${what} was accepted (sub ${JSON.stringify(outcome.context.sub)})`);
  const { error } = outcome;
  if (!(error instanceof OidcAuthError)) throw new Crash(`${what}: rejected with ${describeError(error)}`);
  if (!codes.includes(error.code)) throw new WrongCode(`${what}: code ${error.code}, expected ${codes.join(" or ")} (${error.reason})`);
  if (error.statusCode !== 401) throw new WrongCode(`${what}: status ${error.statusCode} for ${error.code}`);
  return error;
}

const decoded = (segment: string) => Buffer.from(segment, "base64url");

/** Same header and payload text (the signed input) and the same signature bytes. */
function isNoop(original: string, mutated: string): boolean {
  const a = original.split(".");
  const b = mutated.split(".");
  return b.length === 3 && a[0] === b[0] && a[1] === b[1] && decoded(a[2]!).equals(decoded(b[2]!));
}

/** Counters the properties keep while they run (for diagnostics; shrinking adds a few on failure). */
export interface Stats {
  cases: number;
  accepted: number;
  refused: number;
  /** Mutations that verified and were checked to be genuine no-ops (a non-canonical last signature character). */
  noopAccepted: number;
  codes: Record<string, number>;
  /** What the oracle (claims) or the mutation kind (mutations) was, per case. */
  labels: Record<string, number>;
}

export const newStats = (): Stats => ({ cases: 0, accepted: 0, refused: 0, noopAccepted: 0, codes: {}, labels: {} });

function label(stats: Stats, name: string): void {
  stats.labels[name] = (stats.labels[name] ?? 0) + 1;
}

function tally(stats: Stats, outcome: Outcome): void {
  stats.cases++;
  if (outcome.accepted) stats.accepted++;
  else {
    stats.refused++;
    const code = outcome.error instanceof OidcAuthError ? outcome.error.code : "not-an-OidcAuthError";
    stats.codes[code] = (stats.codes[code] ?? 0) + 1;
  }
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const base64urlChar = fc.constantFrom(...BASE64URL.split(""));
const base64urlString = (maxLength = 64) => fc.string({ unit: base64urlChar, maxLength });

// ---------------------------------------------------------------------------
// Property 1: mutations of valid tokens are refused
// ---------------------------------------------------------------------------

export type Mutation =
  | { kind: "flip"; segment: 0 | 1 | 2; bits: number[] }
  | { kind: "replace"; at: number; char: string }
  | { kind: "replaceLast"; segment: 0 | 1 | 2; char: string }
  | { kind: "truncate"; keep: number }
  | { kind: "append"; garbage: string }
  | { kind: "prepend"; garbage: string }
  | { kind: "swap"; segment: 0 | 1 | 2; other: number }
  | { kind: "insertDot"; at: number }
  | { kind: "removeDot"; which: 0 | 1 }
  | { kind: "reorder"; order: [number, number, number] };

const segmentIndex = fc.constantFrom<0 | 1 | 2>(0, 1, 2);

export function mutationArbitrary(tokenCount: number): fc.Arbitrary<Mutation> {
  const replacement = fc.oneof(
    { weight: 4, arbitrary: base64urlChar },
    { weight: 1, arbitrary: fc.constantFrom(".", "=", "+", "/", " ", "\u0000", "\u00e9", "\ud83d\ude00", "%", "\n") },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  );
  const garbage = fc.oneof(base64urlString(8).filter((s) => s.length > 0), fc.string({ minLength: 1, maxLength: 8 }), fc.string({ unit: "binary", minLength: 1, maxLength: 4 }));
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant("flip" as const), segment: segmentIndex, bits: fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 3 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), char: replacement }) },
    // The last character of a segment carries padding bits: some replacements decode to the same bytes.
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("replaceLast" as const), segment: segmentIndex, char: base64urlChar }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("append" as const), garbage }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("prepend" as const), garbage }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("swap" as const), segment: segmentIndex, other: fc.nat({ max: tokenCount - 1 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("insertDot" as const), at: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("removeDot" as const), which: fc.constantFrom<0 | 1>(0, 1) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("reorder" as const),
        order: fc.constantFrom<[number, number, number]>([1, 0, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0], [2, 0, 1], [0, 0, 2], [0, 1, 1], [1, 1, 2]),
      }),
    },
  );
}

/** Flip the given bits of the decoded bytes and re-encode: the signed bytes really change. */
function flipBits(segment: string, bits: readonly number[]): string {
  const bytes = Buffer.from(decoded(segment));
  const total = bytes.length * 8;
  if (total === 0) return segment;
  // Distinct positions: XOR on distinct bits never cancels out.
  for (const position of new Set(bits.map((bit) => bit % total))) bytes[position >> 3]! ^= 1 << (position & 7);
  return bytes.toString("base64url");
}

export function applyMutation(base: BaseToken, mutation: Mutation, tokens: readonly BaseToken[]): string {
  const { token, segments } = base;
  switch (mutation.kind) {
    case "flip": {
      const parts = [...segments];
      parts[mutation.segment] = flipBits(parts[mutation.segment]!, mutation.bits);
      return parts.join(".");
    }
    case "replace": {
      const at = mutation.at % token.length;
      return token.slice(0, at) + mutation.char + token.slice(at + 1);
    }
    case "replaceLast": {
      const parts = [...segments];
      parts[mutation.segment] = parts[mutation.segment]!.slice(0, -1) + mutation.char;
      return parts.join(".");
    }
    case "truncate":
      return token.slice(0, mutation.keep % token.length);
    case "append":
      return token + mutation.garbage;
    case "prepend":
      return mutation.garbage + token;
    case "swap": {
      const parts = [...segments];
      parts[mutation.segment] = tokens[mutation.other]!.segments[mutation.segment]!;
      return parts.join(".");
    }
    case "insertDot": {
      const at = mutation.at % (token.length + 1);
      return `${token.slice(0, at)}.${token.slice(at)}`;
    }
    case "removeDot": {
      const dot = mutation.which === 0 ? token.indexOf(".") : token.lastIndexOf(".");
      return token.slice(0, dot) + token.slice(dot + 1);
    }
    case "reorder":
      return mutation.order.map((i) => segments[i]!).join(".");
  }
}

export function mutationsProperty(target: FuzzTarget, stats: Stats) {
  const { tokens, config } = target;
  return fc.asyncProperty(fc.nat({ max: tokens.length - 1 }), mutationArbitrary(tokens.length), async (index, mutation) => {
    const base = tokens[index]!;
    const mutated = applyMutation(base, mutation, tokens);
    // A swap with an identical segment (same header: same key) reproduces the token: nothing to test.
    fc.pre(mutated !== base.token);
    const outcome = await attempt(mutated, config);
    tally(stats, outcome);
    label(stats, mutation.kind);
    if (outcome.accepted) {
      // Only a genuine no-op may verify: same signed input, same signature bytes.
      if (!isNoop(base.token, mutated)) {
        throw new WronglyAccepted(`mutated token accepted (sub ${JSON.stringify(outcome.context.sub)}): ${mutated}`);
      }
      if (outcome.context.sub !== base.claims["sub"]) throw new WronglyAccepted(`no-op mutation verified as another subject`);
      stats.noopAccepted++;
      return;
    }
    expectRefusal(outcome, mutated === "" ? ["ERR_AUTH_TOKEN_REQUIRED"] : ["ERR_AUTH_TOKEN_INVALID"], "mutated token");
  });
}

// ---------------------------------------------------------------------------
// Property 2: claim mutations re-signed with the right key
// ---------------------------------------------------------------------------

/** A claim value; clock-relative ones are resolved when the token is signed. */
export type ClaimSpec =
  | { absent: true }
  | { value: unknown }
  | { rel: number } // now + rel
  | { relText: number } // String(now + rel)
  | { relArray: number }; // [now + rel]

const absent = fc.constant<ClaimSpec>({ absent: true });
const value = (arb: fc.Arbitrary<unknown>) => arb.map((v): ClaimSpec => ({ value: v }));
const rel = (min: number, max: number) => fc.integer({ min, max }).map((r): ClaimSpec => ({ rel: r }));
const relFloat = (min: number, max: number) => fc.double({ min, max, noNaN: true }).map((r): ClaimSpec => ({ rel: r }));
const finiteDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
/** Values that are never a NumericDate. */
const notANumber = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, "", "0", "1e10", [], {}, [0], { $gt: 0 }),
  fc.string(),
  fc.array(fc.integer(), { maxLength: 3 }),
);

function resolve(spec: ClaimSpec, now: number): unknown {
  if ("absent" in spec) return undefined;
  if ("value" in spec) return spec.value;
  if ("rel" in spec) return now + spec.rel;
  if ("relText" in spec) return String(now + spec.relText);
  return [now + spec.relArray];
}

const mixedCase = (text: string) => fc.mixedCase(fc.constant(text));

export function claimsArbitrary() {
  const iss = fc.oneof(
    { weight: 20, arbitrary: value(fc.constant(ISS)) },
    {
      weight: 2,
      arbitrary: value(
        fc.constantFrom<unknown>(
          `${ISS}/`,
          ISS.toUpperCase(),
          "HTTPS://idp.fuzz.test",
          `${ISS} `,
          ` ${ISS}`,
          `${ISS}#`,
          `${ISS}.`,
          "http://idp.fuzz.test",
          "https://attacker@idp.fuzz.test",
          "https://idp.fuzz.test:443",
          `${ISS}\u0000`,
          [ISS],
          { iss: ISS },
          null,
          42,
          "",
        ),
      ),
    },
    { weight: 1, arbitrary: value(mixedCase(ISS)) },
    { weight: 1, arbitrary: value(fc.string()) },
    { weight: 1, arbitrary: absent },
  );
  const audArray = (withAud: boolean) =>
    fc
      .tuple(fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 3 }), fc.array(fc.string(), { maxLength: 3 }))
      .map(([before, after]) => (withAud ? [...before, AUD, ...after] : [...before, ...after]));
  const aud = fc.oneof(
    { weight: 14, arbitrary: value(fc.constant(AUD)) },
    { weight: 6, arbitrary: value(audArray(true)) },
    { weight: 1, arbitrary: value(audArray(false)) },
    {
      weight: 2,
      arbitrary: value(fc.constantFrom<unknown>(AUD.toUpperCase(), `${AUD} `, [AUD.toUpperCase()], [], [[AUD]], { aud: AUD }, 42, null, true, "", `${AUD}\u0000`, `${AUD},other`)),
    },
    { weight: 1, arbitrary: value(mixedCase(AUD)) },
    { weight: 1, arbitrary: value(fc.string()) },
    { weight: 1, arbitrary: absent },
  );
  const exp = fc.oneof(
    { weight: 14, arbitrary: rel(-TOLERANCE + MARGIN, 10 * YEAR) },
    { weight: 3, arbitrary: relFloat(-TOLERANCE + MARGIN, 1e6) },
    { weight: 3, arbitrary: rel(-20 * YEAR, -TOLERANCE - MARGIN) },
    { weight: 1, arbitrary: relFloat(-1e6, -TOLERANCE - MARGIN) },
    { weight: 1, arbitrary: value(fc.constantFrom<unknown>(0, -1, -0, 32503680000, Number.MAX_SAFE_INTEGER, 1e300, -1e300, 5e-324)) },
    { weight: 1, arbitrary: value(finiteDouble) },
    { weight: 1, arbitrary: value(notANumber) },
    { weight: 1, arbitrary: fc.integer({ min: -10, max: 10 * YEAR }).map((r): ClaimSpec => ({ relText: r })) },
    { weight: 1, arbitrary: fc.integer({ min: -10, max: 10 * YEAR }).map((r): ClaimSpec => ({ relArray: r })) },
    { weight: 1, arbitrary: absent },
  );
  const nbf = fc.oneof(
    { weight: 12, arbitrary: absent },
    { weight: 8, arbitrary: rel(-10 * YEAR, TOLERANCE - MARGIN) },
    { weight: 2, arbitrary: relFloat(-1e6, TOLERANCE - MARGIN) },
    { weight: 2, arbitrary: rel(TOLERANCE + MARGIN, 10 * YEAR) },
    { weight: 1, arbitrary: value(fc.constantFrom<unknown>(0, -1, -1e300, 1e300, 32503680000)) },
    { weight: 1, arbitrary: value(finiteDouble) },
    { weight: 1, arbitrary: value(notANumber) },
    { weight: 1, arbitrary: fc.integer({ min: -100, max: 0 }).map((r): ClaimSpec => ({ relText: r })) },
  );
  const iat = fc.oneof(
    { weight: 10, arbitrary: absent },
    { weight: 10, arbitrary: rel(-10 * YEAR, 10 * YEAR) },
    { weight: 1, arbitrary: value(finiteDouble) },
    { weight: 1, arbitrary: value(notANumber) },
  );
  const sub = fc.oneof(
    { weight: 14, arbitrary: value(fc.string({ minLength: 1 })) },
    { weight: 3, arbitrary: value(fc.constantFrom<unknown>("user-1", " ", "\u0000", "admin", "__proto__", "constructor", "a".repeat(300))) },
    { weight: 2, arbitrary: value(fc.string({ unit: "binary", minLength: 1, maxLength: 8 })) },
    { weight: 2, arbitrary: value(fc.constantFrom<unknown>("", 0, 7, -1, null, true, false, [], ["user-1"], { id: "admin" })) },
    { weight: 1, arbitrary: absent },
  );
  const reserved = new Set(["iss", "aud", "exp", "nbf", "iat", "sub"]);
  const mapped = fc.record(
    {
      roles: fc.oneof(fc.array(fc.string(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      permissions: fc.oneof(fc.array(fc.string(), { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })),
      features: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), fc.jsonValue({ maxDepth: 2 })),
      scope: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })),
      scp: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 })),
      email: fc.jsonValue({ maxDepth: 1 }),
      name: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  );
  const extras = fc
    .tuple(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }), mapped)
    .map(([random, known]) => Object.fromEntries(Object.entries({ ...random, ...known }).filter(([k]) => !reserved.has(k))));
  // Rarely, a padding claim that brings the token around the 16 KiB cap.
  const pad = fc.oneof({ weight: 50, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 11_800, max: 12_600 }) });
  return fc.record({
    key: fc.constantFrom<"rsa" | "ec">("rsa", "ec"),
    typ: fc.constantFrom<string | undefined>(undefined, "JWT", "at+jwt"),
    iss,
    aud,
    exp,
    nbf,
    iat,
    sub,
    extras,
    pad,
  });
}

/**
 * The expected decision, computed from the JSON the IdP signed, independently
 * of jose: iss === ISS, aud is AUD or an array containing it, exp a number
 * > now - tolerance, nbf absent or a number <= now + tolerance, iat absent or
 * a number, sub a non-empty well-formed string, no "events" (a security
 * event token) and no "nonce" (an ID token), and the token within the size cap.
 */
export function oracle(payload: Record<string, unknown>, now: number, tokenLength: number): { valid: boolean; why: string } {
  const has = (claim: string) => Object.prototype.hasOwnProperty.call(payload, claim);
  if (tokenLength > MAX_TOKEN_LENGTH) return { valid: false, why: "too long" };
  if (payload["iss"] !== ISS) return { valid: false, why: "iss" };
  const aud = payload["aud"];
  if (!(aud === AUD || (Array.isArray(aud) && aud.includes(AUD)))) return { valid: false, why: "aud" };
  const exp = payload["exp"];
  if (typeof exp !== "number" || !(exp > now - TOLERANCE)) return { valid: false, why: "exp" };
  const nbf = payload["nbf"];
  if (has("nbf") && (typeof nbf !== "number" || nbf > now + TOLERANCE)) return { valid: false, why: "nbf" };
  if (has("iat") && typeof payload["iat"] !== "number") return { valid: false, why: "iat" };
  const sub = payload["sub"];
  if (typeof sub !== "string" || sub === "" || !(sub as unknown as { isWellFormed(): boolean }).isWellFormed()) return { valid: false, why: "sub" };
  if (has("events")) return { valid: false, why: "events" };
  if (has("nonce") || has("at_hash") || has("c_hash")) return { valid: false, why: "nonce" };
  return { valid: true, why: "valid" };
}

/** A numeric exp/nbf within MARGIN of its tolerance edge would make the oracle depend on timing. */
function nearEdge(payload: Record<string, unknown>, now: number): boolean {
  const exp = payload["exp"];
  const nbf = payload["nbf"];
  return (typeof exp === "number" && Math.abs(exp - (now - TOLERANCE)) < MARGIN - 1) || (typeof nbf === "number" && Math.abs(nbf - (now + TOLERANCE)) < MARGIN - 1);
}

export function claimsProperty(target: FuzzTarget, stats: Stats) {
  const { config, keys } = target;
  return fc.asyncProperty(claimsArbitrary(), async (c) => {
    const now = nowS();
    const claims: Record<string, unknown> = { ...c.extras };
    if (c.pad > 0) claims["pad"] = "p".repeat(c.pad);
    for (const name of ["iss", "aud", "exp", "nbf", "iat", "sub"] as const) {
      const v = resolve(c[name], now);
      if (v !== undefined) claims[name] = v;
    }
    const key = c.key === "rsa" ? keys.rsa : keys.ec;
    const header = c.typ === undefined ? { alg: key.alg, kid: key.kid } : { alg: key.alg, kid: key.kid, typ: c.typ };
    const token = await new SignJWT(claims).setProtectedHeader(header).sign(key.privateKey);
    // The oracle reads what was signed, as any verifier would parse it.
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
    const verifyNow = nowS();
    fc.pre(!nearEdge(payload, verifyNow));
    const expected = oracle(payload, verifyNow, token.length);
    const outcome = await attempt(token, config);
    tally(stats, outcome);
    label(stats, expected.why);
    if (outcome.accepted) {
      if (!expected.valid) throw new WronglyAccepted(`claims accepted, oracle says invalid (${expected.why}): ${JSON.stringify(payload).slice(0, 500)}`);
      if (outcome.context.sub !== payload["sub"]) throw new WronglyAccepted(`context.sub ${JSON.stringify(outcome.context.sub)} !== payload.sub ${JSON.stringify(payload["sub"])}`);
      if (outcome.context.expiresAt !== (payload["exp"] as number) * 1000) throw new WronglyAccepted(`context.expiresAt ${outcome.context.expiresAt} for exp ${String(payload["exp"])}`);
      if (!outcome.context.roles.every((role) => typeof role === "string")) throw new WronglyAccepted(`non-string role in ${JSON.stringify(outcome.context.roles)}`);
      return;
    }
    if (expected.valid) {
      const error = outcome.error;
      if (!(error instanceof OidcAuthError)) throw new Crash(`valid claims: rejected with ${describeError(error)}`);
      throw new WronglyRefused(`oracle says valid, refused with ${error.code}: ${error.reason} — payload ${JSON.stringify(payload).slice(0, 500)}`);
    }
    expectRefusal(outcome, ["ERR_AUTH_TOKEN_INVALID"], `claims invalid by ${expected.why}`);
  });
}

// ---------------------------------------------------------------------------
// Property 3: random junk never crashes
// ---------------------------------------------------------------------------

export function junkArbitrary(target: FuzzTarget): fc.Arbitrary<unknown> {
  const tokenText = fc.constantFrom(...target.tokens.map((t) => t.token));
  return fc.oneof(
    fc.string(),
    fc.string({ unit: "binary" }),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
    fc.anything({ withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true, withBigInt: true, withDate: true, withTypedArray: true, withSparseArray: true }),
    // Shaped like a compact JWS, so it reaches the decoders.
    fc.tuple(base64urlString(), base64urlString(), base64urlString()).map((parts) => parts.join(".")),
    fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.uint8Array({ maxLength: 80 })).map(([h, p, s]) => `${b64url(JSON.stringify(h) ?? "")}.${b64url(JSON.stringify(p) ?? "")}.${b64url(Buffer.from(s))}`),
    // Around the size cap.
    fc.integer({ min: MAX_TOKEN_LENGTH - 8, max: MAX_TOKEN_LENGTH + 8 }).map((n) => `${"a".repeat(n - 4)}.b.c`),
    // A valid token in something that is not a string: never coerced.
    tokenText.map((t) => new String(t)),
    tokenText.map((t) => ({ toString: () => t, valueOf: () => t })),
    tokenText.map((t) => [t]),
    tokenText.map((t) => Buffer.from(t)),
  );
}

export function junkProperty(target: FuzzTarget, stats: Stats) {
  const { config } = target;
  return fc.asyncProperty(junkArbitrary(target), async (junk) => {
    const outcome = await attempt(junk, config);
    tally(stats, outcome);
    expectRefusal(outcome, typeof junk === "string" && junk !== "" ? ["ERR_AUTH_TOKEN_INVALID"] : ["ERR_AUTH_TOKEN_REQUIRED"], "junk");
  });
}

// ---------------------------------------------------------------------------
// Property 4: random headers
// ---------------------------------------------------------------------------

export type SignatureSpec =
  | { kind: "random"; bytes: Uint8Array }
  | { kind: "foreign"; index: number } // a real signature over another input
  | { kind: "attacker" } // the exact input, signed by a key the JWKS does not publish
  | { kind: "real"; key: "rsa" | "ec" }; // the exact input, signed by a published key

/** `undefined` leaves the parameter out of the JSON; `null` is a JSON null. */
const maybe = <T>(arb: fc.Arbitrary<T>, weight = 1) =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(null) }, { weight: weight * 2, arbitrary: arb });

export function headerArbitrary(target: FuzzTarget) {
  const { rsa, ec, attacker } = target.keys;
  return fc.record({
    alg: maybe(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom("RS256", "ES256") },
        { weight: 3, arbitrary: fc.constantFrom("none", "None", "HS256", "HS512", "EdDSA", "Ed25519", "PS256", "RS384", "ES384", "ES512", "RS1", "RS256 ", "rs256", "ML-DSA-44", "RSA-OAEP") },
        { weight: 1, arbitrary: fc.string() },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
      ),
      6,
    ),
    kid: maybe(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(rsa.kid, ec.kid) },
        { weight: 1, arbitrary: fc.constantFrom(attacker.kid, `${rsa.kid} `, rsa.kid.toUpperCase(), "../../etc/passwd", "") },
        { weight: 1, arbitrary: fc.string() },
        { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant([rsa.kid]), fc.constant({ kid: rsa.kid })) },
      ),
      3,
    ),
    typ: maybe(fc.oneof(fc.constantFrom("JWT", "at+jwt", "application/at+jwt", "JWE", ""), fc.string())),
    crit: fc.oneof(
      { weight: 12, arbitrary: fc.constant(undefined) },
      { weight: 2, arbitrary: fc.constant(["b64"]) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(null, [], ["b64", "b64"], "b64", ["exp"], [""], [1]) },
      { weight: 1, arbitrary: fc.array(fc.string(), { maxLength: 3 }) },
    ),
    b64: maybe(fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) })),
    jku: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(`${target.bait.url}/jwks`, target.bait.url) }, { weight: 1, arbitrary: fc.string() }),
    x5u: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(`${target.bait.url}/cert`) }),
    jwk: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(target.attackerJwk, rsa.jwk, ec.jwk, {}, null) }),
    extra: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
  });
}

export function signatureArbitrary(target: FuzzTarget): fc.Arbitrary<SignatureSpec> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes): SignatureSpec => ({ kind: "random", bytes })) },
    { weight: 2, arbitrary: fc.constantFrom(64, 256).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((bytes): SignatureSpec => ({ kind: "random", bytes })) },
    { weight: 2, arbitrary: fc.nat({ max: target.tokens.length - 1 }).map((index): SignatureSpec => ({ kind: "foreign", index })) },
    { weight: 1, arbitrary: fc.constant<SignatureSpec>({ kind: "attacker" }) },
    { weight: 2, arbitrary: fc.constantFrom<"rsa" | "ec">("rsa", "ec").map((key): SignatureSpec => ({ kind: "real", key })) },
  );
}

/** Sign any signing input with WebCrypto, in the JWS form (RSASSA-PKCS1-v1_5; ECDSA raw r||s). */
async function rawSign(key: SigningKey, signingInput: string): Promise<string> {
  const algorithm = key.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  const signature = await globalThis.crypto.subtle.sign(algorithm, key.privateKey, Buffer.from(signingInput, "ascii"));
  return Buffer.from(signature).toString("base64url");
}

/**
 * When a header, with a real signature over exactly it, is acceptable (jose's
 * rules, which the package relies on): alg is the key's; kid absent or the
 * key's; crit absent, or naming only "b64" (jose tolerates a repeated entry) with b64 true;
 * and the package's own: typ absent, or "JWT" / "at+jwt" in any case, "application/" optional.
 */
export function headerAcceptable(header: Record<string, unknown>, key: SigningKey): boolean {
  const has = (name: string) => Object.prototype.hasOwnProperty.call(header, name);
  if (header["alg"] !== key.alg) return false;
  if (has("kid") && header["kid"] !== key.kid) return false;
  if (has("typ")) {
    const typ = header["typ"];
    const media = typeof typ === "string" ? typ.toLowerCase().replace(/^application\//, "") : undefined;
    if (media !== "jwt" && media !== "at+jwt") return false;
  }
  if (has("crit")) {
    const crit = header["crit"];
    if (!(Array.isArray(crit) && crit.length >= 1 && crit.every((name) => name === "b64") && header["b64"] === true)) return false;
  }
  return true;
}

export function headersProperty(target: FuzzTarget, stats: Stats) {
  const { config, keys, tokens } = target;
  return fc.asyncProperty(headerArbitrary(target), signatureArbitrary(target), async (h, signature) => {
    const { extra, ...named } = h;
    // The named parameters win over random extra ones; undefined ones are left out by JSON.stringify.
    const headerJson = JSON.stringify({ ...extra, ...named });
    const header = JSON.parse(headerJson) as Record<string, unknown>;
    const now = nowS();
    const signingInput = `${b64url(headerJson)}.${b64url(JSON.stringify({ iss: ISS, aud: AUD, sub: "fuzz-user", iat: now, exp: now + 600 }))}`;
    let sig: string;
    let mayAccept = false;
    switch (signature.kind) {
      case "random":
        sig = Buffer.from(signature.bytes).toString("base64url");
        break;
      case "foreign":
        sig = tokens[signature.index]!.segments[2];
        break;
      case "attacker":
        sig = await rawSign(keys.attacker, signingInput);
        break;
      case "real": {
        const key = signature.key === "rsa" ? keys.rsa : keys.ec;
        sig = await rawSign(key, signingInput);
        mayAccept = headerAcceptable(header, key);
        break;
      }
    }
    const token = `${signingInput}.${sig}`;
    const baitBefore = target.bait.hits;
    const outcome = await attempt(token, config);
    tally(stats, outcome);
    label(stats, mayAccept ? "acceptable" : `${signature.kind} signature`);
    if (target.bait.hits !== baitBefore) throw new WronglyAccepted(`the jku/x5u bait server was contacted for header ${headerJson}`);
    if (outcome.accepted) {
      if (!mayAccept) throw new WronglyAccepted(`header ${headerJson} with a ${signature.kind} signature was accepted`);
      if (outcome.context.sub !== "fuzz-user") throw new WronglyAccepted(`accepted as ${JSON.stringify(outcome.context.sub)}`);
      return;
    }
    if (mayAccept) {
      const error = outcome.error;
      if (!(error instanceof OidcAuthError)) throw new Crash(`acceptable header ${headerJson}: rejected with ${describeError(error)}`);
      throw new WronglyRefused(`header ${headerJson} with a real signature was refused: ${error.code} ${error.reason}`);
    }
    expectRefusal(outcome, ["ERR_AUTH_TOKEN_INVALID"], `header ${headerJson} with a ${signature.kind} signature`);
  });
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

export type PropertyName = "mutations" | "claims" | "junk" | "headers";

export const PROPERTIES: ReadonlyArray<{ name: PropertyName; title: string }> = [
  { name: "mutations", title: "mutations of valid tokens are refused" },
  { name: "claims", title: "claim mutations re-signed with the right key: accepted exactly when the oracle says valid" },
  { name: "junk", title: "random junk (and non-strings) is refused with REQUIRED or INVALID, never crashes" },
  { name: "headers", title: "random headers are never accepted unless alg/kid match a real key and the signature is real" },
];

export interface PropertyReport {
  name: PropertyName;
  /** Cases that ran (skipped ones excluded), up to and including a failing one. */
  numRuns: number;
  numSkips: number;
  seed: number;
  failed: boolean;
  kind?: FailureKind;
  /** fast-check's report: counterexample, seed and path to replay. */
  message?: string;
  stats: Stats;
  ms: number;
}

export interface RunOptions {
  numRuns: number;
  seed?: number;
  /** Per-case limit: a verification that hangs is a failure, not a stuck run. */
  timeoutMs?: number;
}

async function check<Ts>(property: fc.IAsyncPropertyWithHooks<Ts>, options: RunOptions) {
  const details = await fc.check(property, {
    numRuns: options.numRuns,
    timeout: options.timeoutMs ?? 10_000,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  });
  const message = details.failed ? ((await fc.asyncDefaultReportMessage(details)) ?? "property failed") : undefined;
  return { details, message };
}

export async function runProperty(name: PropertyName, target: FuzzTarget, options: RunOptions, stats: Stats = newStats()): Promise<PropertyReport> {
  const started = performance.now();
  const { details, message } =
    name === "mutations"
      ? await check(mutationsProperty(target, stats), options)
      : name === "claims"
        ? await check(claimsProperty(target, stats), options)
        : name === "junk"
          ? await check(junkProperty(target, stats), options)
          : await check(headersProperty(target, stats), options);
  const report: PropertyReport = {
    name,
    numRuns: details.numRuns,
    numSkips: details.numSkips,
    seed: details.seed,
    failed: details.failed,
    stats,
    ms: performance.now() - started,
  };
  if (details.failed) {
    report.kind = details.errorInstance === null ? "other" : failureKind(details.errorInstance);
    report.message = message;
  }
  return report;
}
