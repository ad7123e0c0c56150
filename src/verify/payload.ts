/**
 * What a verified access-token payload must be before it is handed out, and
 * how it is made safe to share between requests, the token cache and live
 * sockets.
 */
import type { JWTPayload } from "jose";
import type { OidcIssuerConfig } from "../types.js";
import { show } from "../util/text.js";
import { invalid } from "./invalid.js";
import { allStrings, sharedList } from "../util/sharedLists.js";

/**
 * `iss` (and a string `aud`) equal the configured issuer (and one of its
 * audiences): point them at the config's strings, so the payloads kept by
 * the token cache and by live sockets share one copy instead of one per token.
 */
function shareIssuerStrings(payload: JWTPayload, issuer: OidcIssuerConfig): void {
  if (payload.iss === issuer.issuer) payload.iss = issuer.issuer;
  const aud = payload.aud;
  if (typeof aud === "string") {
    const audiences = issuer.audience;
    for (let i = 0; i < audiences.length; i++) {
      if (audiences[i] === aud) {
        payload.aud = audiences[i];
        break;
      }
    }
  }
}

/**
 * Cached payloads are shared by every request that presents the token:
 * nothing may change them. A payload comes from JSON.parse (plain objects and
 * arrays, no cycles); arrays are walked by index, objects by their own keys.
 * Lists of strings inside it (`roles`, `aud`, `groups`, ...) are replaced by
 * the shared frozen copy of an equal list (see sharedLists.ts) before their
 * parent is frozen.
 *
 * A loop, not recursion: a payload within `maxTokenLength` can nest
 * thousands of levels, deeper than the call stack allows. An object is
 * frozen as soon as its members are settled (shared, or put aside to be
 * walked in turn: freezing a parent does not freeze its members); the list
 * of those put aside is only made for a payload that has any.
 */
function deepFreeze(root: object): void {
  if (Object.isFrozen(root)) return;
  let pending: object[] | undefined;
  for (let value: object | undefined = root; value !== undefined; value = pending?.pop()) {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const member: unknown = value[i];
        if (member === null || typeof member !== "object" || Object.isFrozen(member)) continue;
        const shared = sharedIfStrings(member);
        if (shared !== undefined) value[i] = shared;
        else (pending ??= []).push(member);
      }
    } else {
      const record = value as Record<string, unknown>;
      for (const name in record) {
        // Own claims only: for-in also lists an enumerable property someone added to Object.prototype.
        if (!Object.hasOwn(record, name)) continue;
        const member = record[name];
        if (member === null || typeof member !== "object" || Object.isFrozen(member)) continue;
        const shared = sharedIfStrings(member);
        if (shared !== undefined) record[name] = shared;
        else (pending ??= []).push(member);
      }
    }
    Object.freeze(value);
  }
}

/** The shared (frozen) copy of a list of strings; undefined for anything else. */
function sharedIfStrings(member: object): string[] | undefined {
  return Array.isArray(member) && allStrings(member) ? sharedList(member as string[]) : undefined;
}

/**
 * Make a verified payload shareable: its `iss` and `aud` strings point at the
 * config's, its lists of strings are shared copies, and it is frozen all the
 * way down.
 */
export function sharePayload(payload: JWTPayload, issuer: OidcIssuerConfig): void {
  shareIssuerStrings(payload, issuer);
  deepFreeze(payload);
}

/** ES2024 `String.prototype.isWellFormed` (Node 20+), not yet in the compiler's lib. */
type WellFormed = { isWellFormed(): boolean };

/**
 * The subject keys users, rooms and stores: a non-empty string of whole
 * characters (a lone surrogate would turn into U+FFFD in UTF-8 keys and so
 * collide with another subject). So does a string `sid` (rooms).
 */
export function checkSub(payload: JWTPayload): void {
  if (typeof payload.sub !== "string" || payload.sub === "") {
    throw invalid(`sub must be a non-empty string, got ${show(payload.sub)}`);
  }
  if (!(payload.sub as unknown as WellFormed).isWellFormed()) throw invalid(`sub ${show(payload.sub)} is not a well-formed string (lone surrogate)`);
  // A string `sid` names a room (see rooms.ts): one that cannot be encoded refuses the token rather than counting as absent.
  if (typeof payload["sid"] === "string" && !(payload["sid"] as unknown as WellFormed).isWellFormed()) {
    throw invalid(`sid ${show(payload["sid"])} is not a well-formed string (lone surrogate)`);
  }
}
