/** What the refusal log says of a socket: built only when a socket step is refused. */
import type { Socket } from "socket.io";
import type { OidcUserContext } from "../types.js";
import type { RefusalSource, RefusalTransport } from "../util/refusalLog.js";
import { issOf } from "../claims/identity.js";
import { socketToken } from "../pipeline/extractToken.js";
import { show } from "../util/text.js";
import { contextOf } from "./socketState.js";

/** How each socket step starts its text line. */
const PREFIX: Readonly<Record<RefusalTransport, string>> = {
  http: "HTTP",
  handshake: "socket",
  event: "socket",
  refresh: "refresh",
  recovery: "recovered socket",
  connection: "connection",
};

export interface SocketRefusalDetails {
  guard?: string | undefined;
  event?: string | undefined;
  note?: string | undefined;
  /** The token to name the issuer by, instead of the socket's context or handshake (a refresh's new token). */
  token?: unknown;
}

/** What the socket's context or handshake says a socket is, plain where anything may be missing (a guarded event's socket comes from the app). */
interface SocketLike {
  id?: unknown;
  nsp?: { name?: unknown } | null;
  handshake?: { address?: unknown; auth?: unknown; headers?: Record<string, unknown> } | null;
  data?: { auth?: unknown } | null;
}

/**
 * The socket id as the request id, the handshake's address, the namespace,
 * and the issuer: the given token's claimed one when a token is given, else
 * the socket's verified context's, else the handshake token's claimed one.
 */
export function socketSource(socket: Socket | SocketLike | null | undefined, transport: RefusalTransport, details: SocketRefusalDetails = {}): RefusalSource {
  try {
    return sourceOf(socket, transport, details);
  } catch {
    // A throwing getter on an app's socket must not stop the refusal.
    return { where: `${PREFIX[transport]} (unreadable socket)`, transport, guard: details.guard, event: details.event, note: details.note };
  }
}

function sourceOf(socket: Socket | SocketLike | null | undefined, transport: RefusalTransport, details: SocketRefusalDetails): RefusalSource {
  const plain = (socket ?? {}) as SocketLike;
  const id = typeof plain.id === "string" ? plain.id : undefined;
  const namespace = typeof plain.nsp?.name === "string" ? plain.nsp.name : undefined;
  const address = plain.handshake?.address;
  const auth = (socket !== null && typeof socket === "object" ? contextOf(socket) : undefined) ?? (plain.data?.auth as OidcUserContext | null | undefined);
  const context = auth !== null && typeof auth === "object" && typeof auth.claims === "object" ? auth : undefined;
  const given = "token" in details;
  const where = `${PREFIX[transport]} ${namespace ?? "?"} ${id ?? "?"}${details.event === undefined ? "" : ` event ${show(details.event)}`}`;
  return {
    where,
    transport,
    requestId: id,
    address: typeof address === "string" ? address : undefined,
    route: namespace,
    guard: details.guard,
    event: details.event,
    note: details.note,
    issuer: given || context === undefined ? undefined : issOf(context),
    token: given ? details.token : context === undefined && transport === "handshake" ? socketToken(plain.handshake ?? undefined) : undefined,
  };
}
