/**
 * Why a DPoP proof was refused: the RFC 9449 error code the client may learn
 * (section 7.1, section 9), and the server-side reason it may not. The
 * transports turn it into a 401 with a `DPoP` challenge (`dpopChallenge`)
 * and, for `use_dpop_nonce`, a `DPoP-Nonce` header.
 */

/**
 * - `invalid_dpop_proof`: the proof is missing, malformed, badly signed, or
 *   does not match the request (method, URL, time, token hash, replay).
 * - `invalid_token`: the proof is sound but its key is not the one the
 *   access token is bound to (`cnf.jkt`): the token is refused.
 * - `use_dpop_nonce`: the proof lacks the server's current nonce; `nonce`
 *   holds the one to send in `DPoP-Nonce`.
 */
export type DpopErrorCode = "invalid_dpop_proof" | "invalid_token" | "use_dpop_nonce";

const DESCRIPTIONS: Readonly<Record<DpopErrorCode, string>> = Object.freeze({
  invalid_dpop_proof: "The DPoP proof is invalid",
  invalid_token: "Invalid DPoP key binding",
  use_dpop_nonce: "Resource server requires nonce in DPoP proof",
});

export class DpopProofError extends Error {
  override readonly name = "DpopProofError";
  /** The RFC 9449 error code: all the client learns. */
  readonly error: DpopErrorCode;
  /** Why the proof was refused, for the server log. Attacker-influenced parts are quoted and shortened. */
  readonly reason: string;
  /** For `use_dpop_nonce`: the nonce the client must use next (the `DPoP-Nonce` response header). */
  readonly nonce: string | undefined;

  constructor(error: DpopErrorCode, reason: string, options: { nonce?: string; cause?: unknown } = {}) {
    super(DESCRIPTIONS[error], options.cause === undefined ? undefined : { cause: options.cause });
    this.error = error;
    this.reason = reason;
    this.nonce = options.nonce;
  }
}

/** Type guard that also works across the ESM and CommonJS copies of the package. */
export function isDpopProofError(value: unknown): value is DpopProofError {
  return value instanceof DpopProofError || (value instanceof Error && value.name === "DpopProofError" && typeof (value as { error?: unknown }).error === "string");
}

export interface DpopChallengeOptions {
  /** The error, when a proof or a DPoP token was refused; none for a request that presented no credentials. */
  error?: DpopErrorCode;
  /** The accepted proof algorithms (the `algs` parameter); left out when empty. */
  algs?: readonly string[];
  /** `realm` of the challenge. */
  realm?: string;
  /** The `error_description`, when not the error's own (a token refused for another reason than its key binding). */
  description?: string;
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * The `WWW-Authenticate` value for the DPoP scheme (RFC 9449 section 7.1):
 * `DPoP error="invalid_dpop_proof", error_description="…", algs="ES256 EdDSA"`,
 * or a bare `DPoP algs="…"` when nothing was presented. Where Bearer tokens
 * are accepted too, the transport sends it beside the Bearer challenge.
 */
export function dpopChallenge(options: DpopChallengeOptions = {}): string {
  const params: string[] = [];
  if (options.realm !== undefined) params.push(`realm=${quote(options.realm)}`);
  if (options.error !== undefined) params.push(`error="${options.error}"`, `error_description=${quote(options.description ?? DESCRIPTIONS[options.error])}`);
  if (options.algs !== undefined && options.algs.length > 0) params.push(`algs=${quote(options.algs.join(" "))}`);
  return params.length === 0 ? "DPoP" : `DPoP ${params.join(", ")}`;
}
