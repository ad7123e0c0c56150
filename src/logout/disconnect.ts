/**
 * Section 2.7: what a verified logout token ends. With `sid`: the sockets
 * whose access token carried that `sid` from that issuer, plus, when `sub` is
 * given too, that user's sockets (from that issuer) whose access token
 * carried no `sid` at all (nothing tells their session apart). With `sub`
 * only: every socket of that subject from that issuer. Their tokens stay
 * refused until they expire (the deny-list), up to the logout token's own
 * `iat`.
 *
 * The app's session tracker does it when it has the issuer-scoped methods
 * (`disconnectSessionId(sid, reason, iss)`, `disconnectSubject(sub, { iss,
 * reason, withoutSid })`, as `OidcSessionManager` has them); otherwise the
 * package's own revocation path does (`sockets/revocations.ts`), the same
 * one the session manager uses.
 */
import { hasUsersManager } from "../claims/identity.js";
import { endRevokedSockets } from "../sockets/revoke.js";
import { asOf, revokeSessionId, revokeSubject, type RevokeOptions } from "../sockets/revocations.js";
import type { OidcRevocation } from "../stores/denyList.js";
import { recordRevocations, revocationNow } from "../stores/revocationStore.js";
import type { OidcAppHandle, OidcConfig } from "../types.js";
import { withTimeout } from "../util/withTimeout.js";
import type { OidcLogoutToken } from "./logoutToken.js";

/** What a disconnect did: sockets ended (when every call reported a count), and through what. */
export interface Outcome {
  count: number | undefined;
  via: string;
}

interface SessionMethods {
  disconnectSessionId?: (sid: string, reason?: string, iss?: string) => unknown;
  disconnectSubject?: (sub: string, options: { iss: string; reason?: string; withoutSid?: boolean }) => unknown;
  disconnectUser?: (userId: string, reason?: string) => unknown;
}

/**
 * The deny-list entries of a logout: its session (and the subject's sid-less
 * tokens), or its subject, covering the tokens issued up to the logout
 * token's own `iat` (the provider's clock, like the access tokens' `iat`):
 * recording them again for the same logout token changes nothing.
 */
function logoutRevocations(config: OidcConfig, logout: OidcLogoutToken): OidcRevocation[] {
  const { iss, sid, sub } = logout;
  const at = (entry: OidcRevocation): OidcRevocation => ({ ...entry, at: logout.iat });
  return sid !== undefined
    ? [at(revocationNow("session", iss, sid, config)), ...(sub === undefined ? [] : [at(revocationNow("subject", iss, sub, config, true))])]
    : [at(revocationNow("subject", iss, sub as string, config))];
}

/**
 * End, on this node only, the live sockets the logout's entries cover (a
 * replayed logout whose first delivery may have stopped half-way, or a
 * tracker that failed). Returns how many.
 */
export function endCoveredHere(app: OidcAppHandle, config: OidcConfig, logout: OidcLogoutToken, reason: string): number {
  const entries = logoutRevocations(config, logout);
  recordRevocations(app, entries)();
  return entries.reduce((count, entry) => count + endRevokedSockets(app, entry, reason), 0);
}

/** Everything the logout designates, through the tracker's methods when it has them, else the package's revocation path. */
export async function disconnect(app: OidcAppHandle, config: OidcConfig, logout: OidcLogoutToken, reason: string, timeout: number): Promise<Outcome> {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- false positive: `session` is typed `unknown`; without the assertion tsc rejects the method reads below
  const session = (app.session ?? undefined) as SessionMethods | undefined;
  const bySid = typeof session?.disconnectSessionId === "function" ? session.disconnectSessionId : undefined;
  const bySubject = typeof session?.disconnectSubject === "function" ? session.disconnectSubject : undefined;
  // disconnectUser takes a user id: a sub is one only with one issuer and no users manager (see identity.ts).
  const byUser = typeof session?.disconnectUser === "function" && config.issuers.length === 1 && !hasUsersManager(app) ? session.disconnectUser : undefined;
  const { iss, sid, sub } = logout;
  const tracked = sid !== undefined ? bySid !== undefined : bySubject !== undefined || byUser !== undefined;
  if (!tracked) return revokeHere(app, logout, { reason, issuedBy: logout.iat });

  // The tokens of the logged-out session stay refused at once, whatever the tracker does; the shared store hears of it after.
  const publish = recordRevocations(app, logoutRevocations(config, logout));
  // The tracker's revocations (through the package) cover the tokens issued up to the logout, as the entries above do.
  const counted = async (what: string, work: () => unknown): Promise<number | undefined> => {
    const value = await withTimeout(() => asOf(logout.iat, work), timeout, what);
    return typeof value === "number" && Number.isFinite(value) ? value : undefined;
  };
  try {
    if (sid !== undefined && bySid !== undefined) {
      const calls: Array<Promise<number | undefined>> = [counted("session.disconnectSessionId", () => bySid.call(session, sid, reason, iss))];
      let via = "session.disconnectSessionId";
      if (sub !== undefined && bySubject !== undefined) {
        // Disjoint from the sid's sockets: a socket is in one room or the other.
        calls.push(counted("session.disconnectSubject", () => bySubject.call(session, sub, { iss, reason, withoutSid: true })));
        via += " + session.disconnectSubject";
      } else if (sub !== undefined) {
        calls.push(revokeSubject(app, sub, iss, true, { reason, issuedBy: logout.iat }));
        via += " + the package's revocation";
      }
      const counts = await Promise.all(calls);
      return { count: counts.every((count) => count !== undefined) ? counts.reduce<number>((sum, count) => sum + count, 0) : undefined, via };
    }
    if (bySubject !== undefined) return { count: await counted("session.disconnectSubject", () => bySubject.call(session, sub as string, { iss, reason })), via: "session.disconnectSubject" };
    return { count: await counted("session.disconnectUser", () => byUser!.call(session, sub as string, reason)), via: "session.disconnectUser" };
  } finally {
    publish();
  }
}

/** The package's own revocation path (no tracker with the methods): every node, with the Redis adapter. */
async function revokeHere(app: OidcAppHandle, logout: OidcLogoutToken, options: RevokeOptions): Promise<Outcome> {
  const { iss, sid, sub } = logout;
  let count: number;
  if (sid !== undefined) {
    count = await revokeSessionId(app, sid, iss, options);
    if (sub !== undefined) count += await revokeSubject(app, sub, iss, true, options);
  } else {
    count = await revokeSubject(app, sub as string, iss, false, options);
  }
  return { count, via: "the package's revocation" };
}
