/**
 * The `htu` of a DPoP proof against the URL of the request it came with
 * (RFC 9449 section 4.3, step 9): query and fragment are ignored, and the
 * two are compared after RFC 3986 section 6.2.2 syntax-based normalisation
 * plus the scheme-based one of section 6.2.3 (default ports, empty path).
 */

/** Unreserved characters (RFC 3986 section 2.3): a percent-encoded one means the character itself. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The normal form of an `htu` (or of a request URL) for comparison: scheme
 * and host in lower case, the scheme's default port dropped, an empty path
 * made `/`, dot segments removed, percent-encoding in upper case and decoded
 * where it encodes an unreserved character; no query, no fragment. The path
 * keeps its case. Resolves to `undefined` when the value is not an absolute
 * `http:` or `https:` URL, or carries user information (a proof never names
 * a user in its `htu`).
 */
export function normalizeHtu(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_HTU_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  // The WHATWG parser lower-cases the scheme and host, drops the default port and removes dot segments.
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  if (url.username !== "" || url.password !== "") return undefined;
  // An http(s) URL's pathname is never empty: "https://a.example" has the path "/".
  return `${url.protocol}//${url.host}${normalizePercentEncoding(url.pathname)}`;
}

/** Longest `htu` considered (a longer one is refused before parsing). */
export const MAX_HTU_LENGTH = 4096;

/** `%7e` → `~`, `%2f` → `%2F`: the two percent-encoding normalisations of RFC 3986 section 6.2.2. */
function normalizePercentEncoding(path: string): string {
  if (!path.includes("%")) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}

/**
 * The URL a request was sent to, as its client saw it, from the app's public
 * origin and the request target (`request.url`: path and query). Behind a
 * proxy the app declares `publicOrigin` (e.g. `"https://api.example.com"`);
 * the request's own `Host` header and scheme are then not trusted. Throws a
 * `TypeError` when `publicOrigin` is not an origin, and resolves to
 * `undefined` when the target is not an origin-form path.
 */
export function requestHtu(publicOrigin: string, target: string): string | undefined {
  const origin = parseOrigin(publicOrigin);
  if (typeof target !== "string" || !target.startsWith("/") || target.startsWith("//")) return undefined;
  return normalizeHtu(`${origin}${target}`);
}

/** `"https://API.example.com:443/"` → `"https://api.example.com"`; a `TypeError` for anything that is not a bare http(s) origin. */
export function parseOrigin(publicOrigin: string): string {
  const url = typeof publicOrigin === "string" && URL.canParse(publicOrigin) ? new URL(publicOrigin) : undefined;
  if (url !== undefined && (url.protocol === "https:" || url.protocol === "http:") && url.username === "" && url.password === "" && url.pathname === "/" && url.search === "" && url.hash === "") {
    return url.origin;
  }
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- JavaScript callers can pass a non-string
  throw new TypeError(`dpop: publicOrigin must be an http(s) origin without path, query or fragment, got ${JSON.stringify(String(publicOrigin))}`);
}
