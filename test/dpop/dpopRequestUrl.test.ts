/**
 * The URL of a request or a Socket.IO handshake, for comparison with `htu`:
 * from the request itself, or from the app's declared public origins.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dpopRequestUrl } from "../../src/dpop/dpopRequestUrl.js";

describe("dpopRequestUrl", () => {
  test("without a declared origin: the request's scheme and Host, without the query", () => {
    assert.equal(dpopRequestUrl({ secure: true, host: "API.example.com", url: "/orders?page=2" }, undefined), "https://api.example.com/orders");
    assert.equal(dpopRequestUrl({ secure: false, host: "127.0.0.1:3000", url: "/socket.io/?EIO=4&transport=polling" }, undefined), "http://127.0.0.1:3000/socket.io/");
    assert.equal(dpopRequestUrl({ secure: true, host: "api.example.com:443", url: "/" }, undefined), "https://api.example.com/");
    assert.equal(dpopRequestUrl({ secure: false, host: "[::1]:8080", url: "/a" }, undefined), "http://[::1]:8080/a");
  });

  test("without a declared origin: a Host or target that is not what it should be gives no URL", () => {
    for (const host of [undefined, "", "evil.example/path", "user@api.example.com", "api.example.com orders", "api.example.com:port"]) {
      assert.equal(dpopRequestUrl({ secure: true, host, url: "/orders" }, undefined), undefined, String(host));
    }
    for (const url of ["//evil.example/orders", "orders", "https://evil.example/"]) {
      assert.equal(dpopRequestUrl({ secure: true, host: "api.example.com", url }, undefined), undefined, url);
    }
  });

  test("a path with dot segments or backslashes, which URL parsing resolves and a router does not, gives no URL (with or without declared origins)", () => {
    for (const url of ["/public/../admin", "/public/./admin", "/public/%2e%2E/admin", "/public/.%2e/admin", "/public\\..\\admin", "/public/..", "/public/."]) {
      assert.equal(dpopRequestUrl({ secure: true, host: "api.example.com", url }, undefined), undefined, url);
      assert.equal(dpopRequestUrl({ secure: true, host: "api.example.com", url }, ["https://api.example.com"]), undefined, url);
    }
    for (const [url, expected] of <Array<[string, string]>>[
      ["/a/.hidden", "https://api.example.com/a/.hidden"],
      ["/a/..b", "https://api.example.com/a/..b"],
      ["/search?q=/../x", "https://api.example.com/search"],
    ]) {
      assert.equal(dpopRequestUrl({ secure: true, host: "api.example.com", url }, undefined), expected, url);
    }
  });

  test("with declared origins: the one the Host names, else the first; the request's scheme does not matter", () => {
    const origins = ["https://api.example.com", "https://api.example.org"];
    assert.equal(dpopRequestUrl({ secure: false, host: "api.example.org", url: "/orders" }, origins), "https://api.example.org/orders");
    assert.equal(dpopRequestUrl({ secure: false, host: "API.EXAMPLE.ORG:443", url: "/orders" }, origins), "https://api.example.org/orders");
    assert.equal(dpopRequestUrl({ secure: false, host: "internal:8080", url: "/orders" }, origins), "https://api.example.com/orders");
    assert.equal(dpopRequestUrl({ secure: false, host: "evil.example", url: "/orders" }, origins), "https://api.example.com/orders");
    assert.equal(dpopRequestUrl({ secure: false, host: undefined, url: "/socket.io/?EIO=4" }, origins), "https://api.example.com/socket.io/");
    assert.equal(dpopRequestUrl({ secure: true, host: "api.example.com", url: "//evil.example/x" }, origins), undefined);
  });
});
