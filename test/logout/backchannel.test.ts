/**
 * OpenID Connect Back-Channel Logout 1.0 on a real IOServer: logout tokens
 * signed by the test's keys are posted to the route; live socket.io-client
 * connections show what was disconnected.
 */
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import type { AppHandle } from "ioserver";
import {
  BACKCHANNEL_LOGOUT_EVENT,
  backchannelLogoutHandler,
  OidcBackchannelLogoutController,
  MemoryReplayStore,
  OidcConfigError,
  OidcSessionManager,
  verifyLogoutToken,
  type OidcLogoutToken,
  type OidcReplayStore,
} from "../../src/index.js";
import { normalizeConfig } from "../../src/config/normalize.js";
import { b64url, makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { disconnectedWithin, startLogoutApp, stillConnected, type LogoutApp, type Watched } from "../helpers/logoutApp.js";
import { nextSecond } from "../helpers/wait.js";

const ISSUER = "https://op.logout.test";
const CLIENT = "logout-test-client";
const now = () => Math.floor(Date.now() / 1000);

function logoutClaims(overrides: Record<string, unknown> = {}, issuer = ISSUER): Record<string, unknown> {
  const iat = now();
  return { iss: issuer, aud: CLIENT, iat, exp: iat + 120, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...overrides };
}

function logoutToken(key: SigningKey, overrides: Record<string, unknown> = {}, header: Record<string, unknown> = { typ: "logout+jwt" }, issuer = ISSUER): Promise<string> {
  return sign(key, logoutClaims(overrides, issuer), { header });
}

function accessToken(key: SigningKey, sub: string, sid?: string, issuer = ISSUER): Promise<string> {
  const iat = now();
  return sign(key, { iss: issuer, aud: CLIENT, sub, iat, exp: iat + 600, ...(sid === undefined ? {} : { sid }) });
}

function assertNoStore(headers: Headers): void {
  assert.equal(headers.get("cache-control"), "no-store");
  assert.equal(headers.get("pragma"), "no-cache");
}

function assertRefused(response: { status: number; headers: Headers; text: string }, description = "The logout token is invalid"): void {
  assert.equal(response.status, 400, response.text);
  assertNoStore(response.headers);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(JSON.parse(response.text), { error: "invalid_request", error_description: description });
}

function assertAccepted(response: { status: number; headers: Headers; text: string }): void {
  assert.equal(response.status, 200, response.text);
  assertNoStore(response.headers);
  assert.equal(response.text, "");
}

async function assertRevoked(watched: Watched): Promise<void> {
  assert.equal(await disconnectedWithin(watched), "io server disconnect");
  assert.deepEqual(watched.revoked, [{ code: "ERR_AUTH_REVOKED", reason: "logged out at the identity provider" }]);
}

async function assertUntouched(watched: Watched): Promise<void> {
  assert.equal(await stillConnected(watched), true, "the socket is still connected");
  assert.deepEqual(watched.revoked, []);
}

describe("back-channel logout: one issuer, memory replay store", () => {
  let key: SigningKey;
  let jwks: JwksServer;
  let app: LogoutApp;

  before(async () => {
    key = await makeKey("RS256");
    jwks = await startJwksServer([key.jwk]);
    app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri }, custom: { allowJwtTyp: true } });
  });
  after(async () => {
    await app?.close();
    await jwks?.close();
  });

  test("a sub token disconnects every socket of that user (oidc:revoked, then disconnect) and answers 200 no-store", async () => {
    const a1 = await app.connect(await accessToken(key, "alice", "sid-a1"));
    const a2 = await app.connect(await accessToken(key, "alice"));
    const bob = await app.connect(await accessToken(key, "bob", "sid-b"));
    assertAccepted(await app.logout(await logoutToken(key, { sub: "alice" })));
    await assertRevoked(a1);
    await assertRevoked(a2);
    await assertUntouched(bob);
    assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes('sub "alice"') && l.text.includes("2 socket(s) disconnected via the package's revocation")));
    bob.socket.disconnect();
  });

  test("a sid-only token disconnects only the socket whose access token carried that sid", async () => {
    const s1 = await app.connect(await accessToken(key, "dave", "sid-d1"));
    const s2 = await app.connect(await accessToken(key, "dave", "sid-d2"));
    const none = await app.connect(await accessToken(key, "dave"));
    assertAccepted(await app.logout(await logoutToken(key, { sid: "sid-d1" })));
    await assertRevoked(s1);
    await assertUntouched(s2);
    await assertUntouched(none);
    s2.socket.disconnect();
    none.socket.disconnect();
  });

  test("sub and sid: the session named by sid, and that user's sockets whose token names no session", async () => {
    const s1 = await app.connect(await accessToken(key, "erin", "sid-e1"));
    const s2 = await app.connect(await accessToken(key, "erin", "sid-e2"));
    const sidless = await app.connect(await accessToken(key, "erin"));
    const otherUser = await app.connect(await accessToken(key, "erin-2"));
    assertAccepted(await app.logout(await logoutToken(key, { sub: "erin", sid: "sid-e1" })));
    await assertRevoked(s1);
    await assertRevoked(sidless);
    await assertUntouched(s2);
    await assertUntouched(otherUser);
    s2.socket.disconnect();
    otherUser.socket.disconnect();
  });

  test("no matching socket: still 200 (logout is idempotent)", async () => {
    assertAccepted(await app.logout(await logoutToken(key, { sub: "nobody-connected" })));
  });

  test("a replayed jti is refused with 400 and disconnects nothing", async () => {
    const token = await logoutToken(key, { sub: "carol" });
    const first = await app.connect(await accessToken(key, "carol"));
    assertAccepted(await app.logout(token));
    await assertRevoked(first);
    await nextSecond(); // carol signs in again: a token issued after the logout
    const second = await app.connect(await accessToken(key, "carol"));
    assertRefused(await app.logout(token));
    await assertUntouched(second);
    assert.ok(app.logs.some((l) => l.level === 4 && l.text.includes("was already received")));
    // The same jti from a fresh token (other iat) is a replay too.
    const jti = randomUUID();
    assertAccepted(await app.logout(await logoutToken(key, { sub: "carol-2", jti })));
    assertRefused(await app.logout(await logoutToken(key, { sub: "carol-2", jti, iat: now() - 1 })));
    second.socket.disconnect();
  });

  test("accepted variants: no typ, typ application/logout+jwt in any case, no exp, a non-empty event object", async () => {
    const user = await app.connect(await accessToken(key, "frank"));
    assertAccepted(await app.logout(await logoutToken(key, { sub: "frank-0" }, { typ: undefined })));
    assertAccepted(await app.logout(await logoutToken(key, { sub: "frank-1" }, { typ: "Application/Logout+JWT" })));
    assertAccepted(await app.logout(await logoutToken(key, { sub: "frank-2", exp: undefined })));
    assertAccepted(await app.logout(await logoutToken(key, { sub: "frank-3", events: { [BACKCHANNEL_LOGOUT_EVENT]: { note: 1 }, other: {} } })));
    await assertUntouched(user);
    assertAccepted(await app.logout(await logoutToken(key, { sub: "frank", aud: ["someone-else", CLIENT] })));
    await assertRevoked(user);
  });

  describe("every invalid logout token: 400, generic description, nothing disconnected, reason logged at level 4", () => {
    let victim: Watched;
    let other: SigningKey;

    before(async () => {
      victim = await app.connect(await accessToken(key, "victim", "victim-sid"));
      other = await makeKey("RS256", key.kid); // same kid, other key: a forged signature
    });
    after(async () => {
      await assertUntouched(victim);
      victim.socket.disconnect();
    });

    const target = { sub: "victim", sid: "victim-sid" };
    const unsigned = (header: Record<string, unknown>, claims: Record<string, unknown>, signature = "") =>
      `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.${signature}`;

    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      ["bad signature", () => logoutToken(other, target), /signature verification failed/],
      ["alg none (empty signature)", async () => unsigned({ alg: "none", typ: "logout+jwt" }, logoutClaims(target)), /not a compact JWS/],
      ["alg none (with a signature segment)", async () => unsigned({ alg: "none", typ: "logout+jwt" }, logoutClaims(target), "AAAA"), /algorithm "none" is not allowed/],
      [
        "HS256 with the public key as secret",
        async () => {
          const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "logout+jwt", kid: key.kid }))}.${b64url(JSON.stringify(logoutClaims(target)))}`;
          return `${head}.${createHmac("sha256", JSON.stringify(key.jwk)).update(head).digest("base64url")}`;
        },
        /algorithm "HS256" is not allowed/,
      ],
      ["unknown iss", () => logoutToken(key, { ...target, iss: "https://evil.example" }), /iss was "https:\/\/evil.example"/],
      ["wrong aud", () => logoutToken(key, { ...target, aud: "another-client" }), /aud was "another-client"/],
      ["missing iat", () => logoutToken(key, { ...target, iat: undefined }), /"iat" is missing/],
      ["iat not a number", () => logoutToken(key, { ...target, iat: "yesterday" }), /iat/],
      ["iat in the future", () => logoutToken(key, { ...target, iat: now() + 120, exp: now() + 240 }), /iat/],
      ["iat too old (over maxAge + tolerance)", () => logoutToken(key, { ...target, iat: now() - 300 - 60, exp: now() + 60 }), /over the max age of 300 s/],
      ["expired", () => logoutToken(key, { ...target, iat: now() - 100, exp: now() - 30 }), /expired \d+ s ago/],
      ["missing jti", () => logoutToken(key, { ...target, jti: undefined }), /"jti" is missing/],
      ["empty jti", () => logoutToken(key, { ...target, jti: "" }), /jti must be a non-empty string/],
      ["sid with a lone surrogate", () => logoutToken(key, { ...target, sid: "victim-sid\ud800" }), /sid .* is not a well-formed string/],
      ["sub with a lone surrogate", () => logoutToken(key, { sub: "victim\udc00" }), /sub .* is not a well-formed string/],
      ["missing events", () => logoutToken(key, { ...target, events: undefined }), /"events" is missing/],
      ["events not an object", () => logoutToken(key, { ...target, events: [BACKCHANNEL_LOGOUT_EVENT] }), /events must be a JSON object/],
      ["wrong events member", () => logoutToken(key, { ...target, events: { "http://schemas.openid.net/event/backchannel-logout/": {} } }), /events has no/],
      ["events member true", () => logoutToken(key, { ...target, events: { [BACKCHANNEL_LOGOUT_EVENT]: true } }), /must be a JSON object, got true/],
      ["events member an array", () => logoutToken(key, { ...target, events: { [BACKCHANNEL_LOGOUT_EVENT]: [] } }), /must be a JSON object, got \[\]/],
      ["events member null", () => logoutToken(key, { ...target, events: { [BACKCHANNEL_LOGOUT_EVENT]: null } }), /must be a JSON object, got null/],
      ["nonce present", () => logoutToken(key, { ...target, nonce: "n-0S6_WzA2Mj" }), /a nonce claim is present/],
      ["nonce present but null", () => logoutToken(key, { ...target, nonce: null }), /a nonce claim is present/],
      ["neither sub nor sid", () => logoutToken(key, {}), /neither sub nor sid/],
      ["sub not a string", () => logoutToken(key, { sub: 42, sid: "victim-sid" }), /sub must be a non-empty string, got 42/],
      ["sid empty", () => logoutToken(key, { sub: "victim", sid: "" }), /sid must be a non-empty string/],
      ["typ at+jwt", () => logoutToken(key, target, { typ: "at+jwt" }), /header typ "at\+jwt" is not logout\+jwt/],
      ["typ JWT (generic, refused by default)", () => logoutToken(key, target, { typ: "JWT" }), /header typ "JWT"/],
      ["typ not a string", () => logoutToken(key, target, { typ: 7 }), /header typ 7/],
      ["an access token (typ JWT)", () => accessToken(key, "victim", "victim-sid"), /header typ "JWT"/],
      [
        "an access token without typ (no events)",
        () => sign(key, { iss: ISSUER, aud: CLIENT, sub: "victim", sid: "victim-sid", iat: now(), exp: now() + 600, jti: randomUUID() }, { header: { typ: undefined } }),
        /"events" is missing/,
      ],
      ["an ID token shape (nonce, no events)", () => logoutToken(key, { ...target, events: undefined, nonce: "abc" }), /"events" is missing/],
      ["encrypted (JWE) token", async () => "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", /encrypted \(JWE\) logout tokens are not supported/],
      ["junk", async () => "not a jwt", /not a compact JWS/],
      ["over maxTokenLength", async () => `${"a".repeat(20_000)}.b.c`, /over the 16384 limit/],
    ];

    for (const [name, make, reason] of cases) {
      test(name, async () => {
        const token = await make();
        const before = app.logs.length;
        assertRefused(await app.logout(token));
        const lines = app.logs.slice(before);
        assert.ok(
          lines.some((l) => l.level === 4 && reason.test(l.text)),
          `expected a level-4 log matching ${reason}, got ${JSON.stringify(lines)}`,
        );
        assert.ok(!lines.some((l) => l.text.includes(token)), "the token is never logged");
        await assertUntouched(victim);
      });
    }
  });

  describe("invalid requests: 400 invalid_request, nothing disconnected", () => {
    let victim: Watched;
    let valid: () => Promise<string>;
    before(async () => {
      victim = await app.connect(await accessToken(key, "victim-2", "victim-2-sid"));
      valid = () => logoutToken(key, { sub: "victim-2" });
    });
    after(async () => {
      await assertUntouched(victim);
      victim.socket.disconnect();
    });
    const REQUEST = "The request must be a form-encoded POST with one logout_token";

    test("JSON instead of a form", async () => {
      assertRefused(await app.post(JSON.stringify({ logout_token: await valid() }), { "content-type": "application/json" }), REQUEST);
    });
    test("text/plain", async () => {
      assertRefused(await app.post(`logout_token=${await valid()}`, { "content-type": "text/plain" }), REQUEST);
    });
    test("missing logout_token", async () => {
      assertRefused(await app.post("token=abc&other=1"), REQUEST);
      assertRefused(await app.post(""), REQUEST);
    });
    test("logout_token repeated", async () => {
      const token = await valid();
      assertRefused(await app.post(`logout_token=${token}&logout_token=${token}`), REQUEST);
    });
    test("empty logout_token", async () => {
      assertRefused(await app.post("logout_token="));
    });
    test("a body over the limit (declared length): refused unread, connection closed", async () => {
      const response = await app.post(`logout_token=${"a".repeat(40_000)}`);
      assertRefused(response, REQUEST);
      assert.equal(response.headers.get("connection"), "close");
      assert.ok(app.logs.some((l) => l.level === 4 && /40013 bytes declared, over the 32768 limit/.test(l.text)));
    });
    test("a chunked body over the limit: refused once the limit is passed", async () => {
      const { status, headers, body } = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpRequest(`${app.url}/oidc/backchannel-logout`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", "transfer-encoding": "chunked" },
          timeout: 8_000,
        });
        req.on("response", (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        });
        req.on("timeout", () => req.destroy(new Error("no answer")));
        req.on("error", reject);
        req.write(`logout_token=${"a".repeat(20_000)}`);
        req.write("a".repeat(20_000));
        req.end();
      });
      assert.equal(status, 400);
      assert.equal(headers["cache-control"], "no-store");
      assert.equal(headers["connection"], "close");
      assert.equal((JSON.parse(body) as { error?: unknown }).error, "invalid_request");
      assert.ok(app.logs.some((l) => l.level === 4 && /body over the 32768 byte limit/.test(l.text)));
    });
    test("another method than POST: 405, Allow: POST", async () => {
      const response = await fetch(`${app.url}/oidc/backchannel-logout`, {
        method: "PUT",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `logout_token=${await valid()}`,
        signal: AbortSignal.timeout(8_000),
      });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "POST");
      assertNoStore(response.headers);
      await response.body?.cancel();
    });
  });

  test("a user controller mounts backchannelLogoutHandler on its own path with its own options", async () => {
    const user = await app.connect(await accessToken(key, "grace"));
    // allowJwtTyp is set on this handler only.
    assertRefused(await app.logout(await logoutToken(key, { sub: "grace" }, { typ: "JWT" })));
    await assertUntouched(user);
    assertAccepted(await app.logout(await logoutToken(key, { sub: "grace" }, { typ: "JWT" }), "/custom/sso/logout"));
    await assertRevoked(user);
    assertRefused(await app.logout(await logoutToken(key, { sub: "grace" }, { typ: "at+jwt" }), "/custom/sso/logout"));
  });

  test("the two mounts share the app's memory replay store: a token accepted on one is a replay on the other", async () => {
    const token = await logoutToken(key, { sub: "heidi" });
    assertAccepted(await app.logout(token));
    assertRefused(await app.logout(token));
    assertRefused(await app.logout(token, "/custom/sso/logout"));
    const other = await logoutToken(key, { sub: "heidi" });
    assertAccepted(await app.logout(other, "/custom/sso/logout"));
    assertRefused(await app.logout(other));
  });
});

describe("back-channel logout: failures on the server side", () => {
  let key: SigningKey;
  let jwks: JwksServer;
  before(async () => {
    key = await makeKey("ES256");
    jwks = await startJwksServer([key.jwk]);
  });
  after(async () => {
    await jwks?.close();
  });

  test("the provider's keys cannot be fetched: 503 with Retry-After, nothing claimed", async () => {
    const down = await startJwksServer([key.jwk]);
    down.mode = "500";
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: down.jwksUri } });
    try {
      const response = await app.logout(await logoutToken(key, { sub: "ivan" }));
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "5");
      assertNoStore(response.headers);
      assert.equal((JSON.parse(response.text) as { error?: unknown }).error, "temporarily_unavailable");
      assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("logout token not verified")));
    } finally {
      await app.close();
      await down.close();
    }
  });

  test("the replay store fails: the logout is carried out anyway (200), and sticks", async () => {
    const failing: OidcReplayStore = {
      async claim() {
        throw new Error("store is down");
      },
    };
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri }, logout: { replayStore: failing } });
    try {
      const userToken = await accessToken(key, "judy");
      const user = await app.connect(userToken);
      const response = await app.logout(await logoutToken(key, { sub: "judy" }));
      assertAccepted(response);
      await assertRevoked(user);
      assert.ok(app.logs.some((l) => l.level === 4 && l.text.includes("replay store failed") && l.text.includes("carried out anyway") && l.text.includes("store is down")));
      await assert.rejects(app.connect(userToken), /ERR_AUTH_REVOKED/);
    } finally {
      await app.close();
    }
  });

  test("a claim that timed out but was recorded cannot lose the logout: the retry is a replay, and the logout has happened", async () => {
    const inner = new MemoryReplayStore();
    let slow = true;
    // Records the key, then answers too late (like a Redis SET NX that ran but whose reply did not arrive in time).
    const late: OidcReplayStore = {
      async claim(key, ttl) {
        const first = await inner.claim(key, ttl);
        if (slow) await new Promise((resolve) => setTimeout(resolve, 1_500));
        return first;
      },
    };
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri }, logout: { replayStore: late, timeout: 300 } });
    try {
      const userToken = await accessToken(key, "kim", "kim-sid");
      const user = await app.connect(userToken);
      const token = await logoutToken(key, { sub: "kim", sid: "kim-sid" });
      assertAccepted(await app.logout(token));
      await assertRevoked(user);
      slow = false;
      assertRefused(await app.logout(token)); // the provider's retry: a replay
      await assert.rejects(app.connect(userToken), /ERR_AUTH_REVOKED/);
    } finally {
      await app.close();
    }
  });

  test("a replay completes a logout an earlier attempt left half-done, and touches nothing issued after it", async () => {
    const store = new MemoryReplayStore();
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri }, logout: { replayStore: store } });
    try {
      const staleToken = await accessToken(key, "lou");
      const stale = await app.connect(staleToken);
      const token = await logoutToken(key, { sub: "lou" });
      // An attempt that claimed the jti and stopped before disconnecting anything (a crash, say).
      const decoded = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { iss: string; jti: string };
      const { createHash } = await import("node:crypto");
      assert.equal(await store.claim(createHash("sha256").update(JSON.stringify([decoded.iss, decoded.jti])).digest("base64url"), 60_000), true);
      await nextSecond();
      const fresh = await app.connect(await accessToken(key, "lou")); // signed in again after the logout
      assertRefused(await app.logout(token));
      await assertRevoked(stale);
      await assertUntouched(fresh);
      await assert.rejects(app.connect(staleToken), /ERR_AUTH_REVOKED/);
    } finally {
      await app.close();
    }
  });

  test("no configuration at all: 500 server_error", async () => {
    const saved = Object.fromEntries(["AUTH_SERVICE_URL", "AUTH_SERVICE_APP_SLUG", "AUTH_SERVICE_ISSUER", "OIDC_ISSUER"].map((name) => [name, process.env[name]]));
    for (const name of Object.keys(saved)) delete process.env[name];
    const app = await startLogoutApp({});
    try {
      const response = await app.logout(await logoutToken(key, { sub: "kim" }));
      assert.equal(response.status, 500);
      assertNoStore(response.headers);
      assert.equal((JSON.parse(response.text) as { error?: unknown }).error, "server_error");
      assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("no usable configuration")));
    } finally {
      await app.close();
      for (const [name, value] of Object.entries(saved)) if (value !== undefined) process.env[name] = value;
    }
  });

  test("onLogout runs after the disconnect with the token; its failure answers 400 logout_failed", async () => {
    const seen: Array<{ logout: OidcLogoutToken; disconnected: number | undefined }> = [];
    const app = await startLogoutApp({
      config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri },
      logout: { onLogout: (logout, { disconnected }) => void seen.push({ logout, disconnected }) },
      custom: {
        onLogout: async () => {
          throw new Error("sessions table unavailable");
        },
      },
    });
    try {
      const user = await app.connect(await accessToken(key, "leo", "sid-leo"));
      assertAccepted(await app.logout(await logoutToken(key, { sub: "leo", sid: "sid-leo", jti: "jti-leo" })));
      await assertRevoked(user);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.disconnected, 1);
      const { iat, exp, ...rest } = seen[0]!.logout;
      assert.deepEqual(rest, { iss: ISSUER, jti: "jti-leo", sub: "leo", sid: "sid-leo" });
      assert.equal(typeof iat, "number");
      assert.equal(exp, iat + 120);

      const response = await app.logout(await logoutToken(key, { sub: "leo" }), "/custom/sso/logout");
      assert.equal(response.status, 400);
      assertNoStore(response.headers);
      assert.deepEqual(JSON.parse(response.text), { error: "logout_failed", error_description: "The logout could not be completed" });
      assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("onLogout failed") && l.text.includes("sessions table unavailable")));
    } finally {
      await app.close();
    }
  });

  test("an app that parses forms itself: the controller works as a plain handler", async () => {
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwks.jwksUri }, formParser: true });
    try {
      const user = await app.connect(await accessToken(key, "mallory"));
      const token = await logoutToken(key, { sub: "mallory" });
      assertRefused(await app.post(`logout_token=${token}&logout_token=${token}`, {}, "/parsed/backchannel-logout"), "The request must be a form-encoded POST with one logout_token");
      assertRefused(await app.post(JSON.stringify({ logout_token: token }), { "content-type": "application/json" }, "/parsed/backchannel-logout"), "The request must be a form-encoded POST with one logout_token");
      await assertUntouched(user);
      assertAccepted(await app.logout(token, "/parsed/backchannel-logout"));
      await assertRevoked(user);
      assertRefused(await app.logout(token, "/parsed/backchannel-logout"));
    } finally {
      await app.close();
    }
  });
});

describe("back-channel logout: session managers and several issuers", () => {
  const ISSUER_B = "https://other-op.logout.test";
  let keyA: SigningKey;
  let keyB: SigningKey;
  let jwksA: JwksServer;
  let jwksB: JwksServer;
  before(async () => {
    keyA = await makeKey("RS256");
    keyB = await makeKey("EdDSA");
    jwksA = await startJwksServer([keyA.jwk]);
    jwksB = await startJwksServer([keyB.jwk]);
  });
  after(async () => {
    await jwksA?.close();
    await jwksB?.close();
  });

  test("a session manager with disconnectSessionId / disconnectUser is used for the cluster-wide disconnect", async () => {
    const calls: unknown[][] = [];
    class ClusterSession {
      constructor(readonly appHandle: AppHandle) {}
      async disconnectSessionId(sid: string, reason?: string, iss?: string) {
        calls.push(["disconnectSessionId", sid, reason, iss]);
        return 3;
      }
      async disconnectUser(userIdOrSub: string, reason?: string) {
        calls.push(["disconnectUser", userIdOrSub, reason]);
        return 2;
      }
    }
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwksA.jwksUri }, managers: { session: ClusterSession } });
    try {
      assertAccepted(await app.logout(await logoutToken(keyA, { sid: "sid-1" })));
      assertAccepted(await app.logout(await logoutToken(keyA, { sub: "nina", sid: "sid-2" })));
      assertAccepted(await app.logout(await logoutToken(keyA, { sub: "nina" })));
      const reason = "logged out at the identity provider";
      // Sockets whose token has no sid are matched on this node by (iss, sub), besides the cluster-wide sid call.
      const sidless = await app.connect(await accessToken(keyA, "olga"));
      assertAccepted(await app.logout(await logoutToken(keyA, { sub: "olga", sid: "sid-3" })));
      await assertRevoked(sidless);
      assert.deepEqual(calls, [
        ["disconnectSessionId", "sid-1", reason, ISSUER],
        ["disconnectSessionId", "sid-2", reason, ISSUER],
        ["disconnectUser", "nina", reason],
        ["disconnectSessionId", "sid-3", reason, ISSUER],
      ]);
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes("3 socket(s) disconnected via session.disconnectSessionId")));
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes('sub "olga"') && l.text.includes("4 socket(s) disconnected via session.disconnectSessionId")));
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes("2 socket(s) disconnected via session.disconnectUser")));
    } finally {
      await app.close();
    }
  });

  test("the cluster-wide call fails: this node's sockets still go, the answer is 400 logout_failed", async () => {
    class BrokenSession {
      constructor(readonly appHandle: AppHandle) {}
      async disconnectSessionId() {
        throw new Error("adapter unreachable");
      }
    }
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwksA.jwksUri }, managers: { session: BrokenSession } });
    try {
      const user = await app.connect(await accessToken(keyA, "oscar", "sid-oscar"));
      const response = await app.logout(await logoutToken(keyA, { sid: "sid-oscar" }));
      assert.equal(response.status, 400);
      assert.equal((JSON.parse(response.text) as { error?: unknown }).error, "logout_failed");
      await assertRevoked(user);
      assert.ok(app.logs.some((l) => l.level === 3 && l.text.includes("1 socket(s) of this node disconnected: adapter unreachable")));
    } finally {
      await app.close();
    }
  });

  test("with OidcSessionManager registered, sub and sid logouts disconnect the sockets", async () => {
    const app = await startLogoutApp({ config: { issuer: ISSUER, audience: CLIENT, jwksUri: jwksA.jwksUri }, managers: { session: OidcSessionManager } });
    try {
      const bySub = await app.connect(await accessToken(keyA, "peggy", "sid-p1"));
      const bySid = await app.connect(await accessToken(keyA, "quinn", "sid-q1"));
      const other = await app.connect(await accessToken(keyA, "quinn", "sid-q2"));
      assertAccepted(await app.logout(await logoutToken(keyA, { sub: "peggy" })));
      await assertRevoked(bySub);
      assertAccepted(await app.logout(await logoutToken(keyA, { sid: "sid-q1" })));
      await assertRevoked(bySid);
      await assertUntouched(other);
    } finally {
      await app.close();
    }
  });

  test("a tracker with disconnectSubject gets the subject-wide part, issuer-scoped, with any number of issuers", async () => {
    const calls: unknown[][] = [];
    class IssuerScopedSession {
      constructor(readonly appHandle: AppHandle) {}
      async disconnectSessionId(sid: string, reason?: string, iss?: string) {
        calls.push(["disconnectSessionId", sid, reason, iss]);
        return 1;
      }
      async disconnectSubject(sub: string, options: unknown) {
        calls.push(["disconnectSubject", sub, options]);
        return 2;
      }
      async disconnectUser(userIdOrSub: string) {
        calls.push(["disconnectUser", userIdOrSub]);
        return 5;
      }
    }
    const app = await startLogoutApp({
      config: {
        issuers: [
          { issuer: ISSUER, audience: CLIENT, jwksUri: jwksA.jwksUri },
          { issuer: ISSUER_B, audience: CLIENT, jwksUri: jwksB.jwksUri },
        ],
      },
      managers: { session: IssuerScopedSession },
    });
    try {
      const reason = "logged out at the identity provider";
      // A sid-less socket of that sub on this node is left to disconnectSubject (which this fake does not do).
      const sidless = await app.connect(await accessToken(keyB, "rita", undefined, ISSUER_B));
      assertAccepted(await app.logout(await logoutToken(keyB, { sub: "rita" }, { typ: "logout+jwt" }, ISSUER_B)));
      assertAccepted(await app.logout(await logoutToken(keyB, { sub: "rita", sid: "r-1" }, { typ: "logout+jwt" }, ISSUER_B)));
      assertAccepted(await app.logout(await logoutToken(keyA, { sid: "r-2" })));
      assert.deepEqual(calls, [
        ["disconnectSubject", "rita", { iss: ISSUER_B, reason }],
        ["disconnectSessionId", "r-1", reason, ISSUER_B],
        ["disconnectSubject", "rita", { iss: ISSUER_B, reason, withoutSid: true }],
        ["disconnectSessionId", "r-2", reason, ISSUER],
      ]);
      await assertUntouched(sidless);
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes('sub "rita": 2 socket(s) disconnected via session.disconnectSubject')));
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes('sid "r-1" sub "rita": 3 socket(s) disconnected via session.disconnectSessionId + session.disconnectSubject')));
      sidless.socket.disconnect();
    } finally {
      await app.close();
    }
  });

  test("with OidcSessionManager and two issuers: the logout reaches that issuer's sockets only (sub; sub + sid with the sid-less ones)", async () => {
    const app = await startLogoutApp({
      config: {
        issuers: [
          { issuer: ISSUER, audience: CLIENT, jwksUri: jwksA.jwksUri },
          { issuer: ISSUER_B, audience: CLIENT, jwksUri: jwksB.jwksUri },
        ],
      },
      managers: { session: OidcSessionManager },
    });
    try {
      const ofA = await app.connect(await accessToken(keyA, "sally", "s-a"));
      const ofB = await app.connect(await accessToken(keyB, "sally", "s-a", ISSUER_B));
      const ofBSidless = await app.connect(await accessToken(keyB, "sally", undefined, ISSUER_B));
      assertAccepted(await app.logout(await logoutToken(keyA, { sub: "sally" })));
      await assertRevoked(ofA);
      await assertUntouched(ofB);
      await assertUntouched(ofBSidless);
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes('sub "sally": 1 socket(s) disconnected via session.disconnectSubject')));

      await nextSecond(); // sally signs in again at A
      const ofA2 = await app.connect(await accessToken(keyA, "sally"));
      const ofBOther = await app.connect(await accessToken(keyB, "sally", "s-b2", ISSUER_B));
      assertAccepted(await app.logout(await logoutToken(keyB, { sub: "sally", sid: "s-a" }, { typ: "logout+jwt" }, ISSUER_B)));
      await assertRevoked(ofB);
      await assertRevoked(ofBSidless);
      await assertUntouched(ofA2);
      await assertUntouched(ofBOther);
      assert.ok(app.logs.some((l) => l.level === 6 && l.text.includes('2 socket(s) disconnected via session.disconnectSessionId + session.disconnectSubject')));
    } finally {
      await app.close();
    }
  });

  test("several issuers: a sub or sid from one issuer never logs out the other issuer's user", async () => {
    const calls: string[] = [];
    class SubjectOnlySession {
      constructor(readonly appHandle: AppHandle) {}
      async disconnectUser(userIdOrSub: string) {
        calls.push(userIdOrSub);
        return 0;
      }
    }
    const app = await startLogoutApp({
      config: {
        issuers: [
          { issuer: ISSUER, audience: CLIENT, jwksUri: jwksA.jwksUri },
          { issuer: ISSUER_B, audience: CLIENT, jwksUri: jwksB.jwksUri },
        ],
      },
      managers: { session: SubjectOnlySession },
    });
    try {
      const aliceA = await app.connect(await accessToken(keyA, "alice", "shared-sid", ISSUER));
      const aliceB = await app.connect(await accessToken(keyB, "alice", "shared-sid", ISSUER_B));
      // A token of issuer B signed with A's key is refused (keys are per issuer).
      assertRefused(await app.logout(await logoutToken(keyA, { sub: "alice" }, { typ: "logout+jwt" }, ISSUER_B)));
      assertAccepted(await app.logout(await logoutToken(keyA, { sub: "alice" }, { typ: "logout+jwt" }, ISSUER)));
      await assertRevoked(aliceA);
      await assertUntouched(aliceB);
      // disconnectUser knows no issuer: with several issuers this node's sockets are matched by (iss, sub) instead.
      assert.deepEqual(calls, []);
      await nextSecond(); // alice signs in again at A
      const aliceA2 = await app.connect(await accessToken(keyA, "alice", "shared-sid", ISSUER));
      assertAccepted(await app.logout(await logoutToken(keyB, { sid: "shared-sid" }, { typ: "logout+jwt" }, ISSUER_B)));
      await assertRevoked(aliceB);
      await assertUntouched(aliceA2);
    } finally {
      await app.close();
    }
  });
});

describe("verifyLogoutToken", () => {
  let key: SigningKey;
  let jwks: JwksServer;
  before(async () => {
    key = await makeKey("PS256");
    jwks = await startJwksServer([key.jwk]);
  });
  after(async () => {
    await jwks?.close();
  });

  test("resolves to iss, sub, sid, jti, iat, exp; audience and maxAge options", async () => {
    const config = normalizeConfig({ issuer: ISSUER, audience: "my-api", appSlug: "my-app", jwksUri: jwks.jwksUri });
    const iat = now();
    const token = await sign(key, { iss: ISSUER, aud: "my-app", iat, exp: iat + 60, jti: "j1", sub: "u1", sid: "s1", events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } });
    // Default audiences: the issuer's audience and appSlug.
    assert.deepEqual(await verifyLogoutToken(token, config), { iss: ISSUER, jti: "j1", iat, exp: iat + 60, sub: "u1", sid: "s1" });
    await assert.rejects(verifyLogoutToken(token, config, { audience: "my-api" }), { code: "ERR_AUTH_TOKEN_INVALID", reason: /aud was "my-app"/ });
    assert.equal((await verifyLogoutToken(token, config, { audience: ["x", "my-app"] })).jti, "j1");
    const old = await sign(key, { iss: ISSUER, aud: "my-app", iat: iat - 100, jti: "j2", sid: "s2", events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } });
    await assert.rejects(verifyLogoutToken(old, config, { maxAge: 60 }), { reason: /over the max age of 60 s/ });
    assert.deepEqual(await verifyLogoutToken(old, config, { maxAge: 120 }), { iss: ISSUER, jti: "j2", iat: iat - 100, sid: "s2" });
    await assert.rejects(verifyLogoutToken(token, config, { maxAge: 0 }), TypeError);
  });

  test("keys that cannot be fetched: ERR_AUTH_UNAVAILABLE", async () => {
    const config = normalizeConfig({ issuer: ISSUER, audience: CLIENT, jwksUri: "http://127.0.0.1:9/jwks" });
    const token = await logoutToken(key, { sub: "u" });
    await assert.rejects(verifyLogoutToken(token, config), { code: "ERR_AUTH_UNAVAILABLE" });
  });
});

describe("back-channel logout options are validated when configured", () => {
  test("bad options throw OidcConfigError naming the option", () => {
    assert.throws(() => OidcBackchannelLogoutController.configure({ maxAge: 0 }), (error: unknown) => error instanceof OidcConfigError && /"maxAge"/.test(error.message));
    assert.throws(() => OidcBackchannelLogoutController.configure({ bodyLimit: 1.5 }), OidcConfigError);
    assert.throws(() => OidcBackchannelLogoutController.configure({ timeout: -1 }), OidcConfigError);
    assert.throws(() => OidcBackchannelLogoutController.configure({ audience: [] }), OidcConfigError);
    assert.throws(() => OidcBackchannelLogoutController.configure({ replayStore: {} as OidcReplayStore }), /"replayStore"/);
    assert.throws(() => OidcBackchannelLogoutController.configure({ onLogout: "x" as never }), OidcConfigError);
    assert.throws(() => OidcBackchannelLogoutController.configure({ allowJwtTyp: "yes" as never }), OidcConfigError);
    assert.throws(() => backchannelLogoutHandler(null as never), TypeError);
    assert.equal(typeof OidcBackchannelLogoutController.configure({ maxAge: 120, audience: "c" }), "function");
  });
});
