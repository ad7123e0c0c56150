/**
 * src/jwt/fastVerify.ts: unit tests per rule, each checked against jose
 * itself (the fast path must accept exactly where jose accepts, and defer —
 * return undefined — everywhere else it is not sure), then a direct
 * differential over generated tokens: whenever fastVerify accepts a token
 * with a key, jose.jwtVerify with a JWKS of that key alone and the same
 * options accepts it too, with the same payload.
 *
 * Real keys generated here; jose is not mocked; nothing is timed.
 */
import assert from "node:assert/strict";
import { constants, generateKeyPair, generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { before, describe, it } from "node:test";
import { base64url, createLocalJWKSet, jwtVerify, SignJWT, type JWK, type JWTVerifyOptions } from "jose";
import { fastAlgorithm } from "../../src/jwt/algorithms.js";
import type { FastPolicy } from "../../src/jwt/claims.js";
import { COMPACT_JWS, decodeJws } from "../../src/jwt/decode.js";
import { createFastKey, type FastKey } from "../../src/jwt/fastKey.js";
import { fastVerify } from "../../src/jwt/fastVerify.js";
import { asciiToken, signatureView, signingInputView } from "../../src/jwt/segment.js";
import { isUsableJwk } from "../../src/jwt/usableKey.js";
import { b64url, buildToken, createFixture, createKeys, referenceOptions, referenceVerify, TokenGenerator, type Fixture } from "../differential/generate.js";

const generateKeyPairAsync = promisify(generateKeyPair);
const nowS = () => Math.floor(Date.now() / 1000);

const ISS = "https://idp.unit.test";
const AUD = "unit-api";

interface TestKey {
  alg: string;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
  fast: FastKey;
}

function testKey(alg: string, kid: string, pair: { privateKey: KeyObject; publicKey: KeyObject }, extra: Record<string, unknown> = { alg, use: "sig" }): TestKey {
  const jwk = { ...(pair.publicKey.export({ format: "jwk" }) as JWK), kid, ...extra } as JWK;
  const fast = createFastKey(jwk);
  assert.ok(fast, `createFastKey refused ${kid}`);
  return { alg, kid, ...pair, jwk, fast };
}

/** The same key published with other JWK members. */
function republish(key: TestKey, members: Record<string, unknown>): FastKey {
  const jwk = { ...key.jwk, ...members } as Record<string, unknown>;
  for (const [name, value] of Object.entries(members)) if (value === undefined) delete jwk[name];
  return { key: key.publicKey, jwk };
}

const keys: Record<string, TestKey> = {};
let rsa1024: TestKey;

before(
  async () => {
    const [rs, ps, rs2, small] = await Promise.all([
      generateKeyPairAsync("rsa", { modulusLength: 2048 }),
      generateKeyPairAsync("rsa", { modulusLength: 3072 }),
      generateKeyPairAsync("rsa", { modulusLength: 2048 }),
      generateKeyPairAsync("rsa", { modulusLength: 1024 }),
    ]);
    for (const alg of ["RS256", "RS384", "RS512"]) keys[alg] = testKey(alg, `k-${alg}`, rs);
    for (const alg of ["PS256", "PS384", "PS512"]) keys[alg] = testKey(alg, `k-${alg}`, ps);
    keys["RS256-other"] = testKey("RS256", "k-RS256", rs2);
    keys["ES256"] = testKey("ES256", "k-ES256", generateKeyPairSync("ec", { namedCurve: "P-256" }));
    keys["ES256-other"] = testKey("ES256", "k-ES256", generateKeyPairSync("ec", { namedCurve: "P-256" }));
    keys["ES384"] = testKey("ES384", "k-ES384", generateKeyPairSync("ec", { namedCurve: "P-384" }));
    keys["ES512"] = testKey("ES512", "k-ES512", generateKeyPairSync("ec", { namedCurve: "P-521" }));
    keys["EdDSA"] = testKey("EdDSA", "k-EdDSA", generateKeyPairSync("ed25519"));
    keys["Ed25519"] = testKey("Ed25519", "k-Ed25519", generateKeyPairSync("ed25519"));
    keys["secp256k1"] = testKey("ES256", "k-k1", generateKeyPairSync("ec", { namedCurve: "secp256k1" }), { use: "sig" });
    keys["Ed448"] = testKey("EdDSA", "k-Ed448", generateKeyPairSync("ed448"), { use: "sig" });
    rsa1024 = testKey("RS256", "k-small", small);
  },
  { timeout: 60_000 },
);

const policy = (overrides: Partial<FastPolicy> = {}): FastPolicy => ({
  issuer: ISS,
  audience: [AUD],
  algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"],
  clockTolerance: 5,
  requiredClaims: ["exp", "sub"],
  ...overrides,
});

const claims = (now: number, extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, sub: "alice", iat: now - 10, exp: now + 300, ...extra });

/** A token signed with node:crypto over exactly this header and payload. */
function raw(key: TestKey, header: Record<string, unknown> | string | Buffer, payload: Record<string, unknown> | string | Buffer, signAlg = key.alg): string {
  return buildToken(header, payload, signAlg, key.privateKey);
}

const hdr = (key: TestKey, extra: Record<string, unknown> = {}) => ({ alg: key.alg, kid: key.kid, typ: "JWT", ...extra });

function joseOptions(p: FastPolicy, now: number): JWTVerifyOptions {
  return {
    issuer: p.issuer,
    audience: [...p.audience],
    algorithms: [...p.algorithms],
    clockTolerance: p.clockTolerance,
    requiredClaims: [...p.requiredClaims],
    ...(p.maxTokenAge === undefined ? {} : { maxTokenAge: p.maxTokenAge }),
    ...(p.typ === undefined ? {} : { typ: p.typ }),
    currentDate: new Date(now * 1000),
  };
}

/** jose's decision with a JWKS of this JWK alone: the payload, or undefined when it refuses. */
async function joseVerdict(token: string, jwk: Record<string, unknown>, p: FastPolicy, now: number): Promise<Record<string, unknown> | undefined> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: [jwk as JWK] }), joseOptions(p, now));
    return payload;
  } catch {
    return undefined;
  }
}

function fast(token: string, key: FastKey, p: FastPolicy, now: number): Record<string, unknown> | undefined {
  const decoded = decodeJws(token);
  return decoded === undefined ? undefined : fastVerify(decoded, key, p, now);
}

