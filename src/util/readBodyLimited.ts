/**
 * Reading a provider's response body (JWKS, discovery document) with a size
 * limit that holds while it streams: a body that never ends, or one that
 * announces gigabytes, costs at most `limit` bytes and is given up as soon as
 * it is known to be too large.
 */

import { isObject } from "./text.js";

/**
 * The body of `response` as text (decoded as `response.text()` does: UTF-8,
 * BOM dropped). Rejects when the `Content-Length` announces more than `limit`
 * bytes, before reading any, or as soon as the bytes received pass `limit`;
 * either way the body is cancelled, which closes the connection. `label`
 * names the body in the error, e.g. `"the key set"`.
 */
export async function readBodyLimited(response: Response, limit: number, label: string): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`${label} of ${declared} bytes (Content-Length) is over the ${limit} byte limit`);
  }
  const body = response.body;
  if (body === null) return "";
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let received = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    received += value.byteLength;
    if (received > limit) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`${label} is over the ${limit} byte limit (${received} bytes received)`);
    }
    text += decoder.decode(value, { stream: true });
  }
}

/**
 * The body of `response` as a JSON object, read as `readBodyLimited` does.
 * `timedOut` turns a read cut short by the request's own deadline into the
 * caller's timeout error (it returns `undefined` for any other failure,
 * which is thrown as it is). Rejects when the body is not JSON or not an
 * object.
 */
export async function readJsonObject(response: Response, limit: number, label: string, timedOut: () => Error | undefined): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readBodyLimited(response, limit, label);
  } catch (error) {
    throw timedOut() ?? error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("answered a body that is not JSON");
  }
  if (!isObject(parsed)) throw new Error(`answered JSON that is not an object (${label})`);
  return parsed;
}
