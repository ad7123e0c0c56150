/**
 * The traffic both adapters' tests run, through the real thing: an IOServer
 * with its protected routes and namespaces, real socket.io-client clients,
 * key sets and discovery documents served on 127.0.0.1, a back-channel
 * logout route. Each step says which series it must have moved, in the
 * names of both ecosystems, so each adapter's test checks the same table.
 */
import { randomUUID } from "node:crypto";
import { channel } from "node:diagnostics_channel";
import { BACKCHANNEL_LOGOUT_EVENT, OIDC_CHANNELS, OidcSessionManager, verifyOidcToken, type OidcBackendMessage } from "../../src/index.js";
import { createTestIssuer, type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, httpGet, next, outcome, startApp, type TestApp } from "../helpers/app.js";
import { makeKey, sign, startJwksServer, type JwksServer, type SigningKey } from "../helpers/keys.js";
import { disconnectedWithin, startLogoutApp, type LogoutApp } from "../helpers/logoutApp.js";
import { waitFor } from "../helpers/wait.js";

/** One series a step must have moved: its name in each ecosystem, its labels, and its value (a histogram's: its count). */
export interface Expected {
  otel: string;
  prom: string;
  labels: Record<string, string>;
  value: number;
}

const nowS = () => Math.floor(Date.now() / 1000);
const KEYS_ISSUER = "https://op.metrics.test";
const LOGOUT_ISSUER = "https://op.logout-metrics.test";
const AUDIENCE = "metrics-app";

export class Traffic {
  issuer!: TestIssuer;
  app!: TestApp;
  key!: SigningKey;
  jwks!: JwksServer;
  logoutApp!: LogoutApp;
  /** Every token minted and every `sub` used: none may appear in a label. */
  readonly secrets = new Set<string>();

  async start(): Promise<void> {
    this.issuer = await createTestIssuer();
    this.app = await startApp({ config: { ...this.issuer.config, clockTolerance: 1 }, managers: { session: OidcSessionManager } });
    this.key = await makeKey("RS256");
    this.jwks = await startJwksServer([this.key.jwk]);
    this.logoutApp = await startLogoutApp({ config: { issuer: LOGOUT_ISSUER, audience: AUDIENCE, jwksUri: this.jwks.jwksUri } });
  }

  async close(): Promise<void> {
    await this.logoutApp?.close();
    await this.app?.close();
    await this.jwks?.close();
    await this.issuer?.close();
  }

  sub(prefix = "sub"): string {
    const sub = `${prefix}-${randomUUID()}`;
    this.secrets.add(sub);
    return sub;
  }

  async mint(claims: Record<string, unknown> = {}): Promise<string> {
    const token = await this.issuer.mint({ sub: this.sub(), ...claims });
    this.secrets.add(token);
    return token;
  }

  private kept(token: string): string {
    this.secrets.add(token);
    return token;
  }

  /** HTTP: one token three times (two verifications, then a cache hit), no token, a token from an issuer nobody configured. */
  async http(): Promise<Expected[]> {
    const token = await this.mint();
    for (let i = 0; i < 3; i++) await expectStatus(httpGet(this.app, token), 200);
    await expectStatus(httpGet(this.app, undefined), 401);
    await expectStatus(httpGet(this.app, await this.mint({ iss: "https://nobody-configured-this.example" })), 401);
    const iss = this.issuer.issuer;
    const auth = (labels: Record<string, string>, value: number): Expected[] => [
      { otel: "ioserver_oidc.authentications", prom: "ioserver_oidc_authentications_total", labels, value },
      { otel: "ioserver_oidc.authentication.duration", prom: "ioserver_oidc_authentication_duration_seconds", labels: withoutCache(labels), value },
    ];
    return [
      ...auth({ transport: "http", issuer: iss, outcome: "success", cache: "miss", path: "fast" }, 2),
      ...auth({ transport: "http", issuer: iss, outcome: "success", cache: "hit", path: "cache" }, 1),
      ...auth({ transport: "http", issuer: "unknown", outcome: "ERR_AUTH_TOKEN_REQUIRED", cache: "none", path: "none" }, 1),
      ...auth({ transport: "http", issuer: "unknown", outcome: "ERR_AUTH_TOKEN_INVALID", cache: "none", path: "none" }, 1),
    ];
  }

