/**
 * The DPoP options (RFC 9449) validated: the app-wide proof settings
 * (`dpop: { … }`) and each issuer's policy (`dpop: "allowed" | "required" |
 * "disabled"`). The proof checking itself, and the state it keeps (replay
 * store, nonces), is built from these once per app by the pipeline.
 */
import { specOf } from "../jwt/algorithms.js";
import type { OidcDpopConfig, OidcDpopPolicy } from "../types.js";
import { OidcConfigError } from "./errors.js";

/** The shortest nonce secret, in bytes (the size of an HMAC-SHA-256 output). */
const MIN_NONCE_SECRET_BYTES = 32;
const NONCE_OPTIONS = ["secret", "lifetime"];

const POLICIES: readonly OidcDpopPolicy[] = Object.freeze(["allowed", "required", "disabled"]);
const APP_OPTIONS = ["policy", "algorithms", "maxAge", "clockTolerance", "nonce", "publicOrigin", "replayStore"];

function policyOf(value: unknown, key: string): OidcDpopPolicy {
  if (typeof value === "string" && (POLICIES as readonly string[]).includes(value)) return value as OidcDpopPolicy;
  throw new OidcConfigError(key, `must be one of ${POLICIES.map((each) => JSON.stringify(each)).join(", ")}, got ${JSON.stringify(value) ?? "undefined"}`);
}

/**
 * An issuer's policy: its own `dpop` string; with a single issuer (the
 * top-level options), the `policy` of the top-level `dpop` object; else the
 * app's `dpop.policy`; else `"allowed"`.
 */
export function issuerDpopPolicy(own: unknown, app: unknown, key: string): OidcDpopPolicy {
  if (typeof own === "string") return policyOf(own, key);
  const top = own ?? app;
  if (top === undefined || top === null || typeof top !== "object") {
    if (own !== undefined) throw new OidcConfigError(key, `must be one of ${POLICIES.map((each) => JSON.stringify(each)).join(", ")}`);
    return "allowed";
  }
  const policy = (top as { policy?: unknown }).policy;
  return policy === undefined ? "allowed" : policyOf(policy, own === undefined ? '"dpop.policy"' : key.endsWith('"') ? `${key.slice(0, -1)}.policy"` : `${key}.policy`);
}

/** The app-wide `dpop` object, validated and frozen; `undefined` when absent (every default applies). */
export function dpopAppConfig(value: unknown, key = '"dpop"'): OidcDpopConfig | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new OidcConfigError(key, "must be an object { policy, algorithms, maxAge, clockTolerance, nonce, publicOrigin, replayStore }");
  const member = (option: string) => `${key.slice(0, -1)}.${option}"`;
  const given = value as Record<string, unknown>;
  for (const option of Object.keys(given)) {
    if (!APP_OPTIONS.includes(option)) throw new OidcConfigError(key, `has no option ${JSON.stringify(option)} (${APP_OPTIONS.join(", ")})`);
  }
  const { policy, algorithms, maxAge, clockTolerance, nonce, publicOrigin, replayStore } = given;
  if (policy !== undefined) policyOf(policy, member("policy"));
  if (algorithms !== undefined) {
    if (!Array.isArray(algorithms) || algorithms.length === 0) throw new OidcConfigError(member("algorithms"), "must be a non-empty array of asymmetric JWS algorithms");
    for (const alg of algorithms as unknown[]) {
      if (typeof alg !== "string" || specOf(alg) === undefined) throw new OidcConfigError(member("algorithms"), `may only list asymmetric JWS algorithms, got ${JSON.stringify(alg) ?? "undefined"}`);
    }
  }
  if (maxAge !== undefined && (typeof maxAge !== "number" || !Number.isInteger(maxAge) || maxAge < 1 || maxAge > 3600)) {
    throw new OidcConfigError(member("maxAge"), `must be an integer number of seconds from 1 to 3600, got ${JSON.stringify(maxAge) ?? "undefined"}`);
  }
  if (clockTolerance !== undefined && (typeof clockTolerance !== "number" || !Number.isInteger(clockTolerance) || clockTolerance < 0 || clockTolerance > 300)) {
    throw new OidcConfigError(member("clockTolerance"), `must be an integer number of seconds from 0 to 300, got ${JSON.stringify(clockTolerance) ?? "undefined"}`);
  }
  if (nonce !== undefined && typeof nonce !== "boolean") nonceOptions(nonce, member("nonce"));
  const origins = publicOrigin === undefined ? undefined : typeof publicOrigin === "string" ? [publicOrigin] : publicOrigin;
  if (origins !== undefined) {
    if (!Array.isArray(origins) || origins.length === 0) throw new OidcConfigError(member("publicOrigin"), "must be an origin or a non-empty array of origins");
    for (const origin of origins as unknown[]) {
      if (!isOrigin(origin)) throw new OidcConfigError(member("publicOrigin"), `must hold http(s) origins without path, query or fragment (e.g. "https://api.example.com"), got ${JSON.stringify(origin) ?? "undefined"}`);
    }
  }
  if (replayStore !== undefined && (replayStore === null || typeof replayStore !== "object" || typeof (replayStore as { claim?: unknown }).claim !== "function")) {
    throw new OidcConfigError(member("replayStore"), "must have a claim(key, ttlMs) method (e.g. a MemoryReplayStore or redisDpopReplayStore)");
  }
  return Object.freeze({ ...(given as OidcDpopConfig) });
}

/** `dpop.nonce` as an object: `{ secret, lifetime? }`, checked here so a short secret fails with the rest of the configuration. */
function nonceOptions(value: unknown, key: string): void {
  const shape = "must be true, false or { secret, lifetime? } (a secret shared by the nodes of a cluster)";
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new OidcConfigError(key, `${shape}, got ${JSON.stringify(value) ?? String(value)}`);
  const given = value as Record<string, unknown>;
  for (const option of Object.keys(given)) {
    if (!NONCE_OPTIONS.includes(option)) throw new OidcConfigError(key, `has no option ${JSON.stringify(option)} (${NONCE_OPTIONS.join(", ")})`);
  }
  const { secret, lifetime } = given;
  const secretKey = `${key.slice(0, -1)}.secret"`;
  if (secret === undefined) throw new OidcConfigError(secretKey, "is required when nonce is an object (or use nonce: true for a secret of this process only)");
  const bytes = typeof secret === "string" ? Buffer.byteLength(secret, "utf8") : secret instanceof Uint8Array ? secret.byteLength : undefined;
  if (bytes === undefined) throw new OidcConfigError(secretKey, `must be a string or a Uint8Array of at least ${MIN_NONCE_SECRET_BYTES} bytes`);
  if (bytes < MIN_NONCE_SECRET_BYTES) {
    throw new OidcConfigError(secretKey, `is ${bytes} bytes long; it must be at least ${MIN_NONCE_SECRET_BYTES} bytes (e.g. crypto.randomBytes(32), or 64 hex characters)`);
  }
  if (lifetime !== undefined && (typeof lifetime !== "number" || !Number.isInteger(lifetime) || lifetime < 2 || lifetime > 86_400)) {
    throw new OidcConfigError(`${key.slice(0, -1)}.lifetime"`, `must be an integer number of seconds from 2 to 86400, got ${JSON.stringify(lifetime) ?? "undefined"}`);
  }
}

function isOrigin(value: unknown): boolean {
  if (typeof value !== "string" || !URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === "https:" || url.protocol === "http:") && url.username === "" && url.password === "" && url.pathname === "/" && url.search === "" && url.hash === "" && !/[?#]/.test(value);
}
