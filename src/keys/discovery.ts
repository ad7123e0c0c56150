/**
 * OpenID Connect Discovery 1.0 (falling back to RFC 8414): find an issuer's
 * `jwks_uri`. One document per issuer, fetched once and cached; concurrent
 * callers share one fetch; failures are remembered with the back-off of
 * util/backoff.ts so a down provider is not asked on every request.
 */
import type { OidcConfig, OidcIssuerConfig } from "../types.js";
import { KeySetUnavailableError } from "./keySetUnavailableError.js";
import { LruMap } from "./lruMap.js";
import { backoffDelay } from "../util/backoff.js";
import { readBodyLimited } from "../util/readBodyLimited.js";
import { discoveryChannel } from "../diagnostics.js";

/** The largest discovery document read (real ones are a few KiB); a larger one is cut off while it streams. */
const MAX_DISCOVERY_BYTES = 256 * 1024;

interface Entry {
  jwksUri?: string;
  /** The document's `introspection_endpoint` when it names a usable one. */
  introspectionEndpoint?: string;
  pending?: Promise<string>;
  failures: number;
  retryAt: number;
  lastError?: unknown;
}

/** Most issuers whose discovery is remembered. */
export const DISCOVERY_CACHE_SIZE = 256;

/**
 * Process-wide cache: discovery state by issuer, at most
 * DISCOVERY_CACHE_SIZE, least recently used dropped. A dropped issuer is
 * discovered again on its next use (a fetch in flight still settles for
 * those already waiting on it).
 */
const entries = new LruMap<string, Entry>(DISCOVERY_CACHE_SIZE);

/**
 * The entry each live issuer config uses, held for as long as that config
 * lives: an issuer the app trusts keeps its discovery state (and its
 * back-off) however many other issuers pass through the shared cache, so
 * tokens naming many trusted issuers cannot make one rediscovered on every
 * request.
 */
const pinned = new WeakMap<OidcIssuerConfig, Entry>();

function entryOf(issuer: OidcIssuerConfig): Entry {
  let entry = pinned.get(issuer) ?? entries.get(issuer.issuer);
  if (entry === undefined) entries.set(issuer.issuer, (entry = { failures: 0, retryAt: 0 }));
  pinned.set(issuer, entry);
  return entry;
}

/** The discovery URLs to try, in order. */
export function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, "");
  return [
    `${url.origin}${path}/.well-known/openid-configuration`,
    // RFC 8414 section 3: the well-known segment goes between host and path.
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
  ];
}