  /**
   * Sockets: a handshake, a refresh accepted and one refused, a socket a
   * later guard refuses, one that expires, one revoked, one that leaves.
   * `live` is called when three sockets are connected to `/chat` and one to
   * `/lenient`.
   */
  async sockets(live: () => Promise<void>): Promise<Expected[]> {
    const sub = this.sub();
    const chat = await connectedTo(this.app, "chat", await this.mint({ sub }));
    if ((await call<{ ok: boolean }>(chat, "oidc:refresh", { token: await this.mint({ sub }) })).ok !== true) throw new Error("refresh refused");
    await call(chat, "oidc:refresh", { token: this.kept("not-a-token") });
    // Tracked by the authentication middleware, then refused by the admin guard after it.
    const refused = await outcome(this.app.connect("admin", { auth: { token: await this.mint({ roles: ["user"] }) } }));
    if (refused.connected) throw new Error("the admin guard let a user in");
    const expiring = await connectedTo(this.app, "chat", await this.mint({ exp: nowS() + 2 }));
    const revokedSub = this.sub();
    const revoked = await connectedTo(this.app, "chat", await this.mint({ sub: revokedSub }));
    const lenient = await connectedTo(this.app, "lenient", await this.mint({ sub: revokedSub }));
    await live();
    const expired = next(expiring, "oidc:expired");
    const revokedNote = next(revoked, "oidc:revoked");
    const session = this.app.appHandle["session"] as OidcSessionManager;
    if ((await session.disconnectUser(revokedSub, "metrics test")) !== 2) throw new Error("disconnectUser did not end two sockets");
    await revokedNote;
    await expired;
    chat.disconnect();
    await waitFor(() => !lenient.connected && !expiring.connected && !revoked.connected);
    const iss = this.issuer.issuer;
    const event = (namespace: string, name: string, value: number, code = "none", kind = "none"): Expected => ({
      otel: "ioserver_oidc.socket.events",
      prom: "ioserver_oidc_socket_events_total",
      labels: { namespace, event: name, code, kind },
      value,
    });
    return [
      { otel: "ioserver_oidc.authentications", prom: "ioserver_oidc_authentications_total", labels: { transport: "handshake", issuer: iss, outcome: "success", cache: "miss", path: "fast" }, value: 5 },
      { otel: "ioserver_oidc.authentications", prom: "ioserver_oidc_authentications_total", labels: { transport: "refresh", issuer: iss, outcome: "success", cache: "miss", path: "fast" }, value: 1 },
      { otel: "ioserver_oidc.authentications", prom: "ioserver_oidc_authentications_total", labels: { transport: "refresh", issuer: "unknown", outcome: "ERR_AUTH_TOKEN_INVALID", cache: "none", path: "none" }, value: 1 },
      event("/chat", "connected", 3),
      event("/lenient", "connected", 1),
      event("/chat", "refreshed", 1),
      event("/chat", "refresh-refused", 1, "ERR_AUTH_TOKEN_INVALID"),
      event("/chat", "expiring", 1),
      event("/chat", "expired", 1, "ERR_AUTH_TOKEN_EXPIRED"),
      event("/chat", "revoked", 1, "ERR_AUTH_REVOKED", "user"),
      event("/lenient", "revoked", 1, "ERR_AUTH_REVOKED", "user"),
      { otel: "ioserver_oidc.revocations", prom: "ioserver_oidc_revocations_total", labels: { kind: "user" }, value: 1 },
      { otel: "ioserver_oidc.revocation.sockets", prom: "ioserver_oidc_revoked_sockets_total", labels: { kind: "user" }, value: 2 },
      { otel: "ioserver_oidc.revocation.duration", prom: "ioserver_oidc_revocation_duration_seconds", labels: { kind: "user" }, value: 1 },
    ];
  }

  /** Key sets: a fetch that succeeds, then one from a provider that cannot be reached (its issuer's set is then unavailable). */
  async keySets(): Promise<Expected[]> {
    // A key set of its own (the logout app's configuration fetched the other one first, under its issuer).
    const served = await startJwksServer([this.key.jwk]);
    try {
      await verifyOidcToken(await this.signed(KEYS_ISSUER), { issuer: KEYS_ISSUER, audience: AUDIENCE, jwksUri: served.jwksUri });
    } finally {
      await served.close();
    }
    const gone = await startJwksServer([this.key.jwk]);
    await gone.close();
    const unreachable = "https://op.unreachable-metrics.test";
    await verifyOidcToken(await this.signed(unreachable), { issuer: unreachable, audience: AUDIENCE, jwksUri: gone.jwksUri }).then(
      () => {
        throw new Error("verified without keys");
      },
      () => undefined,
    );
    return [
      { otel: "ioserver_oidc.jwks.fetches", prom: "ioserver_oidc_jwks_fetches_total", labels: { issuer: KEYS_ISSUER, outcome: "success", failure: "none" }, value: 1 },
      { otel: "ioserver_oidc.jwks.fetch.duration", prom: "ioserver_oidc_jwks_fetch_duration_seconds", labels: { issuer: KEYS_ISSUER, outcome: "success" }, value: 1 },
      { otel: "ioserver_oidc.jwks.fetches", prom: "ioserver_oidc_jwks_fetches_total", labels: { issuer: unreachable, outcome: "failure", failure: "network" }, value: 1 },
      { otel: "ioserver_oidc.jwks.state", prom: "ioserver_oidc_jwks_state", labels: { issuer: KEYS_ISSUER, state: "fresh" }, value: 1 },
      { otel: "ioserver_oidc.jwks.state", prom: "ioserver_oidc_jwks_state", labels: { issuer: KEYS_ISSUER, state: "unavailable" }, value: 0 },
      { otel: "ioserver_oidc.jwks.state", prom: "ioserver_oidc_jwks_state", labels: { issuer: unreachable, state: "unavailable" }, value: 1 },
      { otel: "ioserver_oidc.jwks.state", prom: "ioserver_oidc_jwks_state", labels: { issuer: unreachable, state: "fresh" }, value: 0 },
      { otel: "ioserver_oidc.jwks.keys", prom: "ioserver_oidc_jwks_keys", labels: { issuer: KEYS_ISSUER }, value: 1 },
      { otel: "ioserver_oidc.jwks.keys", prom: "ioserver_oidc_jwks_keys", labels: { issuer: unreachable }, value: 0 },
      { otel: "ioserver_oidc.jwks.circuit_open", prom: "ioserver_oidc_jwks_circuit_open", labels: { issuer: unreachable }, value: 0 },
      { otel: "ioserver_oidc.authentications", prom: "ioserver_oidc_authentications_total", labels: { transport: "verify", issuer: unreachable, outcome: "ERR_AUTH_UNAVAILABLE", cache: "none", path: "none" }, value: 1 },
    ];
  }

