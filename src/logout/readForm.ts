/**
 * Reading the logout request (section 2.5): a form-encoded POST with one
 * `logout_token`. Fastify parses no form bodies by default and IOServer adds
 * no parser, so the (small, bounded) body is read here when nothing parsed it.
 */
import type { IncomingMessage } from "node:http";
import type { FastifyRequest } from "fastify";
import { show } from "../util/text.js";

const FORM = "application/x-www-form-urlencoded";

/** Why the request itself (not the token) was refused; `detail` is for the log. */
export class BadRequest extends Error {
  constructor(readonly detail: string, readonly closeConnection = false) {
    super(detail);
  }
}

/** Read a body of at most `limit` bytes within `timeoutMs`. */
function readBody(stream: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(stream.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new BadRequest(`body of ${declared} bytes declared, over the ${limit} limit`, true));
  }
  if (stream.readableEnded || stream.destroyed) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error?: BadRequest) => {
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onError);
      stream.off("close", onClose);
      if (error === undefined) resolve(Buffer.concat(chunks));
      else reject(error);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > limit) finish(new BadRequest(`body over the ${limit} byte limit`, true));
      else chunks.push(bytes);
    };
    const onEnd = () => finish();
    const onError = (error: Error) => finish(new BadRequest(`body could not be read: ${show(error.message)}`, true));
    const onClose = () => finish(new BadRequest("the client closed the request before its body ended", true));
    const timer = setTimeout(() => finish(new BadRequest(`body not received within ${timeoutMs} ms`, true)), timeoutMs);
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

/** The one `logout_token` of a form body (RFC 6749 section 3.1: parameters are never repeated). */
function tokenFromForm(form: string): string {
  const params = new URLSearchParams(form);
  const values = params.getAll("logout_token");
  if (values.length === 0) throw new BadRequest("no logout_token parameter");
  if (values.length > 1) throw new BadRequest(`logout_token given ${values.length} times`);
  return values[0]!;
}

/** Section 2.5: a form-encoded POST carrying `logout_token`. */
export async function logoutTokenOf(request: FastifyRequest, limits: { bodyLimit: number; timeout: number }): Promise<string> {
  const contentType = request.headers["content-type"];
  const mediaType = typeof contentType === "string" ? contentType.split(";")[0]!.trim().toLowerCase() : "";
  if (mediaType !== FORM) throw new BadRequest(`content type ${show(contentType)}, expected ${FORM}`);
  const body: unknown = request.body;
  if (body === undefined || body === null) {
    // Not parsed by Fastify (the onRequest position): read the raw body here.
    return tokenFromForm((await readBody(request.raw, limits.bodyLimit, limits.timeout)).toString("utf8"));
  }
  if (typeof body === "string") return tokenFromForm(body);
  if (Buffer.isBuffer(body)) return tokenFromForm(body.toString("utf8"));
  if (typeof body === "object") {
    // Parsed by the app's own form parser.
    const value = (body as Record<string, unknown>)["logout_token"];
    if (value === undefined) throw new BadRequest("no logout_token parameter");
    if (typeof value !== "string") throw new BadRequest(`logout_token is not a single string (${Array.isArray(value) ? "repeated" : typeof value})`);
    return value;
  }
  throw new BadRequest(`unexpected parsed body (${typeof body})`);
}
