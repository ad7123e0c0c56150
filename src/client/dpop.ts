/**
 * DPoP proofs (RFC 9449) signed in the client: a key pair that stays in the
 * runtime's WebCrypto (browsers, Node >= 20), a proof per request, and a
 * `fetch` that sends the proof and follows the server's nonces. Browser-safe:
 * no Node modules, only `globalThis.crypto`, `TextEncoder`, `URL` and `fetch`.
 * Every JOSE operation is `jose`'s.
 */
// Types of jose only inside this module: they are ES-module only, so none of them may appear in the
// declarations of this entry (a CommonJS project type-checking its libraries could not read them).
type Jose = typeof import("jose");
let loadingJose: Promise<Jose> | undefined;
/**
 * `jose` is an ES module only; a dynamic import keeps the CommonJS build of
 * this entry loadable on every supported Node, and bundlers split it out.
 */
function loadJose(): Promise<Jose> {
  loadingJose ??= import("jose");
  return loadingJose;
}

/** The proof algorithms {@link createDpopKey} can sign with. */
export type DpopAlgorithm = "ES256" | "ES384" | "ES512" | "EdDSA" | "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512";

/**
 * A WebCrypto key (the DOM's `CryptoKey`, Node's `webcrypto.CryptoKey`), by
 * the members this helper reads; declared here so that the entry's types
 * need neither the DOM library nor jose's ES-module-only types.
 */
export interface DpopCryptoKey {
  readonly type: string;
  readonly extractable: boolean;
  readonly algorithm: { readonly name: string };
  readonly usages: readonly string[];
}

/** A WebCrypto key pair (the DOM's `CryptoKeyPair`). */
export interface DpopKeyPair {
  publicKey: DpopCryptoKey;
  privateKey: DpopCryptoKey;
}

/** A public JSON Web Key (RFC 7517) with the members that identify the key: `crv`, `x`, `y` (EC); `crv`, `x` (OKP); `n`, `e` (RSA). */
export interface DpopPublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

/** Options of {@link createDpopKey}. */
export interface CreateDpopKeyOptions {
  /**
   * Use this key pair instead of generating one, e.g. one the app keeps in
   * IndexedDB so the key (and the tokens bound to it) survive a reload.
   * Create it with `extractable: false`; its public key must be exportable
   * (WebCrypto public keys always are). ECDSA P-256/P-384/P-521, Ed25519,
   * RSASSA-PKCS1-v1_5 and RSA-PSS (SHA-256/384/512) keys are supported.
   */
  keyPair?: DpopKeyPair;
  /**
   * The algorithm of a generated key (ignored with `keyPair`). Default
   * `"ES256"`, which every DPoP server accepts. RSA keys are 2048 bits.
   */
  algorithm?: DpopAlgorithm;
}

/** What a proof is for: see {@link DpopKey.proof}. */
export interface DpopProofRequest {
  /** The HTTP method (`htm`), e.g. `"GET"`; `"GET"` for a Socket.IO handshake. */
  method: string;
  /** The absolute URL of the request; its query and fragment are left out of `htu`. */
  url: string | URL;
  /** The access token sent with the proof: its hash becomes `ath`. Omit it for a token endpoint request. */
  accessToken?: string;
  /**
   * The server's nonce. When omitted, the nonce remembered for the URL's
   * origin (see {@link DpopKey.setNonce}) is used, if any; `null` sends none.
   */
  nonce?: string | null;
}

/** `fetch`'s options plus the access token to send as `Authorization: DPoP <token>`. */
export type DpopFetchInit = RequestInit & { accessToken?: string };

