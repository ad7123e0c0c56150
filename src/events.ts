/** Event names of the live-connection protocol, shared by the server and `ioserver-oidc/client`. */
export const OIDC_EVENTS = Object.freeze({
  expiring: "oidc:expiring",
  refresh: "oidc:refresh",
  expired: "oidc:expired",
  revoked: "oidc:revoked",
} as const);
