/**
 * Tokens of one issuer carry the same few `typ` values (and strict mode
 * compares them with `at+jwt`): the last two answers are kept, so a token
 * makes no new strings here.
 */
let typA: string | undefined;
let normalA = "";
let typB: string | undefined;
let normalB = "";

/**
 * RFC 7515 section 4.1.9: a `typ` media type compares case-insensitively, and
 * `application/` may be left out. One normal form for every comparison in the
 * package, the one jose uses: lower case, with `application/` when the value
 * names no other top-level type.
 */
export function normalizeTyp(typ: string): string {
  if (typ === typA) return normalA;
  if (typ === typB) return normalB;
  const lower = typ.toLowerCase();
  const normal = lower.includes("/") ? lower : `application/${lower}`;
  typB = typA;
  normalB = normalA;
  typA = typ;
  normalA = normal;
  return normal;
}