/** Both accept, with the same payload. */
async function accepted(token: string, key: FastKey, p: FastPolicy = policy(), now = nowS()): Promise<Record<string, unknown>> {
  const mine = fast(token, key, p, now);
  const theirs = await joseVerdict(token, key.jwk, p, now);
  assert.ok(theirs, "jose refused the token (test setup)");
  assert.ok(mine, "fastVerify deferred on an ordinary valid token");
  assert.deepStrictEqual(mine, theirs);
  return mine;
}

/** fastVerify defers; `jose` says what jose does ("rejects" for every rejection rule, "accepts" where deferring is merely conservative). */
async function deferred(token: string, key: FastKey, jose: "rejects" | "accepts", p: FastPolicy = policy(), now = nowS()): Promise<void> {
  assert.equal(fast(token, key, p, now), undefined, "fastVerify accepted");
  const theirs = await joseVerdict(token, key.jwk, p, now);
  if (jose === "rejects") assert.equal(theirs, undefined, "jose accepted (test setup)");
  else assert.ok(theirs, "jose refused (test setup)");
}

// ---------------------------------------------------------------------------

describe("decodeJws", () => {
  it("splits and decodes once: header, payload, signing input, signature (its segment, length and bytes)", async () => {
    const now = nowS();
    const token = await new SignJWT(claims(now)).setProtectedHeader({ alg: "ES256", kid: "k-ES256", typ: "JWT" }).sign(keys["ES256"]!.privateKey);
    const decoded = decodeJws(token);
    assert.ok(decoded);
    assert.deepStrictEqual({ ...decoded.header }, { alg: "ES256", kid: "k-ES256", typ: "JWT" });
    assert.deepStrictEqual(decoded.payload, claims(now));
    assert.equal(decoded.token, token);
    assert.equal(decoded.signingInputEnd, token.lastIndexOf("."));
    assert.deepStrictEqual(Buffer.from(signingInputView(decoded.token, decoded.signingInputEnd)), Buffer.from(token.slice(0, token.lastIndexOf(".")), "ascii"));
    assert.equal(decoded.signature, token.split(".")[2]);
    const bytes = base64url.decode(token.split(".")[2]!);
    assert.equal(decoded.signatureLength, bytes.length);
    assert.deepStrictEqual(new Uint8Array(signatureView(decoded.signature)), bytes);
    // Still its bytes once another token has taken the shared buffer (a token held across a wait).
    const other = decodeJws(raw(keys["ES256"]!, hdr(keys["ES256"]!), { n: 1 }));
    assert.ok(other);
    assert.notDeepStrictEqual(new Uint8Array(signatureView(other.signature)), bytes);
    assert.deepStrictEqual(new Uint8Array(signatureView(decoded.signature)), bytes);
  });

  it("shares a frozen header object between tokens with the same header segment", () => {
    const a = decodeJws(raw(keys["ES256"]!, hdr(keys["ES256"]!), { n: 1 }));
    const b = decodeJws(raw(keys["ES256"]!, hdr(keys["ES256"]!), { n: 2 }));
    assert.ok(a && b);
    assert.equal(a.header, b.header);
    assert.ok(Object.isFrozen(a.header));
    assert.notEqual(a.payload, b.payload);
  });

  it("reads each token's own header when header segments of one length alternate, or one is a prefix of another", () => {
    const key = keys["ES256"]!;
    // Same length, differing only near the end of the segment: the header found last must not answer for the other.
    const headers = [{ alg: "ES256", kid: "k-1" }, { alg: "ES256", kid: "k-2" }, { alg: "ES256", kid: "k-3" }];
    const segments = headers.map((header) => base64url.encode(JSON.stringify(header)));
    assert.ok(segments.every((segment) => segment.length === segments[0]!.length) && new Set(segments).size === 3, "premise: distinct segments of one length");
    for (let round = 0; round < 3; round++) {
      for (const [index, header] of headers.entries()) {
        const decoded = decodeJws(raw(key, header, { n: round }));
        assert.deepStrictEqual({ ...decoded?.header }, header, `round ${round}, header ${index}`);
      }
    }
    // A segment that begins with the one found last (white space after the JSON, which both jose and JSON.parse accept).
    const short = '{"alg":"ES256","kid":"k-9"}';
    const long = `${short.slice(0, -1)},"typ":"JWT"}`;
    const padded = `${short}   `;
    assert.ok(base64url.encode(padded).startsWith(base64url.encode(short)), "premise: one segment a prefix of the other");
    for (const text of [short, padded, short, long, short]) {
      const token = raw(key, text, { sub: "a" });
      const decoded = decodeJws(token);
      assert.ok(decoded, text);
      assert.deepStrictEqual({ ...decoded.header }, JSON.parse(text), text);
      assert.equal(decoded.signingInputEnd, token.lastIndexOf("."));
    }
  });

  it("returns undefined for anything but three non-empty base64url segments", () => {
    const good = raw(keys["ES256"]!, hdr(keys["ES256"]!), { sub: "a" });
    const [h, p, s] = good.split(".") as [string, string, string];
    for (const bad of [
      "",
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `${h}.${p}.`,
      `.${p}.${s}`,
      `${h}..${s}`,
      `${h}.${p}.${s}=`,
      `${h}.${p}.${s.slice(0, 10)}+${s.slice(11)}`,
      `${h}.${p}.${s.slice(0, 10)}/${s.slice(11)}`,
      ` ${good}`,
      `${good}\n`,
      `${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`,
      `${h}.${p}.${s.slice(0, 10)}\u00e9${s.slice(10)}`,
      good.replace(".", "%2E"),
    ]) {
      assert.equal(decodeJws(bad), undefined, JSON.stringify(bad.slice(0, 40)));
    }
    assert.equal(decodeJws(123 as unknown as string), undefined);
    assert.equal(decodeJws(undefined as unknown as string), undefined);
  });

  // decodeJws proves the package's shape without the COMPACT_JWS regex (ASCII only, no "+" or "/", each
  // segment decoding to the length its characters imply): it must never take a token the regex refuses.
  it("never decodes a token COMPACT_JWS refuses: any other character (ASCII, Latin-1, wide characters, surrogates) replacing or added at the start, middle or end of each segment", () => {
    const good = raw(keys["ES256"]!, hdr(keys["ES256"]!), { sub: "a" });
    assert.ok(decodeJws(good) && COMPACT_JWS.test(good), "premise: the unmutated token decodes");
    const parts = good.split(".");
    const wide = [0x141, 0x100 | 0x2d, 0x100 | 0x5f, 0x100 | 0x2e, 0x2041, 0x3061, 0xff21, 0xff41, 0xff55, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfeff, 0xfffd];
    const characters = [...Array.from({ length: 256 }, (_, code) => String.fromCharCode(code)), ...wide.map((code) => String.fromCharCode(code)), "\u{1f600}"].filter(
      (character) => !/^[A-Za-z0-9_-]$/.test(character),
    );
    let checked = 0;
    for (const character of characters) {
      for (const [index, segment] of parts.entries()) {
        for (const at of [0, segment.length >> 1, segment.length - 1, segment.length]) {
          for (const replace of [true, false]) {
            const mutated = segment.slice(0, at) + character + segment.slice(replace ? at + 1 : at);
            const token = parts.map((part, i) => (i === index ? mutated : part)).join(".");
            assert.equal(COMPACT_JWS.test(token), false, "premise");
            assert.equal(decodeJws(token), undefined, `U+${character.codePointAt(0)!.toString(16)} in segment ${index} at ${at}${replace ? " (replacing)" : ""}`);
            checked++;
          }
        }
      }
    }
    assert.equal(checked, characters.length * parts.length * 8);
  });

  it("never decodes a look-alike that Buffer would read as the same bytes: a character replaced by one with the same low byte, '-' and '_' by the standard alphabet's '+' and '/'", () => {
    const good = raw(keys["RS256"]!, hdr(keys["RS256"]!), { sub: "a", list: ["x", "y"] });
    const parts = good.split(".");
    let checked = 0;
    for (const [index, segment] of parts.entries()) {
      for (let at = 0; at < segment.length; at++) {
        const code = segment.charCodeAt(at);
        const twins = [0x100 | code, 0xff00 | code, 0x3000 | code];
        if (code === 0x2d) twins.push(0x2b); // "-" and "+" are both 62
        if (code === 0x5f) twins.push(0x2f); // "_" and "/" are both 63
        for (const twin of twins) {
          const mutated = segment.slice(0, at) + String.fromCharCode(twin) + segment.slice(at + 1);
          assert.ok(Buffer.from(mutated, "base64url").equals(Buffer.from(segment, "base64url")), "premise: Buffer decodes both alike");
          const token = parts.map((part, i) => (i === index ? mutated : part)).join(".");
          assert.equal(COMPACT_JWS.test(token), false, "premise");
          assert.equal(decodeJws(token), undefined, `U+${twin.toString(16)} for ${segment[at]} in segment ${index} at ${at}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 1000);
  });

  it("decodes exactly the tokens COMPACT_JWS accepts, among short strings over the alphabet plus '.', '=', '+', '/', ' ' and 'é'", () => {
    // Every string of up to 5 characters over these symbols, as the three segments of a token (with a fixed header and payload).
    const symbols = ["A", "Q", "-", "_", ".", "=", "+", "/", " ", "\u00e9", "\u0141"];
    const head = b64url('{"alg":"ES256"}');
    const body = b64url("{}");
    let strings = [""];
    let all: string[] = [""];
    for (let length = 1; length <= 4; length++) {
      strings = strings.flatMap((prefix) => symbols.map((symbol) => prefix + symbol));
      all = all.concat(strings);
    }
    for (const tail of all) {
      const token = `${head}.${body}.${tail}`;
      const decoded = decodeJws(token);
      if (decoded !== undefined) assert.ok(COMPACT_JWS.test(token), JSON.stringify(tail));
      else if (COMPACT_JWS.test(token)) assert.equal(tail.length % 4, 1, `declined an acceptable signature segment ${JSON.stringify(tail)}`);
    }
  });

  it("returns undefined for a segment whose length is 1 mod 4 (jose's decoder throws; Buffer would drop the character)", () => {
    const good = raw(keys["ES256"]!, hdr(keys["ES256"]!), { sub: "a" });
    const parts = good.split(".");
    // Valid base64url lengths are 0, 2 or 3 mod 4: append "A"s up to 1 mod 4.
    const stretch = (segment: string) => segment + "A".repeat((1 - (segment.length % 4) + 4) % 4);
    for (const [index, name] of ["header", "payload", "signature"].entries()) {
      const stretched = parts.map((part, i) => (i === index ? stretch(part) : part));
      const token = stretched.join(".");
      const segment = stretched[index]!;
      assert.equal(segment.length % 4, 1, name);
      assert.throws(() => base64url.decode(segment), TypeError, `jose decodes a ${name} of length 1 mod 4`);
      assert.equal(decodeJws(token), undefined, name);
    }
  });

  it("decodes every last-character variant of a segment to the same bytes jose does (the unused low bits)", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (const base of ["QUJD", "QUI", "QQ", "QUJDRA", "QUJDREU"]) {
      for (const c of alphabet) {
        const segment = base.slice(0, -1) + c;
        const token = `${b64url('{"alg":"ES256"}')}.${b64url("{}")}.${segment}`;
        const decoded = decodeJws(token);
        assert.ok(decoded, segment);
        assert.deepStrictEqual(new Uint8Array(signatureView(decoded.signature)), base64url.decode(segment), segment);
      }
    }
  });

  it("returns undefined for invalid UTF-8 in the header or the payload (jose decodes with a fatal TextDecoder)", () => {
    const key = keys["ES256"]!;
    for (const bytes of ["\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf8\x88\x80\x80\x80"]) {
      const text = Buffer.concat([Buffer.from('{"sub":"'), Buffer.from(bytes, "latin1"), Buffer.from('"}')]);
      assert.equal(decodeJws(raw(key, hdr(key), text)), undefined, `payload ${JSON.stringify(bytes)}`);
      const header = Buffer.concat([Buffer.from(`{"alg":"ES256","x":"`), Buffer.from(bytes, "latin1"), Buffer.from('"}')]);
      assert.equal(decodeJws(raw(key, header, { sub: "a" })), undefined, `header ${JSON.stringify(bytes)}`);
    }
    // Valid multi-byte UTF-8 is fine, U+FFFD itself included (the lossy decoder's replacement character).
    const decoded = decodeJws(raw(key, hdr(key), { sub: "Zoë 😀" }));
    assert.equal(decoded?.payload["sub"], "Zoë 😀");
    assert.equal(decodeJws(raw(key, hdr(key), { sub: "a\uFFFDb" }))?.payload["sub"], "a\uFFFDb");
    const invalidAndReplacement = Buffer.concat([Buffer.from('{"sub":"\uFFFD'), Buffer.from("\xff", "latin1"), Buffer.from('"}')]);
    assert.equal(decodeJws(raw(key, hdr(key), invalidAndReplacement)), undefined, "an encoded U+FFFD does not vouch for an invalid byte");
  });

  it("returns undefined when the header or payload is not a JSON object", () => {
    const key = keys["ES256"]!;
    for (const text of ["[]", "null", "42", '"x"', "true", "", "{", "{} x", '{"a":1}}']) {
      assert.equal(decodeJws(raw(key, hdr(key), text)), undefined, `payload ${text}`);
      assert.equal(decodeJws(raw(key, text, { sub: "a" })), undefined, `header ${text}`);
    }
  });

  it("never throws, whatever the input", () => {
    const samples = ["a.b.c", "..", "a.b.c.d", "eyJ.eyJ.x", "\u0000.\u0000.\u0000", "A".repeat(20_000), `${b64url("{")}.${b64url("{")}.AA`];
    for (let i = 0; i < 2000; i++) {
      const length = i % 64;
      let s = "";
      for (let j = 0; j < length; j++) s += "ABCabc019-_.=+/ \u00e9{}\"".charAt((i * 31 + j * 17) % 22);
      samples.push(s);
    }
    for (const sample of samples) assert.doesNotThrow(() => decodeJws(sample));
  });
});

describe("signingInputView", () => {
  it("gives the latin1 bytes of the token's first characters, ASCII or not, short or over the scratch region", () => {
    const inputs = ["eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", "a.b", "x".repeat(16 * 1024 + 5), "caf\u00e9.x", "\u0100bc.d", "ab\ud800.c", "\u00ff".repeat(9000)];
    for (const input of inputs) {
      const token = `${input}.c2ln`;
      for (const length of [input.length, Math.floor(input.length / 2)]) {
        const view = signingInputView(token, length);
        assert.deepEqual(Buffer.from(view), Buffer.from(input.slice(0, length), "latin1"), `${JSON.stringify(input.slice(0, 12))} (${input.length} characters, first ${length})`);
      }
    }
  });

  it("gives the bytes of the token asked for, not of the one asciiToken copied last", () => {
    const first = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    const second = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiIn0.c2ln";
    assert.equal(asciiToken(first), true);
    assert.equal(asciiToken(second), true);
    assert.equal(Buffer.from(signingInputView(first, 36)).toString("latin1"), first.slice(0, 36));
    assert.equal(Buffer.from(signingInputView(second, 36)).toString("latin1"), second.slice(0, 36));
    assert.equal(asciiToken("caf\u00e9.x.y"), false);
    assert.equal(asciiToken("\u0100bc.d.e"), false);
    assert.equal(asciiToken("x".repeat(16 * 1024 + 5)), true);
    assert.equal(asciiToken(`${"x".repeat(16 * 1024 + 5)}\u00e9`), false);
  });
});

describe("fastVerify: accepts ordinary valid tokens, like jose", () => {
  for (const alg of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]) {
    it(`${alg}, signed by jose`, async () => {
      const key = keys[alg]!;
      const now = nowS();
      const token = await new SignJWT(claims(now, { roles: ["a"] })).setProtectedHeader({ alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey);
      const payload = await accepted(token, key.fast, policy(), now);
      assert.equal(payload["sub"], "alice");
    });
  }

  it("a key whose JWK has no alg, use or kid restrictions serves every alg of its type (no kid in the header)", async () => {
    const now = nowS();
    const bare = republish(keys["RS256"]!, { alg: undefined, use: undefined, kid: undefined });
    for (const alg of ["RS256", "RS384", "PS512"]) await accepted(raw(keys["RS256"]!, { alg }, claims(now), alg), bare, policy(), now);
    const ed = republish(keys["EdDSA"]!, { alg: undefined });
    await accepted(raw(keys["EdDSA"]!, { alg: "Ed25519", kid: "k-EdDSA" }, claims(now), "Ed25519"), ed, policy(), now);
  });

  it('key_ops ["verify"] and a boolean ext are fine', async () => {
    const now = nowS();
    const key = keys["ES256"]!;
    await accepted(raw(key, hdr(key), claims(now)), republish(key, { key_ops: ["verify"], ext: true }), policy(), now);
    await accepted(raw(key, hdr(key), claims(now)), republish(key, { ext: false }), policy(), now);
  });

  it("header typ is ignored unless the policy asks for one; then compared like jose's normalizeTyp", async () => {
    const now = nowS();
    const key = keys["ES256"]!;
    for (const typ of [undefined, "JWT", 42, null, { a: 1 }]) {
      const h: Record<string, unknown> = { alg: "ES256", kid: key.kid };
      if (typ !== undefined) h["typ"] = typ;
      await accepted(raw(key, h, claims(now)), key.fast, policy(), now);
    }
    const strict = policy({ typ: "at+jwt" });
    for (const typ of ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"]) await accepted(raw(key, hdr(key, { typ }), claims(now)), key.fast, strict, now);
    for (const typ of ["JWT", "at+jwt ", "application/jwt", "vnd.at+jwt", "application/at+jwt;x", "x/at+jwt"]) await deferred(raw(key, hdr(key, { typ }), claims(now)), key.fast, "rejects", strict, now);
    await deferred(raw(key, { alg: "ES256", kid: key.kid }, claims(now)), key.fast, "rejects", strict, now);
    await deferred(raw(key, hdr(key, { typ: 5 }), claims(now)), key.fast, "rejects", strict, now);
  });

  it("a signature whose last character differs only in unused bits decodes to the same bytes: accepted, as jose does", async () => {
    const now = nowS();
    const key = keys["RS256"]!; // a 256-byte signature is 342 characters: the last one carries 4 unused bits
    const token = raw(key, hdr(key), claims(now));
    const [h, p, s] = token.split(".") as [string, string, string];
    let variants = 0;
    for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
      const other = `${h}.${p}.${s.slice(0, -1)}${c}`;
      const same = Buffer.from(s.slice(0, -1) + c, "base64url").equals(Buffer.from(s, "base64url"));
      if (same) {
        variants++;
        await accepted(other, key.fast, policy(), now);
      } else await deferred(other, key.fast, "rejects", policy(), now);
    }
    assert.ok(variants > 1, "the last character has unused bits");
  });
});

describe("fastVerify: defers on unusual headers", () => {
  for (const [name, value] of [
    ["crit", ["exp"]],
    ["b64", true],
    ["jwk", { kty: "EC" }],
    ["jku", "https://evil.test/jwks"],
    ["x5c", ["MIIB"]],
    ["x5u", "https://evil.test/cert"],
    ["x5t", "abc"],
    ["cty", "JWT"],
    ["zip", "DEF"],
    ["foo", 1],
    ["__proto__", { alg: "none" }],
  ] as const) {
    it(`a "${name}" member`, async () => {
      const now = nowS();
      const key = keys["ES256"]!;
      const token = raw(key, JSON.stringify(hdr(key)).replace("{", `{${JSON.stringify(name)}:${JSON.stringify(value)},`), claims(now));
      // jose refuses crit it does not know; it ignores the others (deferring to it is merely conservative).
      await deferred(token, key.fast, name === "crit" ? "rejects" : "accepts", policy(), now);
    });
  }

  it('crit ["b64"] with b64 false or true', async () => {
    const now = nowS();
    const key = keys["ES256"]!;
    await deferred(raw(key, hdr(key, { crit: ["b64"], b64: false }), claims(now)), key.fast, "rejects", policy(), now);
    await deferred(raw(key, hdr(key, { crit: ["b64"], b64: true }), claims(now)), key.fast, "accepts", policy(), now);
  });

  it("alg outside the allow-list, unknown, none, HS256 with the public key as secret, or not a string", async () => {
    const now = nowS();
    const key = keys["RS256"]!;
    await deferred(raw(key, hdr(key), claims(now)), key.fast, "rejects", policy({ algorithms: ["ES256", "PS256"] }), now);
    const pem = Buffer.from(key.publicKey.export({ type: "spki", format: "pem" }) as string);
    const hs = buildToken({ alg: "HS256", kid: key.kid }, claims(now), "HS256", pem);
    await deferred(hs, key.fast, "rejects", policy({ algorithms: ["HS256", "RS256"] }), now);
    const payload = b64url(JSON.stringify(claims(now)));
    for (const alg of ["none", "None", "rs256", "RS256 ", "", "ML-DSA-44"]) await deferred(`${b64url(JSON.stringify({ alg, kid: key.kid }))}.${payload}.AAAA`, key.fast, "rejects", policy({ algorithms: [...policy().algorithms, alg] }), now);
    for (const alg of [null, 256, ["RS256"]]) await deferred(raw(key, { alg, kid: key.kid }, claims(now), "RS256"), key.fast, "rejects", policy(), now);
    assert.equal(fastAlgorithm("HS256"), false);
    assert.equal(fastAlgorithm("none"), false);
    assert.equal(fastAlgorithm("ES256"), true);
  });

  it("a kid that is not the JWK's (or not a string), and a JWK without kid when the header has one", async () => {
    const now = nowS();
    const key = keys["ES256"]!;
    for (const kid of ["other", "", 5, null, ["k-ES256"], "K-ES256"]) await deferred(raw(key, hdr(key, { kid }), claims(now)), key.fast, "rejects", policy(), now);
    await deferred(raw(key, hdr(key), claims(now)), republish(key, { kid: undefined }), "rejects", policy(), now);
  });
});

describe("fastVerify: the checks it remembers for a header, key and policy", () => {
  const now = nowS();
  it("checks a shared header afresh with another key or another policy, and accepts again with the first ones", () => {
    const key = keys["RS256"]!;
    const rules = Object.freeze(policy({ algorithms: Object.freeze(["RS256"]) }));
    const first = decodeJws(raw(key, hdr(key), claims(now)));
    assert.ok(first && Object.isFrozen(first.header));
    assert.ok(fastVerify(first, key.fast, rules, now), "an ordinary token with its key and rules is accepted");
    // Same frozen header object and key material; only the JWK (its use), then only the rules differ.
    const encKey = createFastKey({ ...key.jwk, use: "enc" });
    assert.ok(encKey);
    const second = decodeJws(raw(key, hdr(key), claims(now, { n: 2 })));
    assert.ok(second);
    assert.equal(second.header, first.header);
    assert.equal(fastVerify(second, encKey, rules, now), undefined, "a key published for encryption is not used");
    const esOnly = Object.freeze(policy({ algorithms: Object.freeze(["ES256"]) }));
    const third = decodeJws(raw(key, hdr(key), claims(now, { n: 3 })));
    assert.ok(third);
    assert.equal(fastVerify(third, key.fast, esOnly, now), undefined, "an alg outside the allow-list is not accepted");
    const fourth = decodeJws(raw(key, hdr(key), claims(now, { n: 4 })));
    assert.ok(fourth);
    assert.ok(fastVerify(fourth, key.fast, rules, now));
    // A valid signature is still checked per token, and so are the claims.
    const forged = decodeJws(`${raw(key, hdr(key), claims(now, { n: 5 })).split(".").slice(0, 2).join(".")}.${fourth.signature}`);
    assert.ok(forged);
    assert.equal(fastVerify(forged, key.fast, rules, now), undefined);
    const expired = decodeJws(raw(key, hdr(key), claims(now, { exp: now - 100 })));
    assert.ok(expired);
    assert.equal(fastVerify(expired, key.fast, rules, now), undefined);
  });

  it("createFastKey keeps a frozen copy of the JWK: changing the published object later changes nothing", () => {
    const key = keys["ES256"]!;
    const jwk = { ...key.jwk, key_ops: ["verify"] } as Record<string, unknown>;
    const fast = createFastKey(jwk);
    assert.ok(fast);
    assert.ok(Object.isFrozen(fast.jwk) && Object.isFrozen(fast.jwk["key_ops"]));
    (jwk["key_ops"] as string[])[0] = "encrypt";
    jwk["use"] = "enc";
    assert.deepStrictEqual(fast.jwk["key_ops"], ["verify"]);
    assert.equal(fast.jwk["use"], "sig");
  });
});

describe("fastVerify: defers on keys jose would not use for the alg", () => {
  const now = nowS();
  it("JWK alg naming another algorithm", async () => {
    const key = keys["RS256"]!;
    await deferred(raw(key, hdr(key), claims(now)), republish(key, { alg: "PS256" }), "rejects", policy(), now);
    await deferred(raw(key, hdr(key, { alg: "PS256" }), claims(now), "PS256"), key.fast, "rejects", policy(), now);
    const ed = keys["EdDSA"]!; // published with alg EdDSA: not usable for the Ed25519 alg
    await deferred(raw(ed, hdr(ed, { alg: "Ed25519" }), claims(now), "Ed25519"), ed.fast, "rejects", policy(), now);
  });

  it('use other than "sig"', async () => {
    const key = keys["ES256"]!;
    for (const use of ["enc", "SIG", ""]) await deferred(raw(key, hdr(key), claims(now)), republish(key, { use }), "rejects", policy(), now);
  });

  it('key_ops other than ["verify"]', async () => {
    const key = keys["ES256"]!;
    // jose: not usable without "verify"; with "sign" too, WebCrypto refuses to import a public key for signing.
    for (const key_ops of [["sign"], [], ["verify", "sign"], ["verify", "verify"], "verify", [1]]) {
      await deferred(raw(key, hdr(key), claims(now)), republish(key, { key_ops }), "rejects", policy(), now);
    }
    // Unknown operations next to "verify": jose imports with those usages and WebCrypto decides; we defer either way.
    assert.equal(fast(raw(key, hdr(key), claims(now)), republish(key, { key_ops: ["verify", "x-custom"] }), policy(), now), undefined);
  });

  it("ext that is not a boolean", async () => {
    const key = keys["ES256"]!;
    await deferred(raw(key, hdr(key), claims(now)), republish(key, { ext: "true" }), "rejects", policy(), now);
  });

  it("kty or crv that does not fit the alg (and a KeyObject of another type than the JWK says)", async () => {
    const es = keys["ES256"]!;
    const rs = keys["RS256"]!;
    // An ES256 token checked with the P-384 key, the secp256k1 key, the RSA key.
    for (const other of [keys["ES384"]!, keys["secp256k1"]!, rs]) {
      await deferred(raw(es, hdr(es), claims(now)), { key: other.publicKey, jwk: { ...other.jwk, alg: undefined, kid: es.kid } }, "rejects", policy(), now);
    }
    // EdDSA with an Ed448 key: jose only allows Ed25519 for the alg.
    const ed448 = keys["Ed448"]!;
    await deferred(raw(ed448, { alg: "EdDSA", kid: ed448.kid }, claims(now), "EdDSA"), ed448.fast, "rejects", policy(), now);
    // The JWK claims P-256 but the KeyObject is another key type.
    assert.equal(fast(raw(es, hdr(es), claims(now)), { key: keys["EdDSA"]!.publicKey, jwk: es.jwk }, policy(), now), undefined);
    assert.equal(fast(raw(es, hdr(es), claims(now)), { key: keys["ES384"]!.publicKey, jwk: es.jwk }, policy(), now), undefined);
  });

  it("RSA under 2048 bits (jose refuses them)", async () => {
    await deferred(raw(rsa1024, hdr(rsa1024), claims(now)), rsa1024.fast, "rejects", policy(), now);
  });

  it("a JWK with private members, or a private KeyObject", async () => {
    const key = keys["ES256"]!;
    const privateJwk = key.privateKey.export({ format: "jwk" }) as Record<string, unknown>;
    const token = raw(key, hdr(key), claims(now));
    await deferred(token, { key: key.publicKey, jwk: { ...key.jwk, d: privateJwk["d"] } }, "rejects", policy(), now);
    assert.equal(fast(token, { key: key.privateKey, jwk: key.jwk }, policy(), now), undefined);
    assert.equal(createFastKey({ ...key.jwk, d: privateJwk["d"] }), undefined);
    assert.equal(createFastKey({ kty: "oct", k: "AAAA" }), undefined);
    assert.equal(createFastKey({ kty: "EC", crv: "P-256", x: "AAAA", y: "AAAA" }), undefined);
  });

  it("createFastKey refuses a JWK WebCrypto refuses to import (an EC point off the curve)", async () => {
    const jwk = keys["ES256"]!.jwk as Record<string, unknown>;
    const y = Buffer.from(jwk["y"] as string, "base64url");
    y[31]! ^= 1;
    const offCurve = { ...jwk, y: y.toString("base64url") };
    assert.equal(createFastKey(offCurve), undefined);
    await assert.rejects(crypto.subtle.importKey("jwk", { ...offCurve, alg: undefined, use: undefined } as JsonWebKey, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]));
  });

  it("isUsableJwk mirrors jose's candidate rule", () => {
    const es = keys["ES256"]!.jwk as Record<string, unknown>;
    assert.equal(isUsableJwk(es, "ES256", "k-ES256"), true);
    assert.equal(isUsableJwk(es, "ES256", undefined), true);
    assert.equal(isUsableJwk(es, "ES256", "other"), false);
    assert.equal(isUsableJwk(es, "ES256", 5), false);
    assert.equal(isUsableJwk(es, "ES384", undefined), false);
    assert.equal(isUsableJwk(es, "RS256", undefined), false);
    assert.equal(isUsableJwk(es, "HS256", undefined), false);
    assert.equal(isUsableJwk({ ...es, use: "enc" }, "ES256", undefined), false);
    assert.equal(isUsableJwk({ ...es, key_ops: ["sign"] }, "ES256", undefined), false);
    assert.equal(isUsableJwk({ ...es, key_ops: ["verify", "sign"] }, "ES256", undefined), true);
    assert.equal(isUsableJwk({ ...es, ext: 1 }, "ES256", undefined), false);
    assert.equal(isUsableJwk({ ...es, alg: undefined }, "ES256", undefined), true);
  });
});

describe("fastVerify: claims, mirroring jose's validateClaimsSet", () => {
  const key = () => keys["ES256"]!;
  const token = (c: Record<string, unknown>, h: Record<string, unknown> = hdr(key())) => raw(key(), h, c);

  it("exp: accepted while exp > now - tolerance, deferred from exp <= now - tolerance", async () => {
    const now = nowS();
    for (const [offset, ok] of [[-4, true], [-4.5, true], [-5, false], [-5.5, false], [-6, false], [-1000, false]] as const) {
      const t = token(claims(now, { exp: now + offset }));
      if (ok) await accepted(t, key().fast, policy(), now);
      else await deferred(t, key().fast, "rejects", policy(), now);
    }
    // A clockTolerance of 0 and a fractional one.
    await deferred(token(claims(now, { exp: now })), key().fast, "rejects", policy({ clockTolerance: 0 }), now);
    await accepted(token(claims(now, { exp: now - 2 })), key().fast, policy({ clockTolerance: 2.5 }), now);
    await deferred(token(claims(now, { exp: now - 2.5 })), key().fast, "rejects", policy({ clockTolerance: 2.5 }), now);
  });

  it("nbf: accepted while nbf <= now + tolerance", async () => {
    const now = nowS();
    for (const [offset, ok] of [[5, true], [4.5, true], [5.5, false], [6, false], [-100, true]] as const) {
      const t = token(claims(now, { nbf: now + offset }));
      if (ok) await accepted(t, key().fast, policy(), now);
      else await deferred(t, key().fast, "rejects", policy(), now);
    }
  });

  it("iat and maxTokenAge: too old, in the future, missing, boundaries", async () => {
    const now = nowS();
    const p = policy({ maxTokenAge: 60 });
    for (const [offset, ok] of [[-65, true], [-65.5, false], [-66, false], [5, true], [5.5, false], [6, false], [0, true]] as const) {
      const t = token(claims(now, { iat: now + offset }));
      if (ok) await accepted(t, key().fast, p, now);
      else await deferred(t, key().fast, "rejects", p, now);
    }
    const { iat: _iat, ...noIat } = claims(now);
    await deferred(token(noIat), key().fast, "rejects", p, now);
    await accepted(token(noIat), key().fast, policy(), now);
    // Without maxTokenAge, a future iat is fine for jose (and so here).
    await accepted(token(claims(now, { iat: now + 1000 })), key().fast, policy(), now);
  });

  it("exp, nbf, iat present but not numbers", async () => {
    const now = nowS();
    for (const name of ["exp", "nbf", "iat"]) {
      for (const value of [String(now + 100), null, true, [now], { n: now }]) {
        await deferred(token(claims(now, { [name]: value })), key().fast, "rejects", policy(), now);
      }
    }
  });

  it("exp of 1e400 (Infinity) never expires, nbf of -1e400 is always past: jose accepts, so does this", async () => {
    const now = nowS();
    const json = JSON.stringify(claims(now)).replace(/"exp":\d+/, '"exp":1e400');
    await accepted(raw(key(), hdr(key()), `${json.slice(0, -1)},"nbf":-1e400}`), key().fast, policy(), now);
  });

  it("iss must be exactly the issuer", async () => {
    const now = nowS();
    for (const iss of [`${ISS}/`, ISS.toUpperCase(), [ISS], null, 1, ""]) await deferred(token(claims(now, { iss })), key().fast, "rejects", policy(), now);
    const { iss: _iss, ...noIss } = claims(now);
    await deferred(token(noIss), key().fast, "rejects", policy(), now);
  });

  it("aud: a string among the audiences, or an array containing one of them", async () => {
    const now = nowS();
    const p = policy({ audience: [AUD, "second"] });
    for (const aud of [AUD, "second", [AUD], ["x", "second"], [5, AUD], [null, "y", AUD]]) await accepted(token(claims(now, { aud })), key().fast, p, now);
    for (const aud of ["x", [], ["x"], [[AUD]], 5, null, { 0: AUD }, `${AUD} `, AUD.toUpperCase()]) await deferred(token(claims(now, { aud })), key().fast, "rejects", p, now);
    const { aud: _aud, ...noAud } = claims(now);
    await deferred(token(noAud), key().fast, "rejects", p, now);
  });

  it("required claims must be present (present as null or empty counts as present, as in jose)", async () => {
    const now = nowS();
    const p = policy({ requiredClaims: ["exp", "sub", "jti", "client_id"] });
    await accepted(token(claims(now, { jti: "j", client_id: "c" })), key().fast, p, now);
    await accepted(token(claims(now, { jti: null, client_id: "" })), key().fast, p, now);
    await deferred(token(claims(now, { jti: "j" })), key().fast, "rejects", p, now);
    const { exp: _exp, ...noExp } = claims(now);
    await deferred(token(noExp), key().fast, "rejects", policy(), now);
    const { sub: _sub, ...noSub } = claims(now);
    await deferred(token(noSub), key().fast, "rejects", policy(), now);
    // sub present as a number: jose checks presence only (the package checks the type afterwards).
    await accepted(token(claims(now, { sub: 5 })), key().fast, policy(), now);
  });

  it("a malformed policy defers instead of guessing", () => {
    const now = nowS();
    const t = token(claims(now));
    for (const bad of [
      { clockTolerance: -1 },
      { clockTolerance: Number.NaN },
      { clockTolerance: "5" as unknown as number },
      { maxTokenAge: -1 },
      { maxTokenAge: "1h" as unknown as number },
      { audience: AUD as unknown as string[] },
      { algorithms: "ES256" as unknown as string[] },
      { requiredClaims: "exp" as unknown as string[] },
      { typ: 5 as unknown as string },
    ]) {
      assert.equal(fast(t, key().fast, policy(bad), now), undefined, JSON.stringify(bad));
    }
    assert.equal(fast(t, key().fast, policy(), Number.NaN), undefined);
    assert.ok(fast(t, key().fast, policy(), now));
  });
});

describe("fastVerify: signatures", () => {
  it("the wrong key of the right alg", async () => {
    const now = nowS();
    for (const [signer, verifier] of [
      [keys["RS256-other"]!, keys["RS256"]!],
      [keys["ES256-other"]!, keys["ES256"]!],
      [keys["Ed25519"]!, keys["EdDSA"]!],
    ] as const) {
      await deferred(raw(signer, hdr(verifier), claims(now), verifier.alg), verifier.fast, "rejects", policy(), now);
    }
  });

  it("a bit flipped anywhere, in every family", async () => {
    const now = nowS();
    for (const alg of ["RS256", "PS256", "ES256", "ES384", "EdDSA"]) {
      const key = keys[alg]!;
      const token = raw(key, hdr(key), claims(now));
      const [h, p, s] = token.split(".") as [string, string, string];
      for (const segment of [0, 1, 2]) {
        const parts = [h, p, s];
        const bytes = Buffer.from(parts[segment]!, "base64url");
        bytes[(segment * 7) % bytes.length]! ^= 0x04;
        parts[segment] = bytes.toString("base64url");
        await deferred(parts.join("."), key.fast, "rejects", policy(), now);
      }
    }
  });

  it("signature lengths jose would not accept: truncated, extended, DER instead of raw r||s", async () => {
    const now = nowS();
    for (const alg of ["RS256", "ES256", "ES512", "EdDSA"]) {
      const key = keys[alg]!;
      const token = raw(key, hdr(key), claims(now));
      const input = token.slice(0, token.lastIndexOf("."));
      const sig = Buffer.from(token.slice(token.lastIndexOf(".") + 1), "base64url");
      // (An RSA signature starting with a zero byte may verify without it in OpenSSL: not tried.)
      const variants = [sig.subarray(0, -1), Buffer.concat([Buffer.from([0]), sig]), Buffer.concat([sig, Buffer.from([0])])];
      if (sig[0] !== 0) variants.push(sig.subarray(1));
      for (const variant of variants) {
        await deferred(`${input}.${b64url(variant)}`, key.fast, "rejects", policy(), now);
      }
    }
    const es = keys["ES256"]!;
    const input = `${b64url(JSON.stringify(hdr(es)))}.${b64url(JSON.stringify(claims(now)))}`;
    const der = nodeSign("sha256", Buffer.from(input), es.privateKey);
    await deferred(`${input}.${b64url(der)}`, es.fast, "rejects", policy(), now);
  });

  it("PS256 signed with another salt length, RS256 signature under a PS256 header", async () => {
    const now = nowS();
    const key = keys["PS256"]!;
    const input = `${b64url(JSON.stringify(hdr(key)))}.${b64url(JSON.stringify(claims(now)))}`;
    const maxSalt = nodeSign("sha256", Buffer.from(input), { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
    await deferred(`${input}.${b64url(maxSalt)}`, key.fast, "rejects", policy(), now);
    const pkcs1 = nodeSign("sha256", Buffer.from(input), key.privateKey);
    await deferred(`${input}.${b64url(pkcs1)}`, key.fast, "rejects", policy(), now);
  });

  it("never throws, whatever the decoded token and key", () => {
    const now = nowS();
    const decoded = decodeJws(raw(keys["ES256"]!, hdr(keys["ES256"]!), claims(now)))!;
    const weird: unknown[] = [null, undefined, {}, { key: null, jwk: null }, { key: {}, jwk: {} }, { key: keys["ES256"]!.publicKey, jwk: null }];
    for (const key of weird) assert.equal(fastVerify(decoded, key as FastKey, policy(), now), undefined);
    assert.equal(fastVerify(null as unknown as typeof decoded, keys["ES256"]!.fast, policy(), now), undefined);
    assert.equal(fastVerify({ ...decoded, signature: "x" }, keys["ES256"]!.fast, policy(), now), undefined);
    assert.equal(fastVerify({ ...decoded, signature: 42 as unknown as string }, keys["ES256"]!.fast, policy(), now), undefined);
    assert.equal(fastVerify({ ...decoded, signatureLength: 63 }, keys["ES256"]!.fast, policy(), now), undefined);
    assert.equal(fastVerify(decoded, keys["ES256"]!.fast, null as unknown as FastPolicy, now), undefined);
  });
});

// ---------------------------------------------------------------------------
// Direct differential over generated tokens
// ---------------------------------------------------------------------------

const TOKENS = Number(process.env["DIFFERENTIAL_FAST_TOKENS"] ?? 20_000);
const SEED = process.env["DIFFERENTIAL_SEED"] ? Number(process.env["DIFFERENTIAL_SEED"]) : (Date.now() % 2 ** 31) >>> 0;

describe(`direct differential: fastVerify accepts ⇒ jose accepts, same payload (${TOKENS} generated tokens)`, () => {
  let fx: Fixture;
  before(
    async () => {
      fx = createFixture(await createKeys(), "http://127.0.0.1:9/jwks", { poolSize: 200, seed: SEED });
    },
    { timeout: 60_000 },
  );
  it("holds for every token, every published key, every issuer policy", { timeout: 300_000 }, async (t) => {
    const started = performance.now();
    const published = fx.jwks
      .map((jwk) => ({ jwk, fast: createFastKey(jwk as Record<string, unknown>) }))
      .filter((k): k is { jwk: Record<string, unknown>; fast: FastKey } => k.fast !== undefined);
    const singleKeySets = new Map(published.map((k) => [k.fast, createLocalJWKSet({ keys: [k.jwk as JWK] })]));
    const generator = new TokenGenerator(fx, SEED);
    const violations: string[] = [];
    let fastAccepts = 0;
    let fastTokens = 0;
    let deferredValid = 0;
    const deferredByKind: Record<string, number> = {};
    const ordinaryMissed: string[] = [];

    for (let i = 0; i < TOKENS; i++) {
      const c = generator.next();
      const config = fx.configs[c.config]!;
      const now = nowS();
      const decoded = decodeJws(c.token);
      let acceptedHere = false;
      for (const spec of config.issuers) {
        const options = referenceOptions(spec);
        const p: FastPolicy = {
          issuer: spec.issuer,
          audience: spec.audience,
          algorithms: spec.algorithms,
          clockTolerance: spec.clockTolerance,
          requiredClaims: options.requiredClaims!,
          ...(spec.maxTokenAge === undefined ? {} : { maxTokenAge: spec.maxTokenAge }),
          ...(spec.strict ? { typ: "at+jwt" } : {}),
        };
        for (const key of published) {
          const mine = decoded === undefined ? undefined : fastVerify(decoded, key.fast, p, now);
          if (mine === undefined) continue;
          fastAccepts++;
          acceptedHere = true;
          let theirs: Record<string, unknown> | undefined;
          let why = "";
          try {
            theirs = (await jwtVerify(c.token, singleKeySets.get(key.fast)!, { ...options, currentDate: new Date(now * 1000) })).payload;
          } catch (error) {
            why = String((error as Error).message);
          }
          let same = false;
          try {
            assert.deepStrictEqual(mine, theirs);
            same = true;
          } catch {
            // reported below
          }
          if (!same && violations.length < 20) {
            violations.push(`kind ${c.kind}, key ${String(key.jwk["kid"])}, issuer ${spec.issuer}: fastVerify accepted, jose ${theirs === undefined ? `refused (${why})` : "returned another payload"}\n  ${c.token}`);
          }
        }
      }
      // How often the reference (full JWKS) accepts a token the fast path left to jose.
      if (!acceptedHere) {
        const decision = await referenceVerify(fx, config, c.token, new Date(now * 1000));
        if (decision.accepted) {
          deferredValid++;
          deferredByKind[c.kind] = (deferredByKind[c.kind] ?? 0) + 1;
          // An ordinary token (decodes, header alg/kid/typ only, exactly one usable published key) that jose
          // accepts must not be left to it: the fast path mirrors jose's accept decision, not a stricter one.
          const header = decoded?.header;
          const ordinary =
            header !== undefined &&
            Object.keys(header).every((name) => name === "alg" || name === "kid" || name === "typ") &&
            published.filter((k) => isUsableJwk(k.jwk, header["alg"], header["kid"])).length === 1;
          if (ordinary && ordinaryMissed.length < 10) ordinaryMissed.push(`${c.kind}: ${c.token}`);
        }
      } else fastTokens++;
    }
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(
      `${TOKENS} tokens (seed ${SEED}) in ${seconds.toFixed(1)} s: fastVerify accepted ${fastAccepts} (token, key, issuer) triples on ${fastTokens} tokens, jose agreeing on each; ` +
        `${deferredValid} tokens jose accepts were left to it, by kind ${JSON.stringify(deferredByKind)}`,
    );
    assert.deepStrictEqual(violations, [], violations.join("\n"));
    // Both classes present, and the fast path really covers ordinary tokens.
    assert.ok(fastTokens > TOKENS * 0.2, `fastVerify accepted only ${fastTokens} of ${TOKENS} tokens`);
    assert.ok(TOKENS - fastTokens > TOKENS * 0.3, "too few tokens left to jose: the population lacks hostile tokens");
    assert.deepStrictEqual(ordinaryMissed, [], "valid ordinary tokens (alg/kid/typ header, one usable key) must take the fast path");
  });
});
