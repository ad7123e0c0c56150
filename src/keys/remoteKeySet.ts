/**
 * A remote key set: one JWKS URI with its fetch policy (keySetRegistry.ts
 * shares one per URI and policy across the process). Each set:
 *
 * - fetches once for any number of concurrent callers (single flight);
 * - keeps the set for `jwksCacheMaxAge`, then re-fetches;
 * - re-fetches on an unknown `kid` at most once per `jwksCooldown`;
 * - after a failed fetch, asks again only after an exponential back-off
 *   (1 s doubling to 60 s, or the provider's `Retry-After` when longer, up to
 *   10 min); meanwhile requests fail fast with `KeySetUnavailableError`;
 * - after a timed-out fetch opens its circuit: until a probe fetch succeeds,
 *   requests that arrive while the probe runs fail fast instead of queueing;
 * - when the provider fails after keys were cached, keeps using them for
 *   `jwksStaleIfError` past their max age (logged once per outage).
 *
 * Keys are imported once as `KeyObject`s (for the synchronous verification
 * path) and the same JSON is handed to jose's local key set (the reference
 * path), so both see exactly the same keys.
 */
import type { FlattenedJWSInput, JSONWebKeySet, JWK, JWTHeaderParameters } from "jose";
import { createFastKey, type FastKey } from "../jwt/fastKey.js";
import { loadJose } from "../jwt/jose.js";
import { describeError } from "../util/text.js";
import { jwksChannel, type OidcJwksFailure, type OidcKeySetState } from "../diagnostics.js";
import { fetchJwks, FetchStatusError, FetchTimeoutError, retryDelay } from "./fetchJwks.js";
import { KeySetUnavailableError } from "./keySetUnavailableError.js";

/** One published key: its JWK and, when node:crypto can import it as a public key, its `KeyObject`. */
export interface StoredKey {
  readonly jwk: Readonly<JWK>;
  readonly key: FastKey | undefined;
}

type LocalKeySet = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<unknown>;

/** One fetched version of the set. */
export interface KeySetSnapshot {
  readonly keys: readonly StoredKey[];
  /** Epoch ms of the fetch. */
  readonly fetchedAt: number;
  /** jose's local key set over the same JSON (the reference path). */
  readonly local: LocalKeySet;
}

/** What `getHealth()` reports for one key set. */
export interface KeySetHealth {
  jwksUri: string;
  /** `fresh`: within max age; `stale`: past it, still used (provider failing); `unavailable`: no usable keys; `cold`: never fetched. */
  state: "fresh" | "stale" | "unavailable" | "cold";
  keys: number;
  /** Epoch ms of the last successful fetch. */
  fetchedAt: number | undefined;
  /** Consecutive failed fetches. */
  failures: number;
  /** Epoch ms before which no fetch is attempted (back-off), when failing. */
  retryAt: number | undefined;
  /** `open` after a timed-out fetch, until a fetch succeeds. */
  circuit: "closed" | "open";
  lastError: string | undefined;
}

export type KeySetLog = (level: number, text: string) => void;

/** The config's `jwksTimeout`, `jwksCooldown`, `jwksCacheMaxAge` and `jwksStaleIfError`, in ms. */
export interface KeySetPolicy {
  timeout: number;
  cooldown: number;
  maxAge: number;
  staleIfError: number;
}

/** A remote JWKS with its fetch policy and failure state. */
export class RemoteKeySet {
  private snapshot: KeySetSnapshot | undefined;
  private pending: Promise<KeySetSnapshot> | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastError: unknown;
  private circuitOpen = false;
  private lastFetchStart = 0;
  private servingStale = false;
  /**
   * Epoch ms from which the current snapshot is no longer used: its max age,
   * plus `jwksStaleIfError` once it is served stale; 0 before the first.
   */
  private usableUntil = 0;
  /** Bumped with every new snapshot: a holder that saw its key in this generation needs no search (see `stillPublished`). */
  private generation = 0;
  // `snapshot` and `servingStale` are written only by `use`, which keeps `usableUntil` and `generation` in step with them.
  /** Imported keys by their JWK's JSON, reused across refreshes so cached verifications survive an unchanged key. */
  private imported = new Map<string, StoredKey>();
  /** Where events go: every app that used this set (one logger per app), so an outage is logged whoever meets it first. */
  private readonly loggers = new Set<KeySetLog>();

  /** The configured issuer whose keys these are, as the first configuration that asked for the set named it (for the `jwks` channel). */
  issuer: string | undefined;

  constructor(readonly uri: string, private readonly policy: KeySetPolicy) {}

