/**
 * A token's confirmation (RFC 7800 `cnf`): the key a DPoP-bound token is
 * bound to (RFC 9449 section 6), read the same way from a JWT's claims and
 * from an introspection answer.
 */

/** The key a token is bound to: `cnf.jkt` when it is a non-empty string. */
export function boundKey(cnf: unknown): string | undefined {
  if (cnf === null || typeof cnf !== "object") return undefined;
  const jkt = (cnf as { jkt?: unknown }).jkt;
  return typeof jkt === "string" && jkt !== "" ? jkt : undefined;
}