/** A DPoP key: signs proofs and sends them. Created by {@link createDpopKey}. */
export interface DpopKey {
  /** The proof algorithm (`alg` of every proof). */
  readonly algorithm: DpopAlgorithm;
  /** RFC 7638 SHA-256 thumbprint of the public key: what a bound token's `cnf.jkt` names, and the `dpop_jkt` of an authorization request. */
  readonly jkt: string;
  /** The public key as a JWK (required members only), as it appears in every proof's `jwk` header. */
  readonly publicJwk: Readonly<DpopPublicJwk>;
  /** The key pair; its private key is never exported by this helper. */
  readonly keyPair: Readonly<DpopKeyPair>;
  /**
   * A fresh proof JWT for one request: header `{ typ: "dpop+jwt", alg, jwk }`,
   * claims `jti` (128 random bits), `htm`, `htu` (the URL without query and
   * fragment), `iat` (now), `ath` when `accessToken` is given, `nonce` when
   * there is one.
   */
  proof(request: DpopProofRequest): Promise<string>;
  /**
   * `fetch` with DPoP: adds `DPoP: <proof>` for the request's method and URL,
   * and `Authorization: DPoP <accessToken>` when `accessToken` is given.
   * Remembers a `DPoP-Nonce` response header for the origin and uses it in
   * later proofs. On a nonce challenge (a 401 whose `WWW-Authenticate` has
   * `error="use_dpop_nonce"`, or a 400 with the JSON error `use_dpop_nonce`
   * from a token endpoint) with a new nonce, the request is sent once more
   * with a new proof; the second answer is returned whatever it is.
   */
  fetch(input: string | URL | Request, init?: DpopFetchInit): Promise<Response>;
  /** The nonce remembered for the origin of `url` (an origin or any URL under it), if any. */
  getNonce(url: string | URL): string | undefined;
  /** Remember `nonce` for the origin of `url` (an origin or any URL under it); `undefined` forgets it. */
  setNonce(url: string | URL, nonce: string | undefined): void;
}

/** WebCrypto generation parameters per algorithm. */
const GENERATE: Record<DpopAlgorithm, EcKeyGenParams | Algorithm | RsaHashedKeyGenParams> = {
  ES256: { name: "ECDSA", namedCurve: "P-256" },
  ES384: { name: "ECDSA", namedCurve: "P-384" },
  ES512: { name: "ECDSA", namedCurve: "P-521" },
  EdDSA: { name: "Ed25519" },
  RS256: rsa("RSASSA-PKCS1-v1_5", "SHA-256"),
  RS384: rsa("RSASSA-PKCS1-v1_5", "SHA-384"),
  RS512: rsa("RSASSA-PKCS1-v1_5", "SHA-512"),
  PS256: rsa("RSA-PSS", "SHA-256"),
  PS384: rsa("RSA-PSS", "SHA-384"),
  PS512: rsa("RSA-PSS", "SHA-512"),
};

interface Algorithm {
  name: string;
}
interface EcKeyGenParams extends Algorithm {
  namedCurve: string;
}
interface RsaHashedKeyGenParams extends Algorithm {
  modulusLength: number;
  publicExponent: Uint8Array;
  hash: string;
}

function rsa(name: string, hash: string): RsaHashedKeyGenParams {
  return { name, hash, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) };
}

/** The WebCrypto subtle API, or a clear error where the runtime has none (an insecure browser context). */
function subtle(): SubtleCryptoLike {
  const api = (globalThis as { crypto?: { subtle?: SubtleCryptoLike } }).crypto?.subtle;
  if (api === undefined) throw new TypeError("DPoP: this runtime has no WebCrypto (globalThis.crypto.subtle): a browser needs a secure context (https or localhost), Node needs version 20 or later");
  return api;
}

/** The part of `SubtleCrypto` used here (the package's type library has no DOM). */
interface SubtleCryptoLike {
  generateKey(algorithm: unknown, extractable: boolean, usages: string[]): Promise<DpopKeyPair>;
  digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer>;
}