  /** Discovery: an issuer configured without `jwksUri`. */
  async discovery(): Promise<Expected[]> {
    const discovered = await createTestIssuer();
    try {
      await verifyOidcToken(this.kept(await discovered.mint({ sub: this.sub() })), { issuer: discovered.issuer, audience: discovered.appSlug });
      return [
        { otel: "ioserver_oidc.discoveries", prom: "ioserver_oidc_discoveries_total", labels: { issuer: discovered.issuer, outcome: "success" }, value: 1 },
        { otel: "ioserver_oidc.discovery.duration", prom: "ioserver_oidc_discovery_duration_seconds", labels: { issuer: discovered.issuer, outcome: "success" }, value: 1 },
      ];
    } finally {
      await discovered.close();
    }
  }

  /** Back-channel logout: one that ends a socket, its replay, a request without a token. */
  async logout(): Promise<Expected[]> {
    const sub = this.sub();
    const watched = await this.logoutApp.connect(await this.signed(LOGOUT_ISSUER, { sub }));
    const token = this.kept(
      await sign(this.key, { iss: LOGOUT_ISSUER, aud: AUDIENCE, iat: nowS(), exp: nowS() + 120, jti: randomUUID(), sub, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } }, { header: { typ: "logout+jwt" } }),
    );
    await expectStatus(this.logoutApp.logout(token), 200);
    await disconnectedWithin(watched);
    await expectStatus(this.logoutApp.logout(token), 400);
    await expectStatus(this.logoutApp.post("nothing=here"), 400);
    const logout = (outcomeName: string, value: number): Expected[] => [
      { otel: "ioserver_oidc.backchannel_logouts", prom: "ioserver_oidc_backchannel_logouts_total", labels: { outcome: outcomeName }, value },
      { otel: "ioserver_oidc.backchannel_logout.duration", prom: "ioserver_oidc_backchannel_logout_duration_seconds", labels: { outcome: outcomeName }, value },
    ];
    return [
      ...logout("success", 1),
      ...logout("replayed", 1),
      ...logout("invalid-request", 1),
      { otel: "ioserver_oidc.revocations", prom: "ioserver_oidc_revocations_total", labels: { kind: "subject" }, value: 1 },
      { otel: "ioserver_oidc.socket.events", prom: "ioserver_oidc_socket_events_total", labels: { namespace: "/chat", event: "revoked", code: "ERR_AUTH_REVOKED", kind: "subject" }, value: 1 },
    ];
  }

  /**
   * The backend channel, published as the package publishes it: an outage
   * needs a Redis to lose (the Redis tests check the package's messages);
   * here what counts is what the adapter makes of them.
   */
  backend(state: OidcBackendMessage["state"]): void {
    const message: OidcBackendMessage = { backend: "redis", source: "session store", state };
    channel(OIDC_CHANNELS.backend).publish(message);
  }

  private async signed(iss: string, claims: Record<string, unknown> = {}): Promise<string> {
    return this.kept(await sign(this.key, { iss, aud: AUDIENCE, sub: this.sub(), iat: nowS(), exp: nowS() + 600, ...claims }));
  }
}

function withoutCache({ cache: _, ...rest }: Record<string, string>): Record<string, string> {
  return rest;
}

async function expectStatus(response: Promise<{ status: number }>, status: number): Promise<void> {
  const { status: got } = await response;
  if (got !== status) throw new Error(`expected status ${status}, got ${got}`);
}
