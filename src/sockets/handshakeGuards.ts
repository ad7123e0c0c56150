/**
 * The package guards each namespace's handshake runs, remembered so that an
 * in-band refresh can run them again against the refreshed token's context:
 * a refresh is a new handshake for authorization.
 *
 * Socket.IO gives a namespace middleware no way to list its siblings, so each
 * guard's socket hook records its check on the socket's namespace when it
 * runs. Middlewares run in their listed order and each handshake runs the
 * chain from the start, so the first time a check is recorded every check
 * listed before it already is: the record keeps the chain's order. One small
 * array per guarded namespace, nothing per socket; a namespace without
 * guards has no entry.
 */
import type { Namespace } from "socket.io";
import type { OidcUserContext } from "../types.js";

/** A guard's test: returns when the context passes, throws the guard's `OidcAuthError` when it does not. */
export type HandshakeCheck = (context: OidcUserContext) => void;

const checksByNamespace = new WeakMap<Namespace, HandshakeCheck[]>();

/** Record that `namespace`'s handshake runs `check` (once, after the checks recorded before it). */
export function rememberHandshakeCheck(namespace: Namespace | undefined, check: HandshakeCheck): void {
  if (namespace === undefined || namespace === null) return; // not a socket Socket.IO handed over: no namespace to remember
  const checks = checksByNamespace.get(namespace);
  if (checks === undefined) checksByNamespace.set(namespace, [check]);
  else if (!checks.includes(check)) checks.push(check);
}

/** The checks `namespace`'s handshake runs, in order; `undefined` when it runs none. */
export function handshakeChecksOf(namespace: Namespace): readonly HandshakeCheck[] | undefined {
  return checksByNamespace.get(namespace);
}