/** The JWS algorithm of a WebCrypto key, or a `TypeError` naming what is not supported. */
function algorithmOf(key: DpopCryptoKey): DpopAlgorithm {
  const algorithm = key.algorithm as { name?: string; namedCurve?: string; hash?: { name?: string } };
  const name = algorithm?.name;
  if (name === "ECDSA") {
    const alg = ({ "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" } as const)[algorithm.namedCurve as "P-256"];
    if (alg !== undefined) return alg;
    throw new TypeError(`createDpopKey: the ECDSA curve ${JSON.stringify(algorithm.namedCurve)} is not supported (P-256, P-384, P-521)`);
  }
  if (name === "Ed25519") return "EdDSA";
  if (name === "RSASSA-PKCS1-v1_5" || name === "RSA-PSS") {
    const bits = ({ "SHA-256": "256", "SHA-384": "384", "SHA-512": "512" } as const)[algorithm.hash?.name as "SHA-256"];
    if (bits !== undefined) return `${name === "RSA-PSS" ? "PS" : "RS"}${bits}`;
    throw new TypeError(`createDpopKey: the ${name} hash ${JSON.stringify(algorithm.hash?.name)} is not supported (SHA-256, SHA-384, SHA-512)`);
  }
  throw new TypeError(`createDpopKey: a ${JSON.stringify(name)} key cannot sign DPoP proofs (ECDSA P-256/P-384/P-521, Ed25519, RSASSA-PKCS1-v1_5 or RSA-PSS)`);
}

/** The members of a public JWK that identify the key (RFC 7638 section 3.2), nothing else. */
function publicMembers(jwk: { kty?: string; crv?: string; x?: string; y?: string; n?: string; e?: string }): DpopPublicJwk {
  switch (jwk.kty) {
    case "EC":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    case "OKP":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
    case "RSA":
      return { kty: jwk.kty, n: jwk.n, e: jwk.e };
    default:
      throw new TypeError(`createDpopKey: the public key exported as a ${JSON.stringify(jwk.kty)} JWK`);
  }
}

function isKey(value: unknown): value is DpopCryptoKey {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string" && typeof (value as { algorithm?: unknown }).algorithm === "object";
}

/** The origin a URL (or an origin) belongs to, the key of the remembered nonces. */
function originOf(url: string | URL): string {
  const origin = new URL(url).origin;
  if (origin === "null") throw new TypeError(`DPoP: ${JSON.stringify(String(url))} has no origin`);
  return origin;
}

/**
 * The `htu` of a proof for `url`: the absolute URL without query and
 * fragment (RFC 9449 section 4.2).
 */
export function dpopHtu(url: string | URL): string {
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new TypeError(`DPoP: a proof is for an http(s) URL, not ${JSON.stringify(String(url))}`);
  parsed.search = "";
  parsed.hash = "";
  return parsed.href;
}

/** Options of {@link dpopSocketHtu}: the `io()` options that shape the engine endpoint's URL. */
export interface DpopSocketHtuOptions {
  /** The Socket.IO `path` option (default `"/socket.io"`). */
  path?: string | undefined;
  /** The engine's `addTrailingSlash` option (default `true`). */
  addTrailingSlash?: boolean | undefined;
}

/**
 * The `htu` of a Socket.IO handshake proof: the URL of the engine endpoint
 * that `io(url, options)` opens, without query, `http`/`https` even for a
 * `ws://`/`wss://` URL. The namespace in `url` is not part of it (all
 * namespaces share the endpoint): `https://api.example.com/chat` with the
 * default options gives `https://api.example.com/socket.io/`. A URL without
 * a scheme, or a relative one, is resolved the way socket.io-client does
 * (against `location` in a browser, `https://` otherwise).
 *
 * @throws {TypeError} when `url` is relative and there is no `location`, or
 * is not an http(s) or ws(s) URL.
 */