async function fetchDocument(url: string, timeout: number): Promise<Record<string, unknown> | undefined> {
  const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(timeout), headers: { accept: "application/json" } });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`${url} answered ${response.status}`);
  }
  const text = await readBodyLimited(response, MAX_DISCOVERY_BYTES, `the discovery document ${url}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new Error(`${url} is not JSON`, { cause });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error(`${url} is not a JSON object`);
  return body as Record<string, unknown>;
}

/**
 * A loopback host as the URL parser writes it (lower case, IPv4 in dotted
 * decimal, IPv6 compressed in brackets): `localhost`, 127.0.0.0/8 or `[::1]`.
 * Only the name is looked at, never what it resolves to.
 */
function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * The `jwks_uri` of a discovery document fetched from `url` for `issuer`;
 * throws when the document cannot be used. An https issuer's keys must come
 * over https too: a plain-http `jwks_uri` would let anyone on the path
 * substitute the keys, and with them sign any token. The one exception is a
 * loopback host, for an issuer and its keys run on a developer's machine.
 */
export function jwksUriOfDocument(document: Readonly<Record<string, unknown>>, url: string, issuer: string): string {
  // OIDC Discovery section 4.3 / RFC 8414 section 3.3: the document must name the same issuer.
  if (document["issuer"] !== issuer) throw new Error(`${url} names issuer ${JSON.stringify(document["issuer"])}, not ${JSON.stringify(issuer)}`);
  const jwksUri = document["jwks_uri"];
  const { protocol, hostname } = typeof jwksUri === "string" && URL.canParse(jwksUri) ? new URL(jwksUri) : { protocol: "", hostname: "" };
  if (typeof jwksUri !== "string" || (protocol !== "https:" && protocol !== "http:")) throw new Error(`${url} has no http(s) jwks_uri`);
  if (protocol === "http:" && new URL(issuer).protocol === "https:" && !isLoopbackHost(hostname)) {
    throw new Error(`${url} names a jwks_uri ${JSON.stringify(jwksUri)} that is http: for an https issuer (only a loopback host may be)`);
  }
  return jwksUri;
}

/**
 * The document's `introspection_endpoint` if it is http(s), and https for an
 * https issuer (the token and the client's credentials go there) unless it is
 * on a loopback host; else undefined.
 */
export function introspectionEndpointOfDocument(document: Readonly<Record<string, unknown>>, issuer: string): string | undefined {
  const endpoint = document["introspection_endpoint"];
  if (typeof endpoint !== "string" || !URL.canParse(endpoint)) return undefined;
  const { protocol, hostname } = new URL(endpoint);
  if (protocol !== "https:" && protocol !== "http:") return undefined;
  if (protocol === "http:" && new URL(issuer).protocol === "https:" && !isLoopbackHost(hostname)) return undefined;
  return endpoint;
}

async function discover(issuer: string, timeout: number): Promise<{ jwksUri: string; introspectionEndpoint: string | undefined }> {
  for (const url of discoveryUrls(issuer)) {
    const document = await fetchDocument(url, timeout);
    if (document !== undefined) return { jwksUri: jwksUriOfDocument(document, url, issuer), introspectionEndpoint: introspectionEndpointOfDocument(document, issuer) };
  }
  throw new Error(`no discovery document for ${issuer} (tried ${discoveryUrls(issuer).join(", ")})`);
}

/** The issuer's JWKS URI when configured or already discovered, without waiting. */
export function knownJwksUri(issuer: OidcIssuerConfig): string | undefined {
  return issuer.jwksUri ?? (pinned.get(issuer) ?? entries.get(issuer.issuer))?.jwksUri;
}

/** The issuer's JWKS URI: configured, or discovered. Rejects with `KeySetUnavailableError`. */
export async function jwksUriOf(issuer: OidcIssuerConfig, config: OidcConfig): Promise<string> {
  if (issuer.jwksUri !== undefined) return issuer.jwksUri;
  const entry = entryOf(issuer);
  if (entry.jwksUri !== undefined) return entry.jwksUri;
  if (entry.pending !== undefined) return entry.pending;
  if (Date.now() < entry.retryAt) {
    throw new KeySetUnavailableError(`discovery of ${issuer.issuer}`, entry.lastError, `backing off until ${new Date(entry.retryAt).toISOString()}`);
  }
  const current = entry;
  const started = discoveryChannel.hasSubscribers ? performance.now() : undefined;
  current.pending = discover(issuer.issuer, config.jwksTimeout).then(
    ({ jwksUri, introspectionEndpoint }) => {
      current.jwksUri = jwksUri;
      current.introspectionEndpoint = introspectionEndpoint;
      current.failures = 0;
      current.pending = undefined;
      if (started !== undefined) published(issuer.issuer, started, jwksUri);
      return jwksUri;
    },
    (error: unknown) => {
      current.failures++;
      current.retryAt = Date.now() + backoffDelay(current.failures);
      current.lastError = error;
      current.pending = undefined;
      if (started !== undefined) published(issuer.issuer, started, undefined);
      throw new KeySetUnavailableError(`discovery of ${issuer.issuer}`, error);
    },
  );
  return current.pending;
}

/** The `discovery` channel's message. */
function published(issuer: string, started: number, jwksUri: string | undefined): void {
  if (!discoveryChannel.hasSubscribers) return;
  discoveryChannel.publish({ issuer, outcome: jwksUri === undefined ? "failure" : "success", durationMs: performance.now() - started, jwksUri });
}

/**
 * The `introspection_endpoint` of a discovered issuer's document, discovering
 * it if need be; undefined when the document names none (or none usable).
 * Rejects with `KeySetUnavailableError` when discovery fails.
 */
export async function discoveredIntrospectionEndpoint(issuer: OidcIssuerConfig, config: OidcConfig): Promise<string | undefined> {
  await jwksUriOf(issuer, config);
  return entryOf(issuer).introspectionEndpoint;
}