  /** Send this set's events (failures, stale keys, recovery) to `log` from now on. */
  addLogger(log: KeySetLog | undefined): void {
    if (log !== undefined && !this.loggers.has(log)) this.loggers.add(log);
  }

  private log(level: number, text: string): void {
    for (const log of this.loggers) {
      try {
        log(level, text);
      } catch {
        // A broken logger must not change an auth decision.
      }
    }
  }

  /** The snapshot to use right now without waiting: fresh, or undefined. */
  freshSnapshot(now: number = Date.now()): KeySetSnapshot | undefined {
    const snapshot = this.snapshot;
    return snapshot !== undefined && now - snapshot.fetchedAt < this.policy.maxAge ? snapshot : undefined;
  }

  /**
   * Whether the holder's key is published in the snapshot that would be
   * used now (fresh, or stale within the bound while failing). The holder (a
   * token-cache entry) remembers in `seen` the generation it last found its
   * key in, -1 at first: while no new snapshot came, only the set's usable
   * window is read, not the snapshot and its keys.
   */
  stillPublished(holder: { readonly key: StoredKey; seen: number }, now: number): boolean {
    if (now >= this.usableUntil) return false;
    if (holder.seen !== this.generation) {
      if (this.snapshot?.keys.includes(holder.key) !== true) return false;
      holder.seen = this.generation;
    }
    return true;
  }

  /**
   * The keys to verify with: the cached set while fresh; else a re-fetch
   * (shared); on failure the cached set while within `jwksStaleIfError`.
   * Rejects with `KeySetUnavailableError`.
   */
  async keys(log?: KeySetLog): Promise<KeySetSnapshot> {
    this.addLogger(log);
    const now = Date.now();
    const fresh = this.freshSnapshot(now);
    if (fresh !== undefined) return fresh;
    try {
      return await this.refresh(now);
    } catch (error) {
      const stale = this.staleSnapshot(Date.now());
      if (stale !== undefined) return stale;
      throw error;
    }
  }

  /**
   * A token named a `kid` the set does not have: re-fetch, at most once per
   * cooldown, and never during a back-off. Resolves to the set to use; while
   * the provider is failing the answer is unknown, so it rejects with
   * `KeySetUnavailableError` (the token may be signed by a new key).
   */
  async refreshForUnknownKid(current: KeySetSnapshot, log?: KeySetLog): Promise<KeySetSnapshot> {
    this.addLogger(log);
    const now = Date.now();
    if (this.pending !== undefined && !this.circuitOpen) return this.pending;
    if (this.failures === 0 && now - this.lastFetchStart < this.policy.cooldown) return current;
    return this.refresh(now);
  }

  /** Start fetching now if the set is cold or expired (used to prefetch at start-up). */
  prefetch(log?: KeySetLog): Promise<void> {
    return this.keys(log).then(
      () => undefined,
      () => undefined,
    );
  }

  health(now: number = Date.now()): KeySetHealth {
    const snapshot = this.snapshot;
    return {
      jwksUri: this.uri,
      state: this.state(now),
      keys: snapshot?.keys.length ?? 0,
      fetchedAt: snapshot?.fetchedAt,
      failures: this.failures,
      retryAt: this.failures > 0 ? this.retryAt : undefined,
      circuit: this.circuitOpen ? "open" : "closed",
      lastError: this.lastError === undefined ? undefined : describeError(this.lastError),
    };
  }

  private state(now: number): OidcKeySetState {
    const snapshot = this.snapshot;
    if (snapshot === undefined) return this.failures > 0 ? "unavailable" : "cold";
    // Past its max age but never failed: an idle set, re-fetched on the next request.
    if (now - snapshot.fetchedAt < this.policy.maxAge || this.failures === 0) return "fresh";
    if (now - snapshot.fetchedAt < this.policy.maxAge + this.policy.staleIfError) return "stale";
    return "unavailable";
  }

  /** The `jwks` channel's message for a fetch that started at `started` (performance.now()) in state `before`. */
  private published(started: number, before: OidcKeySetState, ok: boolean): void {
    if (!jwksChannel.hasSubscribers) return;
    jwksChannel.publish({
      issuer: this.issuer,
      jwksUri: this.uri,
      outcome: ok ? "success" : "failure",
      failure: ok ? undefined : failureKind(this.lastError),
      durationMs: performance.now() - started,
      keys: this.snapshot?.keys.length ?? 0,
      before,
      after: this.state(Date.now()),
      circuit: this.circuitOpen ? "open" : "closed",
      failures: this.failures,
    });
  }