export function dpopSocketHtu(url: string, options: DpopSocketHtuOptions = {}): string {
  const where = (globalThis as { location?: { protocol: string; host: string } }).location;
  let absolute = url;
  if (absolute.startsWith("//")) absolute = `${where?.protocol ?? "https:"}${absolute}`;
  else if (absolute.startsWith("/")) {
    if (where === undefined) throw new TypeError(`DPoP: the Socket.IO URL ${JSON.stringify(absolute)} is relative and there is no location to resolve it against`);
    absolute = `${where.protocol}//${where.host}${absolute}`;
  } else if (!/^(https?|wss?):\/\//i.test(absolute)) absolute = `${where?.protocol ?? "https:"}//${absolute}`;
  let parsed: URL;
  try {
    parsed = new URL(absolute);
  } catch {
    throw new TypeError(`DPoP: ${JSON.stringify(url)} is not a Socket.IO URL`);
  }
  const scheme = ({ "http:": "http:", "ws:": "http:", "https:": "https:", "wss:": "https:" } as Record<string, string>)[parsed.protocol];
  if (scheme === undefined) throw new TypeError(`DPoP: ${JSON.stringify(url)} is not an http(s) or ws(s) URL`);
  // As the engine builds it: the path without its trailing slash, then one unless addTrailingSlash is false.
  const path = (options.path ?? "/socket.io").replace(/\/$/, "") + (options.addTrailingSlash === false ? "" : "/");
  // A ws(s) URL's default port is its http(s) twin's, so the host (port included when not the default) carries over.
  return dpopHtu(`${scheme}//${parsed.host}${path.startsWith("/") ? "" : "/"}${path}`);
}

/** Does this answer ask for (another) nonce, per RFC 9449 section 8? Reads a copy of the body, never the body itself. */
async function asksForNonce(response: Response): Promise<boolean> {
  if (response.status === 401) {
    return /\berror\s*=\s*"?use_dpop_nonce\b/i.test(response.headers.get("www-authenticate") ?? "");
  }
  if (response.status === 400 && /\bjson\b/i.test(response.headers.get("content-type") ?? "")) {
    try {
      const body = (await response.clone().json()) as { error?: unknown } | null;
      return body?.error === "use_dpop_nonce";
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * Create a DPoP key: generate a non-extractable key pair in WebCrypto (ES256
 * unless `options.algorithm` says otherwise), or wrap the app's own
 * `options.keyPair`. The private key never leaves WebCrypto: proofs are
 * signed with it in place.
 *
 * @example
 * ```ts
 * const key = await createDpopKey();
 * // authorization request: dpop_jkt=key.jkt; token request: key.fetch(tokenEndpoint, { method: "POST", body })
 * const response = await key.fetch("https://api.example.com/me", { accessToken });
 * ```
 *
 * @throws {TypeError} (as a rejection) when the runtime has no WebCrypto,
 * `algorithm` is unknown, or `keyPair` is not a usable signing pair (not a
 * pair of WebCrypto keys, an unsupported algorithm, a public key that cannot
 * be exported, or two keys that do not belong together).
 */
export async function createDpopKey(options: CreateDpopKeyOptions = {}): Promise<DpopKey> {
  const jose = await loadJose();
  let keyPair: DpopKeyPair;
  let algorithm: DpopAlgorithm;
  if (options.keyPair !== undefined) {
    const { publicKey, privateKey } = (options.keyPair ?? {}) as Partial<DpopKeyPair>;
    if (!isKey(publicKey) || !isKey(privateKey) || publicKey.type !== "public" || privateKey.type !== "private") {
      throw new TypeError("createDpopKey: options.keyPair must be a WebCrypto key pair { publicKey, privateKey }");
    }
    algorithm = algorithmOf(privateKey);
    if (algorithmOf(publicKey) !== algorithm) throw new TypeError("createDpopKey: the public and private keys of options.keyPair are not of the same algorithm");
    if (!privateKey.usages.includes("sign")) throw new TypeError('createDpopKey: the private key of options.keyPair must allow "sign"');
    if (!publicKey.extractable) throw new TypeError("createDpopKey: the public key of options.keyPair must be extractable (it goes into every proof)");
    keyPair = { publicKey, privateKey };
  } else {
    algorithm = options.algorithm ?? "ES256";
    const params = Object.hasOwn(GENERATE, algorithm) ? GENERATE[algorithm] : undefined;
    if (params === undefined) throw new TypeError(`createDpopKey: options.algorithm ${JSON.stringify(algorithm)} is not one of ${Object.keys(GENERATE).join(", ")}`);
    keyPair = await subtle().generateKey(params, false, ["sign", "verify"]);
  }

  const publicJwk = Object.freeze(publicMembers(await jose.exportJWK(keyPair.publicKey)));
  const jkt = await jose.calculateJwkThumbprint(publicJwk, "sha256");
  if (options.keyPair !== undefined) {
    // A pair whose halves do not match would sign proofs no server accepts: find out now, not at the first request.
    // (The check needs a public key that allows "verify", as generated pairs do; one that does not is taken on trust.)
    let probe: string;
    try {
      probe = await new jose.CompactSign(new TextEncoder().encode(jkt)).setProtectedHeader({ alg: algorithm }).sign(keyPair.privateKey);
    } catch (error) {
      throw new TypeError(`createDpopKey: the private key of options.keyPair cannot sign ${algorithm}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (keyPair.publicKey.usages.includes("verify")) {
      try {
        await jose.compactVerify(probe, keyPair.publicKey, { algorithms: [algorithm] });
      } catch {
        throw new TypeError("createDpopKey: the private key of options.keyPair does not belong to its public key");
      }
    }
  }

  const nonces = new Map<string, string>();
  const getNonce = (url: string | URL): string | undefined => nonces.get(originOf(url));
  const setNonce = (url: string | URL, nonce: string | undefined): void => {
    if (nonce === undefined) nonces.delete(originOf(url));
    else if (typeof nonce === "string" && nonce !== "") nonces.set(originOf(url), nonce);
    else throw new TypeError("DPoP: a nonce is a non-empty string");
  };

  const proof = async ({ method, url, accessToken, nonce }: DpopProofRequest): Promise<string> => {
    if (typeof method !== "string" || method === "") throw new TypeError("DPoP proof: method must be a non-empty string");
    const htu = dpopHtu(url);
    const claims: Record<string, string> = { htm: method, htu };
    if (accessToken !== undefined) {
      if (typeof accessToken !== "string" || accessToken === "") throw new TypeError("DPoP proof: accessToken must be a non-empty string");
      claims.ath = jose.base64url.encode(new Uint8Array(await subtle().digest("SHA-256", new TextEncoder().encode(accessToken))));
    }
    const useNonce = nonce === undefined ? nonces.get(originOf(htu)) : nonce;
    if (useNonce !== null && useNonce !== undefined) claims.nonce = useNonce;
    return new jose.SignJWT(claims)
      .setProtectedHeader({ typ: "dpop+jwt", alg: algorithm, jwk: publicJwk })
      .setJti(jose.base64url.encode(globalThis.crypto.getRandomValues(new Uint8Array(16))))
      .setIssuedAt()
      .sign(keyPair.privateKey);
  };

  const dpopFetch = async (input: string | URL | Request, init: DpopFetchInit = {}): Promise<Response> => {
    const { accessToken, ...requestInit } = init;
    // One Request fixes the method and absolute URL the proof names; each attempt sends a copy (a body can be read once).
    const request = new Request(input, requestInit);
    if (accessToken !== undefined) request.headers.set("authorization", `DPoP ${accessToken}`);
    const send = async (): Promise<Response> => {
      const attempt = request.clone();
      attempt.headers.set("dpop", await proof({ method: request.method, url: request.url, accessToken }));
      const response = await fetch(attempt);
      const fresh = response.headers.get("dpop-nonce");
      if (fresh) setNonce(request.url, fresh);
      return response;
    };
    const before = getNonce(request.url);
    const response = await send();
    const after = getNonce(request.url);
    if (after === undefined || after === before || !(await asksForNonce(response))) return response;
    await response.body?.cancel().catch(() => undefined);
    return send();
  };

  return Object.freeze({ algorithm, jkt, publicJwk, keyPair: Object.freeze(keyPair), proof, fetch: dpopFetch, getNonce, setNonce });
}
