/**
 * The deny-list: revocations that hold until the tokens they cover expire.
 *
 * Disconnecting a socket is not revocation if the same still-valid token can
 * reconnect at once. So every revocation (by subject, by OP session `sid`, by
 * local user id) is also remembered here, and any token of that subject,
 * session or user **issued at or before** it (`iat` ≤ the revocation's time,
 * in seconds; a token without `iat` counts as issued before) is refused with
 * `ERR_AUTH_REVOKED` on both transports. A token issued later (the user signed
 * in again) is accepted. An entry lives as long as a token issued before it
 * could still be accepted (`revocationTtl`), then goes.
 *
 * One list per app, in memory: the check is on the hot path. It costs one
 * `size` read while the list is empty, and a lookup or three (is this `sub`,
 * `sid` or user id named by any entry?) while it only holds others. A revocation store (`redisRevocationStore`)
 * shares entries between nodes; this list is then each node's mirror of it.
 */
import type { OidcAppHandle, OidcUserContext } from "../types.js";
import { issOf, subjectKey } from "../claims/identity.js";
import { appPart } from "../util/appState.js";

/** One revocation, as kept in memory and in a revocation store. */
export interface OidcRevocation {
  /**
   * `subject`: the token's (issuer, `sub`); `session`: its (issuer, `sid`);
   * `user`: the local user id (`iss` is then `""`).
   */
  kind: "subject" | "session" | "user";
  iss: string;
  /** The `sub`, `sid` or user id. */
  value: string;
  /** When it was revoked, epoch seconds: tokens with `iat` at or before it are refused. */
  at: number;
  /** Until when the entry holds, epoch ms. */
  until: number;
  /** `subject` only: cover only tokens that carry no `sid` (a logout naming a `sid` covers the sid-less ones of its subject). */
  withoutSid?: boolean;
}

/** Entries kept at most; beyond that a tenth of them, those closest to their end, go at once (the caller logs it). */
export const DENY_LIST_MAX = 100_000;

/** What `check` needs besides the context. */
export interface CheckOptions {
  /** Epoch ms. */
  now?: number;
  /**
   * Seconds of clock skew tolerated: a token whose `iat` lies further in the
   * future than this cannot tell when it was issued, so it counts as issued
   * before (the provider's clock running ahead must not carry old tokens past
   * a revocation).
   */
  clockTolerance?: number;
  /**
   * Whether `context.userId` is a local user id (the users manager's). Before
   * provisioning it is derived from the `sub`, and a `user` entry (a local id)
   * must not be matched against it: that would be another user.
   */
  userIds?: boolean;
}

function keyOf(kind: OidcRevocation["kind"], iss: string, value: string, withoutSid: boolean): string {
  return `${kind}${withoutSid ? "-" : ""}\n${subjectKey(iss, value)}`;
}

export class DenyList {
  private readonly entries = new Map<string, OidcRevocation>();
  /**
   * How many entries name each value (a `sub`, a `sid`, a user id). A
   * context none of whose values is named here is covered by no entry: that
   * answers most checks while the list holds entries for others, with a
   * lookup or three of strings the token already has (and has hashed),
   * instead of building and hashing up to four keys.
   */
  private readonly named = new Map<string, number>();

  get size(): number {
    return this.entries.size;
  }

  /**
   * Remember a revocation. An entry for the same key keeps the later `at`
   * and `until`. Returns whether anything changed. `evicted` counts the
   * entries dropped to stay within `DENY_LIST_MAX`, for the caller's log.
   */
  evicted = 0;

  add(entry: OidcRevocation, now = Date.now()): boolean {
    if (entry.until <= now) return false;
    const key = keyOf(entry.kind, entry.iss, entry.value, entry.withoutSid === true);
    const known = this.entries.get(key);
    if (known !== undefined && known.at >= entry.at && known.until >= entry.until) return false;
    const merged: OidcRevocation = known === undefined ? { ...entry } : { ...entry, at: Math.max(known.at, entry.at), until: Math.max(known.until, entry.until) };
    this.entries.delete(key);
    this.entries.set(key, merged);
    if (known === undefined) this.named.set(entry.value, (this.named.get(entry.value) ?? 0) + 1);
    if (this.entries.size > DENY_LIST_MAX) this.prune(now);
    return true;
  }

  /**
   * The revocation that covers this context's token, if any. `context.claims`
   * are the verified claims (`iat`, `iss`, `sid`).
   */
  check(context: OidcUserContext, options: CheckOptions = {}): OidcRevocation | undefined {
    if (this.entries.size === 0) return undefined;
    const sidClaim = context.claims["sid"];
    const sid = typeof sidClaim === "string" && sidClaim !== "" ? sidClaim : undefined;
    const named = this.named;
    if (!named.has(context.sub) && (sid === undefined || !named.has(sid)) && (options.userIds === false || !named.has(context.userId))) return undefined;
    const now = options.now ?? Date.now();
    const iss = issOf(context) ?? "";
    const iatClaim = context.claims["iat"];
    const latest = now / 1000 + (options.clockTolerance ?? 0);
    const iat = typeof iatClaim === "number" && iatClaim <= latest ? iatClaim : -Infinity;
    return (
      this.match(keyOf("subject", iss, context.sub, false), iat, now) ??
      (sid === undefined ? this.match(keyOf("subject", iss, context.sub, true), iat, now) : undefined) ??
      (sid === undefined ? undefined : this.match(keyOf("session", iss, sid, false), iat, now)) ??
      (options.userIds === false ? undefined : this.match(keyOf("user", "", context.userId, false), iat, now))
    );
  }

  private match(key: string, iat: number, now: number): OidcRevocation | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until <= now) {
      this.drop(key, entry);
      return undefined;
    }
    return iat <= entry.at ? entry : undefined;
  }

  /**
   * Drop expired entries; when still over the bound, a tenth of the bound at
   * once (those closest to their end), so the sort runs once per many adds.
   */
  private prune(now: number): void {
    for (const [key, entry] of this.entries) if (entry.until <= now) this.drop(key, entry);
    if (this.entries.size <= DENY_LIST_MAX) return;
    const byEnd = [...this.entries].sort(([, a], [, b]) => a.until - b.until);
    const drop = this.entries.size - Math.floor(DENY_LIST_MAX * 0.9);
    for (const [key, entry] of byEnd.slice(0, drop)) this.drop(key, entry);
    this.evicted += drop;
  }

  private drop(key: string, entry: OidcRevocation): void {
    this.entries.delete(key);
    const count = (this.named.get(entry.value) ?? 1) - 1;
    if (count > 0) this.named.set(entry.value, count);
    else this.named.delete(entry.value);
  }
}

const denyList = appPart("deny-list", () => new DenyList());

/** The deny-list of the app behind this `appHandle`. */
export function denyListOf(appHandle: OidcAppHandle): DenyList {
  return denyList.of(appHandle);
}
