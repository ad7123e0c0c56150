/**
 * The URL a request was addressed to, as the transports know it, for
 * comparison with a proof's `htu`. The same for an HTTP request and for a
 * Socket.IO handshake: a handshake is the engine's first HTTP request
 * (`GET /socket.io/?EIO=4&transport=…`), so its URL is the engine endpoint,
 * e.g. `https://api.example.com/socket.io/` (namespaces travel inside the
 * connection and are not part of it).
 */
import { normalizeHtu, requestHtu } from "./normalizeHtu.js";

export interface DpopRequestTarget {
  /** Whether the request reached this server over TLS (Fastify: `request.protocol === "https"`; Socket.IO: `handshake.secure`). */
  secure: boolean;
  /** The request's `Host` header. */
  host: string | undefined;
  /** The request target: path and query (Fastify: `request.url`; Socket.IO: `handshake.url`). */
  url: string;
}

/** A `.` or `..` path segment, percent-encoded or not, or a backslash: what URL parsing resolves and a router does not. */
const UNRESOLVED = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)|\\/i;

/**
 * Whether the request path means the same to the router as to URL parsing.
 * The `htu` comparison resolves dot segments and backslashes (WHATWG URL
 * parsing), a router does not: `/public/../admin` is routed under `/public/`
 * while it parses as `/admin`, so a proof for `/admin` would be accepted on
 * a `/public/` route. Such a request has no URL a proof can name.
 */
function routedAsWritten(url: string): boolean {
  const query = url.indexOf("?");
  return !UNRESOLVED.test(query === -1 ? url : url.slice(0, query));
}

/** A `host[:port]` and nothing else (no user information, path, query or spaces). */
const BARE_HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * The normalised URL of the request, or `undefined` when it cannot be known.
 *
 * With declared public origins (normalised by `resolveDpopOptions`), the one
 * whose host is the request's `Host` is used, and the first one otherwise:
 * the `Host` header chooses among the app's own names but cannot name
 * another server. Without them, the request's own scheme and `Host` are used
 * — right when the app is reached directly; behind a proxy that rewrites
 * them, declare the public origin. (A `Host` the client chooses lets a proof
 * made for another server that accepts the same token be replayed here;
 * declaring the origins closes that.)
 */
export function dpopRequestUrl(target: DpopRequestTarget, publicOrigins: readonly string[] | undefined): string | undefined {
  if (typeof target.url !== "string" || !routedAsWritten(target.url)) return undefined;
  const host = typeof target.host === "string" && BARE_HOST.test(target.host) ? target.host : undefined;
  if (publicOrigins !== undefined && publicOrigins.length > 0) {
    const origin = (host === undefined ? undefined : publicOrigins.find((candidate) => sameHost(candidate, host))) ?? publicOrigins[0];
    return origin === undefined ? undefined : requestHtu(origin, target.url);
  }
  if (host === undefined || typeof target.url !== "string" || !target.url.startsWith("/") || target.url.startsWith("//")) return undefined;
  return normalizeHtu(`${target.secure ? "https" : "http"}://${host}${target.url}`);
}

/** Whether `host` (a `Host` header) names the origin `origin`, default port or not. */
function sameHost(origin: string, host: string): boolean {
  const scheme = origin.startsWith("https:") ? "https:" : "http:";
  return URL.canParse(`${scheme}//${host}`) && new URL(`${scheme}//${host}`).host === new URL(origin).host;
}
