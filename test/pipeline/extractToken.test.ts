import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bearerToken, dpopToken, socketToken } from "../../src/pipeline/extractToken.js";

describe("bearerToken", () => {
  it("takes the token after the Bearer scheme, case-insensitively", () => {
    assert.equal(bearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
    assert.equal(bearerToken("bearer abc"), "abc");
    assert.equal(bearerToken("BEARER abc"), "abc");
    assert.equal(bearerToken("Bearer    abc  "), "abc");
  });

  it("any other scheme, or none, is no token", () => {
    for (const value of ["Basic abc", "abc.def.ghi", "Bearerabc", "Token abc", "Bearer", "Bearer ", "Bearer    ", "", " Bearer abc"]) {
      assert.equal(bearerToken(value), undefined, JSON.stringify(value));
    }
  });

  it("non-string header values are no token", () => {
    for (const value of [undefined, null, 1, ["Bearer a", "Bearer b"], {}]) assert.equal(bearerToken(value), undefined);
  });

  it("two credentials in one header are passed on whole, to be refused as malformed", () => {
    assert.equal(bearerToken("Bearer a, Bearer b"), "a, Bearer b");
  });

  /** The grammar as a regular expression: the scheme in any case, one or more spaces, the rest trimmed. */
  const grammar = (scheme: string) => (header: string): string | undefined => {
    const match = new RegExp(`^${scheme} +`, "i").exec(header);
    if (match === null) return undefined;
    const token = header.slice(match[0].length).trim();
    return token === "" ? undefined : token;
  };
  const reference = grammar("bearer");

  it("white space of every kind around the token is trimmed, whichever way the header is read (Bearer and DPoP)", () => {
    // What String.prototype.trim removes (ECMAScript WhiteSpace and LineTerminator), and characters it keeps.
    const space = ["\t", "\n", "\v", "\f", "\r", " ", "\u00a0", "\u1680", "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"];
    const kept = ["\u0000", "\u001f", "\u007f", "\u0085", "\u200b", "~", "!", "é"];
    const readers: Array<[string[], (header: unknown) => string | undefined, (header: string) => string | undefined]> = [
      [["Bearer ", "bearer   ", "BEARER  "], bearerToken, reference],
      [["DPoP ", "dpop   ", "DPOP  "], dpopToken, grammar("dpop")],
    ];
    for (const [prefixes, read, expected] of readers) {
      for (const prefix of prefixes) {
        for (const each of [...space, ...kept]) {
          for (const rest of [`${each}abc`, `abc${each}`, `${each}abc${each}`, `a${each}c`, each, `${each}${each}`]) {
            const header = prefix + rest;
            assert.equal(read(header), expected(header), JSON.stringify(header));
          }
        }
      }
    }
  });

  it("agrees with the grammar written as a regular expression on 40,000 generated headers", () => {
    // Pieces near the grammar's edges: the scheme in odd cases and look-alikes, white space of every kind, non-ASCII letters.
    const pieces = ["Bearer", "bearer", "BEARER", "bEaReR", "Bearex", "Bearer\t", "Bear", "ßearer", "B\u0130arer", "@EARER", " ", "  ", "\t", "\u00a0", "\n", "a.b.c", "x", ",", "Bearer ", "\u212a", "\ufeff", "\u2028", "\u3000", "\u007f", "~", "!"];
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 40_000; i++) {
      let header = "";
      for (let parts = 1 + random(4); parts > 0; parts--) header += pieces[random(pieces.length)];
      assert.equal(bearerToken(header), reference(header), JSON.stringify(header));
    }
  });
});

describe("socketToken", () => {
  it("prefers handshake.auth.token", () => {
    assert.equal(socketToken({ auth: { token: "A" }, headers: { authorization: "Bearer B" } }), "A");
  });

  it("falls back to the Authorization header", () => {
    assert.equal(socketToken({ auth: {}, headers: { authorization: "Bearer B" } }), "B");
  });

  it("a non-string or empty auth.token counts as absent", () => {
    for (const token of [42, {}, [], "", null, true]) {
      assert.equal(socketToken({ auth: { token }, headers: {} }), undefined);
      assert.equal(socketToken({ auth: { token }, headers: { authorization: "Bearer H" } }), "H");
    }
  });

  it("tolerates missing or odd handshake parts", () => {
    assert.equal(socketToken(undefined), undefined);
    assert.equal(socketToken({}), undefined);
    assert.equal(socketToken({ auth: null, headers: {} }), undefined);
    assert.equal(socketToken({ auth: "token" }), undefined);
  });
});
