/**
 * The demo in a real browser (Debian's Chromium, driven by playwright-core):
 * two users sign in through the provider's login page, chat, and the admin
 * disables the other one, whose page shows the revocation. The tokens are
 * DPoP-bound to a non-extractable key the page keeps in IndexedDB: the page
 * works with it over HTTP and Socket.IO, and its access token, taken out of
 * the page, is refused without the key on both. Screenshots go to
 * test-results/ (git-ignored).
 *
 * Without /usr/bin/chromium the suite is skipped locally and fails on CI
 * (where .ci/run installs it). Needs the built package (`npm run build`).
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { calculateJwkThumbprint, decodeJwt } from "jose";
import { chromium, type Browser, type BrowserContext, type Page, type Request, type WebSocket } from "playwright-core";
import type { Socket } from "socket.io-client";
import { DpopTestKey, nextEvent, openSocket, startDemo, type Credential, type RunningDemo } from "../helpers/demo.js";

const CHROMIUM = "/usr/bin/chromium";
const installed = existsSync(CHROMIUM);
const onCi = Boolean(process.env.CI);
/** Upper bound of every single wait in the browser. */
const WAIT_MS = 15_000;
const RESULTS_DIR = join(process.cwd(), "test-results");
/**
 * Access tokens live 30 s here instead of the demo's 120 s, so that the
 * in-band refresh happens within the test: the server sends `oidc:expiring`
 * min(15 s, a third of the remaining lifetime) = ~10 s before expiry, and the
 * page refreshes any token with less than 20 s left.
 */
const ACCESS_TOKEN_TTL = 30;

interface User {
  username: string;
  password: string;
  name: string;
  page: Page;
  context: BrowserContext;
  /** Uncaught exceptions and console errors of this user's tab (app and provider pages alike). */
  errors: string[];
}

