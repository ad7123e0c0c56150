/**
 * `htu` normalisation (RFC 9449 section 4.3, RFC 3986 section 6.2): a table
 * of equal and different pairs, the request URL behind a declared public
 * origin, and properties over generated URLs.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { MAX_HTU_LENGTH, normalizeHtu, parseOrigin, requestHtu } from "../../src/dpop/normalizeHtu.js";

describe("normalizeHtu", () => {
  test("the normal form: lower-case scheme and host, no default port, no query or fragment, the path kept", () => {
    const table: Array<[string, string]> = [
      ["https://api.example.com/orders", "https://api.example.com/orders"],
      ["HTTPS://API.EXAMPLE.COM/Orders", "https://api.example.com/Orders"],
      ["https://api.example.com:443/a", "https://api.example.com/a"],
      ["http://api.example.com:80/a", "http://api.example.com/a"],
      ["https://api.example.com:80/a", "https://api.example.com:80/a"],
      ["https://api.example.com", "https://api.example.com/"],
      ["https://api.example.com/a?b=c#d", "https://api.example.com/a"],
      ["https://api.example.com/a/./b/../c", "https://api.example.com/a/c"],
      ["https://api.example.com/%7Euser/%2f/%41", "https://api.example.com/~user/%2F/A"],
      ["https://[::1]:8443/socket.io/", "https://[::1]:8443/socket.io/"],
      ["https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"],
      ["https://bücher.example/", "https://xn--bcher-kva.example/"],
    ];
    for (const [input, normal] of table) assert.equal(normalizeHtu(input), normal, input);
  });

  test("what cannot be an htu: not absolute, not http(s), user information, not a string, too long", () => {
    for (const input of ["/orders", "api.example.com/orders", "", "wss://api.example.com/", "ftp://api.example.com/", "https://user:pw@api.example.com/", "https://user@api.example.com/", "https://", 42, null, undefined, {}]) {
      assert.equal(normalizeHtu(input), undefined, JSON.stringify(input));
    }
    assert.equal(normalizeHtu(`https://api.example.com/${"a".repeat(MAX_HTU_LENGTH)}`), undefined);
  });
});

describe("requestHtu", () => {
  test("the public origin and the request target", () => {
    assert.equal(requestHtu("https://api.example.com", "/orders?page=2"), "https://api.example.com/orders");
    assert.equal(requestHtu("https://API.example.com:443", "/socket.io/?EIO=4&transport=websocket"), "https://api.example.com/socket.io/");
    assert.equal(requestHtu("http://127.0.0.1:3000", "/"), "http://127.0.0.1:3000/");
  });

  test("a target that is not an origin-form path cannot move the request to another host", () => {
    for (const target of ["//evil.example/orders", "https://evil.example/orders", "orders", "", "*"]) assert.equal(requestHtu("https://api.example.com", target), undefined, target);
  });

  test("the public origin must be a bare http(s) origin", () => {
    for (const origin of ["https://api.example.com/app", "https://api.example.com?x", "https://api.example.com#x", "wss://api.example.com", "api.example.com", "https://u@api.example.com", ""]) {
      assert.throws(() => parseOrigin(origin), /publicOrigin/, origin);
    }
    assert.equal(parseOrigin("https://api.example.com/"), "https://api.example.com");
  });
});

describe("normalizeHtu properties", () => {
  const urls = fc.webUrl({ validSchemes: ["http", "https"], withQueryParameters: true, withFragments: true });

  test("idempotent", () => {
    fc.assert(
      fc.property(urls, (url) => {
        const normal = normalizeHtu(url);
        if (normal !== undefined) assert.equal(normalizeHtu(normal), normal);
      }),
      { numRuns: 300 },
    );
  });

  test("query and fragment never matter; the case of scheme and host never matters", () => {
    fc.assert(
      fc.property(urls, fc.string({ unit: fc.constantFrom("a", "b", "=", "&", "%41", "/", "?") }), (url, extra) => {
        const parsed = new URL(url);
        const base = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
        const normal = normalizeHtu(base);
        if (normal === undefined || parsed.username !== "" || parsed.password !== "") return;
        assert.equal(normalizeHtu(`${base}?${extra}`), normal);
        assert.equal(normalizeHtu(`${base}#${extra}`), normal);
        assert.equal(normalizeHtu(`${parsed.protocol.toUpperCase()}//${parsed.host.toUpperCase()}${parsed.pathname}`), normal);
      }),
      { numRuns: 300 },
    );
  });

  test("two URLs with different paths (after normalisation) never compare equal", () => {
    fc.assert(
      fc.property(urls, urls, (a, b) => {
        const na = normalizeHtu(a);
        const nb = normalizeHtu(b);
        if (na === undefined || nb === undefined) return;
        const pa = new URL(na).pathname;
        const pb = new URL(nb).pathname;
        if (pa !== pb) assert.notEqual(na, nb);
      }),
      { numRuns: 300 },
    );
  });
});
