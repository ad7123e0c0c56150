/**
 * RFC 7515 section 4.1.9: a `typ` media type compares case-insensitively, and
 * `application/` may be left out. One normal form for every comparison in the
 * package, the one jose uses: lower case, with `application/` when the value
 * names no other top-level type.
 */
export function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.includes("/") ? lower : `application/${lower}`;
}