describe(
  "demo in a real browser (Chromium)",
  { timeout: 90_000, skip: !installed && !onCi ? "Chromium not installed: apt-get install chromium" : false },
  () => {
    let demo: RunningDemo | undefined;
    let browser: Browser | undefined;
    const users: Record<"alice" | "bob", User> = {} as Record<"alice" | "bob", User>;

    before(async () => {
      if (!installed) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (apt-get install chromium) before the tests`);
      demo = await startDemo({ accessTokenTtl: ACCESS_TOKEN_TTL });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: 30_000,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      for (const [username, name] of [
        ["alice", "Alice Admin"],
        ["bob", "Bob Member"],
      ] as const) {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
        context.setDefaultTimeout(WAIT_MS);
        context.setDefaultNavigationTimeout(WAIT_MS);
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
        page.on("console", (message) => {
          if (message.type() === "error") errors.push(`console.error at ${message.location().url}: ${message.text()}`);
        });
        users[username] = { username, password: `${username}-password`, name, page, context, errors };
      }
    });

    after(async () => {
      try {
        for (const user of Object.values(users)) await user.context.close().catch(() => undefined);
        await browser?.close();
      } finally {
        await demo?.close();
      }
    });

    /** The page's status line reaches `state` (its data-state attribute). */
    async function waitForStatus(page: Page, state: string): Promise<string> {
      const status = page.locator(`#status[data-state="${state}"]`);
      try {
        await status.waitFor({ state: "visible", timeout: WAIT_MS });
      } catch (error) {
        const now = await page.locator("#status").evaluate((element) => `${element.getAttribute("data-state")}: ${element.textContent}`);
        throw new Error(`#status never reached "${state}" (now ${now})`, { cause: error });
      }
      return (await status.textContent()) ?? "";
    }

    /** The ids of the DPoP keys in the page origin's IndexedDB store. */
    function storedKeys(page: Page): Promise<string[]> {
      return page.evaluate(
        async () =>
          new Promise<string[]>((resolve, reject) => {
            const open = indexedDB.open("ioserver-oidc-demo");
            open.onerror = () => reject(new Error("cannot open IndexedDB"));
            open.onsuccess = () => {
              const request = open.result.transaction("dpop-keys").objectStore("dpop-keys").getAllKeys();
              request.onsuccess = () => {
                open.result.close();
                resolve(request.result.map(String).sort());
              };
              request.onerror = () => reject(new Error("cannot list the keys"));
            };
          }),
      );
    }

    /** The access token the page keeps in sessionStorage — what a script in the page could read. */
    async function pageToken(page: Page): Promise<string> {
      const saved = await page.evaluate(() => sessionStorage.getItem("ioserver-oidc-demo.tokens"));
      assert.ok(saved, "the page keeps its tokens in sessionStorage");
      return (JSON.parse(saved) as { accessToken: string }).accessToken;
    }

    /** Home page → Sign in → the provider's login form → back on the app, signed in and connected to /chat. */
    async function signIn(user: User, beforeClick?: (page: Page) => Promise<void>): Promise<void> {
      assert.ok(demo);
      const { page } = user;
      await page.goto(`${demo.appOrigin}/`);
      await waitForStatus(page, "signed-out");
      await beforeClick?.(page);
      await page.locator("#signin").click();

      await page.waitForURL((url) => url.href.startsWith(`${demo?.idp.issuer}/interaction/`));
      assert.equal(await page.title(), "Sign in · Demo identity provider");
      await page.locator('input[name="username"]').fill(user.username);
      await page.locator('input[name="password"]').fill(user.password);
      await page.locator('form[action$="/login"] button[type="submit"]').click();

      // /callback?code=… is exchanged by the page, which then drops the query from the address bar.
      await page.waitForURL(`${demo.appOrigin}/`);
      assert.match(await waitForStatus(page, "connected"), new RegExp(`Connected to /chat as ${user.name}`));
      assert.equal(await page.locator("#me-name").textContent(), user.name);
      await page.locator("#socket-id").filter({ hasNotText: "–" }).waitFor();
      await page.locator("#chat-input:enabled").waitFor();
    }

    it("bob and alice sign in through the provider's login page and land on the app, connected", async () => {
      // bob first, so that alice's admin panel lists him from its first load
      // Keys left in IndexedDB by two tabs closed while signed in: bob's sign-in deletes the one too old to matter.
      const leftBehind = { stale: Date.now() - 9 * 3600 * 1000, recent: Date.now() - 60_000 };
      await signIn(users.bob, (page) =>
        page.evaluate(
          async (ages) =>
            new Promise<void>((resolve, reject) => {
              const open = indexedDB.open("ioserver-oidc-demo", 1);
              open.onupgradeneeded = () => open.result.createObjectStore("dpop-keys");
              open.onerror = () => reject(new Error("cannot open IndexedDB"));
              open.onsuccess = async () => {
                const keyPair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
                const transaction = open.result.transaction("dpop-keys", "readwrite");
                transaction.objectStore("dpop-keys").put({ keyPair, createdAt: ages.stale }, "left-behind-stale");
                transaction.objectStore("dpop-keys").put({ keyPair, createdAt: ages.recent }, "left-behind-recent");
                transaction.oncomplete = () => {
                  open.result.close();
                  resolve();
                };
                transaction.onerror = () => reject(new Error("cannot store the keys"));
              };
            }),
          leftBehind,
        ),
      );
      const bobKeyId = await users.bob.page.evaluate(() => sessionStorage.getItem("ioserver-oidc-demo.dpop-key-id"));
      assert.deepEqual(await storedKeys(users.bob.page), [bobKeyId, "left-behind-recent"].sort());
      await signIn(users.alice);
      assert.equal(await users.alice.page.locator("#me-roles").textContent(), "admin");
      assert.equal(await users.bob.page.locator("#me-roles").textContent(), "member");
      assert.equal(await users.bob.page.locator("#admin-panel").isVisible(), false, "no admin panel for bob");
      const expires = Number(await users.alice.page.locator("#token-expires").textContent());
      assert.ok(expires > 15 && expires <= ACCESS_TOKEN_TTL, `the token countdown shows ${expires} s`);
      assert.equal(await users.alice.page.locator("#refresh-count").textContent(), "0");
    });

    it("bob's chat message shows up on alice's page", async () => {
      const text = `Hi Alice, Bob here (${Date.now()})`;
      await users.bob.page.locator("#chat-input").fill(text);
      await users.bob.page.locator("#chat-send").click();
      const onAlice = users.alice.page.locator('#messages li[data-kind="message"]', { hasText: text });
      await onAlice.waitFor();
      assert.match((await onAlice.textContent()) ?? "", /^Bob Member /);
      // the sender sees it too, and the input was cleared after the server's ack
      await users.bob.page.locator("#messages li.mine", { hasText: text }).waitFor();
      assert.equal(await users.bob.page.locator("#chat-input").inputValue(), "");
    });

    it("alice's page holds a DPoP-bound token and a non-extractable key, kept across a reload, and sends proofs with its API calls", async () => {
      assert.ok(demo);
      const { page } = users.alice;
      const token = await pageToken(page);
      const jkt = decodeJwt<{ cnf?: { jkt?: string } }>(token).cnf?.jkt;
      assert.equal(typeof jkt, "string", "the access token is bound to a key (cnf.jkt)");
      assert.equal(await page.locator("#token-jkt").textContent(), jkt, "the page shows its key's thumbprint");

      // The page's key pair, read back from IndexedDB as the page does: the private key cannot be exported.
      const stored = await page.evaluate(async () => {
        const id = sessionStorage.getItem("ioserver-oidc-demo.dpop-key-id");
        const db = await new Promise<IDBDatabase>((resolve, reject) => {
          const request = indexedDB.open("ioserver-oidc-demo");
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(new Error("cannot open IndexedDB"));
        });
        const keyPair = await new Promise<CryptoKeyPair | undefined>((resolve, reject) => {
          const request = db.transaction("dpop-keys").objectStore("dpop-keys").get(id ?? "");
          request.onsuccess = () => resolve((request.result as { keyPair?: CryptoKeyPair } | undefined)?.keyPair);
          request.onerror = () => reject(new Error("cannot read the key"));
        });
        db.close();
        if (!keyPair) return null;
        const exported = await crypto.subtle.exportKey("jwk", keyPair.privateKey).then(
          () => "exported",
          (error: unknown) => (error instanceof Error ? error.name : "refused"),
        );
        return { extractable: keyPair.privateKey.extractable, algorithm: keyPair.privateKey.algorithm.name, exported, publicJwk: await crypto.subtle.exportKey("jwk", keyPair.publicKey) };
      });
      assert.ok(stored, "the key pair is in IndexedDB");
      assert.deepEqual([stored.extractable, stored.algorithm, stored.exported], [false, "ECDSA", "InvalidAccessError"]);
      const { kty, crv, x, y } = stored.publicJwk;
      assert.equal(await calculateJwkThumbprint({ kty, crv, x, y }), jkt, "the token is bound to that key");

      // A reload: tokens from sessionStorage, the key from IndexedDB; GET /api/me carries a proof, the socket reconnects.
      const meRequest = page.waitForRequest((request) => request.url() === `${demo?.appOrigin}/api/me`, { timeout: WAIT_MS });
      // What the page sends to Socket.IO: long-polling POST bodies (the first transport) and WebSocket frames.
      const packets: string[] = [];
      const onRequest = (request: Request) => {
        if (request.method() === "POST" && request.url().startsWith(`${demo?.appOrigin}/socket.io/`)) packets.push(...(request.postData() ?? "").split("\x1e"));
      };
      const onWebSocket = (socket: WebSocket) => socket.on("framesent", (frame) => packets.push(String(frame.payload)));
      page.on("request", onRequest);
      page.on("websocket", onWebSocket);
      await page.reload();
      const headers = (await meRequest).headers();
      assert.equal(headers.authorization, `DPoP ${token}`);
      const proof = decodeJwt(headers.dpop ?? "");
      assert.deepEqual([proof.htm, proof.htu], ["GET", `${demo.appOrigin}/api/me`]);
      assert.match(await waitForStatus(page, "connected"), /Connected to \/chat as Alice Admin/);
      await page.locator("#socket-id").filter({ hasNotText: "–" }).waitFor();
      assert.equal(await pageToken(page), token, "the same token after the reload");

      page.off("request", onRequest);
      page.off("websocket", onWebSocket);

      // The /chat handshake (Socket.IO CONNECT packet `40/chat,{auth}`) carried the token and a proof for the engine endpoint.
      const connect = packets.find((packet) => packet.startsWith("40/chat,"));
      assert.ok(connect, `a CONNECT packet for /chat among ${packets.length} packets`);
      const auth = JSON.parse(connect.slice("40/chat,".length)) as { token?: string; dpop?: string };
      assert.equal(auth.token, token);
      const handshakeProof = decodeJwt(auth.dpop ?? "");
      assert.deepEqual([handshakeProof.htm, handshakeProof.htu], ["GET", `${demo.appOrigin}/socket.io/`]);
      assert.equal(typeof handshakeProof.ath, "string");
    });

    it("alice's token taken out of the page is refused without her key: on HTTP as Bearer or DPoP, on the socket", async () => {
      assert.ok(demo);
      const token = await pageToken(users.alice.page);
      const thiefKey = await DpopTestKey.create();
      const me = `${demo.appOrigin}/api/me`;
      const attempts: Array<[string, Record<string, string>]> = [
        ["Bearer", { authorization: `Bearer ${token}` }],
        ["DPoP without a proof", { authorization: `DPoP ${token}` }],
        ["DPoP with another key's proof", { authorization: `DPoP ${token}`, dpop: await thiefKey.proof({ method: "GET", url: me, accessToken: token }) }],
      ];
      for (const [label, headers] of attempts) {
        const response = await fetch(me, { headers, signal: AbortSignal.timeout(WAIT_MS) });
        const body = (await response.json()) as { code?: string };
        assert.equal(response.status, 401, `${label}: ${JSON.stringify(body)}`);
        assert.match(body.code ?? "", /^ERR_AUTH_(TOKEN|DPOP)_INVALID$/, label);
      }

      const sockets: Socket[] = [];
      try {
        for (const credential of [token, { accessToken: token, key: thiefKey }] satisfies Credential[]) {
          const socket = openSocket(demo, "chat", credential, { timeout: WAIT_MS });
          sockets.push(socket);
          const connects: string[] = [];
          socket.on("connect", () => connects.push(socket.id ?? ""));
          const [error] = await nextEvent<[Error]>(socket, "connect_error", WAIT_MS);
          assert.match(error.message, /^ERR_AUTH_(TOKEN|DPOP)_INVALID$/, typeof credential === "string" ? "auth: { token }" : "another key's proof");
          assert.deepEqual(connects, []);
        }
      } finally {
        for (const socket of sockets) socket.disconnect();
      }

      // meanwhile the page, which holds the key, carries on
      const { page } = users.alice;
      assert.equal(await page.locator("#status").getAttribute("data-state"), "connected");
      const text = `still connected with my key (${Date.now()})`;
      await page.locator("#chat-input").fill(text);
      await page.locator("#chat-send").click();
      await page.locator("#messages li.mine", { hasText: text }).waitFor();
    });

    it("alice's live metrics panel: authentications per second by outcome, live sockets, the key set's state", async () => {
      const { page } = users.alice;
      await page.locator("#admin-panel").waitFor({ state: "visible" });
      // A rate above 0: the panel's own polling authenticates every two seconds, so it moves while one watches.
      await page.locator('#metrics-auth li[data-outcome="success"]', { hasText: /^(?:[1-9]\d*\.\d|0\.[1-9])/ }).waitFor();
      await page.locator("#metrics-sockets li", { hasText: /^2 \/chat/ }).waitFor();
      await page.locator("#metrics-keys li", { hasText: /^fresh/ }).waitFor();
      assert.equal(await page.locator("#admin-error").isVisible(), false);
    });

    it("alice disables bob from her admin panel; bob's page shows the revocation", async () => {
      const { page } = users.alice;
      await page.locator("#admin-panel").waitFor({ state: "visible" });
      await page.locator('#admin-sessions tr[data-sub="bob"]').waitFor(); // pushed live over /admin
      await page.locator('#admin-users [data-username="bob"] [data-action="disable"]').click();

      const revoked = await waitForStatus(users.bob.page, "revoked");
      assert.match(revoked, /revoked/i);
      assert.match(revoked, /disabled by an administrator/);
      assert.equal(await users.bob.page.locator("#status").getAttribute("data-code"), "ERR_AUTH_REVOKED");
      await users.bob.page.locator("#chat-input:disabled").waitFor();
      await users.bob.page.locator("#reconnect").waitFor({ state: "visible" });

      // alice's panel: bob is disabled (Enable button), his session is gone, and alice is still connected
      await page.locator('#admin-users [data-username="bob"][data-disabled="true"] [data-action="enable"]').waitFor();
      await page.locator('#admin-sessions tr[data-sub="bob"]').waitFor({ state: "detached" });
      assert.equal(await page.locator("#status").getAttribute("data-state"), "connected");
      assert.equal(await page.locator("#admin-error").isVisible(), false);

      await mkdir(RESULTS_DIR, { recursive: true });
      const chatShot = join(RESULTS_DIR, "demo-chat.png");
      const revokedShot = join(RESULTS_DIR, "demo-revoked.png");
      await page.screenshot({ path: chatShot, fullPage: true });
      await users.bob.page.screenshot({ path: revokedShot });
      for (const file of [chatShot, revokedShot]) assert.ok(statSync(file).size > 10_000, `${file} was written`);
    });

    it("a reconnect attempt of the disabled bob is refused with ERR_USER_DISABLED", async () => {
      assert.ok(demo);
      const { page, errors } = users.bob;
      const known = errors.length;
      await page.locator("#reconnect").click();
      const refused = await waitForStatus(page, "error");
      assert.match(refused, /disabled by an administrator/);
      assert.equal(await page.locator("#status").getAttribute("data-code"), "ERR_USER_DISABLED");
      // Chromium logs every 4xx answer to fetch() as a console error: this one, GET /api/me → 403, is the point
      // of the step. Exactly it is taken off the list; anything else stays and fails the next test.
      const expected = `console.error at ${demo.appOrigin}/api/me: Failed to load resource: the server responded with a status of 403 (Forbidden)`;
      for (const deadline = Date.now() + WAIT_MS; errors.length === known && Date.now() < deadline; ) await delay(20);
      assert.deepEqual(errors.slice(known), [expected]);
      errors.splice(known, 1);
    });

    it("alice's token is refreshed before it expires and handed to the same socket (oidc:expiring → oidc:refresh)", async () => {
      const { page } = users.alice;
      const socketId = await page.locator("#socket-id").textContent();
      // at most ~20 s after alice's sign-in (the server's oidc:expiring); bounded with a margin
      await page.locator("#socket-refreshes").filter({ hasNotText: /^0$/ }).waitFor({ timeout: (ACCESS_TOKEN_TTL + 5) * 1000 });
      assert.equal(await page.locator("#socket-id").textContent(), socketId, "same socket id: no reconnect");
      assert.equal(await page.locator("#status").getAttribute("data-state"), "connected");
      assert.ok(Number(await page.locator("#refresh-count").textContent()) >= 1, "the page used its refresh token");
      // the connection lives on: a message still goes through
      const text = `still here after the refresh (${Date.now()})`;
      await page.locator("#chat-input").fill(text);
      await page.locator("#chat-send").click();
      await page.locator("#messages li.mine", { hasText: text }).waitFor();
    });

    it("bob signs out: the page forgets his tokens and deletes his key", async () => {
      const { page } = users.bob;
      const keyId = await page.evaluate(() => sessionStorage.getItem("ioserver-oidc-demo.dpop-key-id"));
      assert.ok(keyId, "a key while signed in");
      assert.deepEqual(await storedKeys(page), [keyId, "left-behind-recent"].sort());
      await page.locator("#signout").click();
      await waitForStatus(page, "signed-out");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("ioserver-oidc-demo.tokens")), null);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("ioserver-oidc-demo.dpop-key-id")), null);
      for (const deadline = Date.now() + WAIT_MS; (await storedKeys(page)).includes(keyId) && Date.now() < deadline; ) await delay(20);
      assert.deepEqual(await storedKeys(page), ["left-behind-recent"], "bob's key pair is deleted from IndexedDB, another tab's is not");
    });

    it("no page errors and no console errors in either tab", () => {
      assert.deepEqual(users.alice.errors, []);
      assert.deepEqual(users.bob.errors, []);
    });
  },
);