  private staleSnapshot(now: number): KeySetSnapshot | undefined {
    const snapshot = this.snapshot;
    if (snapshot === undefined || this.failures === 0) return undefined;
    const age = now - snapshot.fetchedAt;
    if (age >= this.policy.maxAge + this.policy.staleIfError) return undefined;
    if (!this.servingStale) {
      this.use(snapshot, true);
      this.log(4, `[ioserver-oidc] JWKS ${this.uri} is failing (${describeError(this.lastError)}): using the keys fetched ${Math.round(age / 1000)} s ago for up to ${Math.round((this.policy.maxAge + this.policy.staleIfError - age) / 1000)} s more (jwksStaleIfError)`);
    }
    return snapshot;
  }

  private refresh(now: number): Promise<KeySetSnapshot> {
    if (this.pending !== undefined) {
      // After a timeout, the probe runs alone: the others fail fast instead of queueing behind it.
      if (this.circuitOpen) return Promise.reject(this.unavailable("circuit open after a timed-out fetch; a probe fetch is in flight"));
      return this.pending;
    }
    if (now < this.retryAt) {
      return Promise.reject(this.unavailable(`backing off for ${this.retryAt - now} ms after ${this.failures} failed fetch(es)`));
    }
    this.lastFetchStart = now;
    const pending = fetchJwks(this.uri, this.policy.timeout).then(
      (jwks) => this.succeeded(jwks),
      (error: unknown) => {
        throw this.failed(error);
      },
    );
    this.pending = pending;
    const clear = () => {
      if (this.pending === pending) this.pending = undefined;
    };
    pending.then(clear, clear);
    if (jwksChannel.hasSubscribers) {
      const started = performance.now();
      const before = this.state(now);
      pending.then(
        () => this.published(started, before, true),
        () => this.published(started, before, false),
      );
    }
    return pending;
  }

  private async succeeded(jwks: JSONWebKeySet): Promise<KeySetSnapshot> {
    const { createLocalJWKSet } = await loadJose();
    const local = createLocalJWKSet(jwks) as unknown as LocalKeySet;
    const imported = new Map<string, StoredKey>();
    const keys = jwks.keys.map((jwk) => {
      const id = JSON.stringify(jwk);
      const stored = imported.get(id) ?? this.imported.get(id) ?? { jwk: Object.freeze({ ...jwk }), key: createFastKey(jwk) };
      imported.set(id, stored);
      return stored;
    });
    this.imported = imported;
    if (this.failures > 0) this.log(6, `[ioserver-oidc] JWKS ${this.uri} recovered after ${this.failures} failed fetch(es)`);
    this.failures = 0;
    this.retryAt = 0;
    this.lastError = undefined;
    this.circuitOpen = false;
    const snapshot: KeySetSnapshot = Object.freeze({ keys: Object.freeze(keys), fetchedAt: Date.now(), local });
    this.use(snapshot, false);
    return snapshot;
  }

  /**
   * Make `snapshot` the set in use, served stale (past its max age, the
   * provider failing) or not. The one writer of `snapshot` and
   * `servingStale`, and of what `stillPublished` reads instead of them.
   */
  private use(snapshot: KeySetSnapshot, stale: boolean): void {
    if (snapshot !== this.snapshot) this.generation++;
    this.snapshot = snapshot;
    this.servingStale = stale;
    this.usableUntil = snapshot.fetchedAt + this.policy.maxAge + (stale ? this.policy.staleIfError : 0);
  }

  private failed(error: unknown): KeySetUnavailableError {
    this.failures++;
    const delay = retryDelay(this.failures, error);
    this.retryAt = Date.now() + delay;
    this.lastError = error;
    const timedOut = error instanceof FetchTimeoutError;
    if (timedOut && !this.circuitOpen) this.log(4, `[ioserver-oidc] JWKS ${this.uri} timed out: failing fast until ${new Date(this.retryAt).toISOString()}`);
    this.circuitOpen = timedOut || this.circuitOpen;
    if (this.failures === 1) this.log(3, `[ioserver-oidc] JWKS ${this.uri} could not be fetched: ${describeError(error)}; retrying in ${delay} ms`);
    return new KeySetUnavailableError(this.uri, error, `retry in ${delay} ms`);
  }

  private unavailable(note: string): KeySetUnavailableError {
    return new KeySetUnavailableError(this.uri, this.lastError ?? new Error("the key set is empty"), note);
  }
}

/** Why a fetch failed, in one word (the `jwks` channel's `failure`). */
function failureKind(error: unknown): OidcJwksFailure {
  if (error instanceof FetchTimeoutError) return "timeout";
  if (error instanceof FetchStatusError) return "status";
  // fetch() rejects with a TypeError when the connection fails.
  if (error instanceof TypeError) return "network";
  return "invalid";
}
