import { describeError } from "../util/text.js";

/** The key set could not be obtained (timeout, network, HTTP status, bad JSON, empty set). */
export class KeySetUnavailableError extends Error {
  override readonly name = "KeySetUnavailableError";
  constructor(readonly source: string, cause: unknown, note?: string) {
    super(`${source.startsWith("discovery") ? source : `JWKS ${source}`} could not be obtained: ${describeError(cause)}${note ? ` (${note})` : ""}`, { cause });
  }
}
