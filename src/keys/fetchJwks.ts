/**
 * Fetching a JWK Set: one GET with a deadline, a bounded body, and a
 * provider's `Retry-After` honoured when it asks for a longer pause than the
 * back-off (up to RETRY_AFTER_MAX).
 */
import type { JSONWebKeySet } from "jose";
import { backoffDelay } from "../util/backoff.js";
import { readJsonObject } from "../util/readBodyLimited.js";
import { isObject } from "../util/text.js";

/** A fetch that did not answer within `jwksTimeout`. */
export class FetchTimeoutError extends Error {
  override readonly name = "FetchTimeoutError";
}

/** A fetch refused with an HTTP status, with the provider's `Retry-After` in ms when it sent one. */
export class FetchStatusError extends Error {
  override readonly name = "FetchStatusError";
  constructor(message: string, readonly retryAfter: number | undefined) {
    super(message);
  }
}

/** The longest `Retry-After` honoured. */
export const RETRY_AFTER_MAX = 600_000;
/** The largest JWKS body read; a larger one is cut off while it streams. */
const MAX_JWKS_BYTES = 512 * 1024;

/** `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3), in ms from now. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The JWK Set at `uri`: a JSON object with a non-empty "keys" array of objects. Rejects with FetchTimeoutError, FetchStatusError or Error. */
export async function fetchJwks(uri: string, timeout: number): Promise<JSONWebKeySet> {
  const signal = AbortSignal.timeout(timeout);
  let response: Response;
  try {
    response = await fetch(uri, { redirect: "manual", signal, headers: { accept: "application/json, application/jwk-set+json" } });
  } catch (error) {
    if (signal.aborted) throw new FetchTimeoutError(`no answer within ${timeout} ms`);
    throw error;
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new FetchStatusError(`answered HTTP ${response.status}`, parseRetryAfter(response.headers.get("retry-after")));
  }
  const body = await readJsonObject(response, MAX_JWKS_BYTES, "the key set", () => (signal.aborted ? new FetchTimeoutError(`body not received within ${timeout} ms`) : undefined));
  if (!Array.isArray(body["keys"]) || !(body["keys"] as unknown[]).every(isObject)) {
    throw new Error('answered JSON that is not a JWK Set (an object with a "keys" array of objects)');
  }
  // An empty set is the provider failing to publish keys (503 to clients, back-off, previous keys kept), not a rotation.
  if ((body["keys"] as unknown[]).length === 0) throw new Error("answered an empty key set");
  return body as unknown as JSONWebKeySet;
}

/**
 * How long to wait, in ms, before fetching again after `failures`
 * consecutive failures, the last one `error`: the back-off, or the
 * provider's `Retry-After` when it is longer.
 */
export function retryDelay(failures: number, error: unknown): number {
  const retryAfter = error instanceof FetchStatusError && error.retryAfter !== undefined ? Math.min(error.retryAfter, RETRY_AFTER_MAX) : 0;
  return Math.max(backoffDelay(failures), retryAfter);
}
