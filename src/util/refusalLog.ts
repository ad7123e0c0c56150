/**
 * The refusal log: one record per refused request, socket or event, with the
 * fields an operator filters on; sampled per source so that a flood of bad
 * tokens cannot flood the log. Built only when something is refused: an
 * accepted request never reaches this module.
 *
 * Sampling key: client address, transport, code and reason. The first
 * `limit` refusals of a key in a window (from its first refusal) are logged,
 * the rest counted; the count is logged when the key is next refused after
 * the window, or by the app's one sweep timer (unref'd), whichever comes
 * first. The reason can quote the request (a `kid`, an `iss`), so one
 * address is also held to `SOURCE_FACTOR` times the limit over all its keys:
 * varying the token does not buy more lines. The table holds at most
 * `MAX_KEYS` keys per app, the oldest evicted (its count logged) first.
 */
import type { OidcAppHandle, OidcLogger } from "../types.js";
import { appPart } from "./appState.js";
import { methodOf, oneLine } from "./log.js";
import { escapeUnsafe, shorten, show } from "./text.js";

/** Where a refusal happened: the transport, or the socket step after the handshake. */
export type RefusalTransport = "http" | "handshake" | "refresh" | "recovery" | "connection" | "event";

/** What a transport knows of a refusal's origin (built only for a refusal). */
export interface RefusalSource {
  /** Start of the text line, e.g. `HTTP GET /me` or `socket /chat <id>`; request values in it already quoted. */
  readonly where: string;
  readonly transport: RefusalTransport;
  /** Fastify's `request.id` (an app's `genReqId` may return anything), or the socket id. */
  readonly requestId?: unknown;
  /** `request.ip`, or `socket.handshake.address`. */
  readonly address?: unknown;
  /** The route (`GET /api/me`, its pattern) or the namespace. */
  readonly route?: string | undefined;
  /** The guard class that refused, when one did. */
  readonly guard?: string | undefined;
  /** The socket event a guard refused. */
  readonly event?: string | undefined;
  /** The issuer of a verified context (a guard's or a refresh's refusal). */
  readonly issuer?: string | undefined;
  /** The token presented, read only to name the configured issuer it claims: never logged. */
  readonly token?: unknown;
  /** What was going on when the error came, e.g. `after the auth decision`. */
  readonly note?: string | undefined;
}

/** The fields of one refusal, as the structured logger receives them (every string escaped and shortened there). */
export interface RefusalFields {
  component: "ioserver-oidc";
  transport: RefusalTransport;
  code: string;
  reason: string;
  requestId?: string;
  address?: string;
  route?: string;
  issuer?: string;
  guard?: string;
  event?: string;
  note?: string;
}

type Record_ = Readonly<Record<string, string | number | undefined>>;

/** How the app wants its refusals logged (from its config). */
export interface RefusalLogSettings {
  readonly logger: OidcLogger | undefined;
  readonly sampling: Readonly<{ limit: number; window: number }> | false;
}

/** The table's bound per app: beyond it the oldest key goes. */
export const MAX_KEYS = 4096;
/** One address's lines per window over all its keys, as a multiple of the per-key limit. */
export const SOURCE_FACTOR = 5;

const MESSAGE = "authentication refused";
const SUPPRESSED_MESSAGE = "authentication refusals suppressed";
/** The longest reason kept; the whole text line is bounded again by `oneLine`. */
const MAX_REASON = 1_000;
/** The longest other field. */
const MAX_FIELD = 200;

interface Window {
  /** When the window started (ms). */
  start: number;
  window: number;
  logged: number;
  suppressed: number;
  level: number;
  /** What the summary line names: the key's fields. */
  fields: Record_;
}

interface Sampler {
  readonly windows: Map<string, Window>;
  /** The settings of the latest refusal, for the sweep's summaries. */
  settings: RefusalLogSettings;
  timer: NodeJS.Timeout | undefined;
}

const samplers = appPart<Sampler>("refusalLog", () => ({ windows: new Map(), settings: { logger: undefined, sampling: false }, timer: undefined }));

/** A request value for a structured field: escaped, shortened. */
function clean(value: string, max = MAX_FIELD): string {
  return shorten(escapeUnsafe(value), max);
}

/** A string or number as text; anything else is not a field. */
function asText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  return typeof value === "number" ? String(value) : undefined;
}

/** The fields of a refusal: only those known, as given (cleaned or quoted where they are written). */
export function refusalFields(source: RefusalSource, issuer: string | undefined, code: string, reason: string): RefusalFields {
  // In reading order: who, through what, where, then what happened.
  const fields: Partial<RefusalFields> = { component: "ioserver-oidc" };
  const requestId = asText(source.requestId);
  if (requestId !== undefined) fields.requestId = requestId;
  const address = asText(source.address);
  if (address !== undefined) fields.address = address;
  fields.transport = source.transport;
  if (source.route !== undefined) fields.route = source.route;
  if (issuer !== undefined) fields.issuer = issuer;
  if (source.guard !== undefined) fields.guard = source.guard;
  if (source.event !== undefined) fields.event = source.event;
  fields.code = code;
  fields.reason = reason;
  if (source.note !== undefined) fields.note = source.note;
  return fields as RefusalFields;
}

/** The record for a structured logger: every string escaped and shortened. */
function cleaned(fields: Record_): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) out[key] = typeof value === "number" ? value : clean(value, key === "reason" ? MAX_REASON : MAX_FIELD);
  }
  return out;
}

/** `key="value"` pairs of the fields the text line does not already start with (every string quoted and shortened by `show`). */
function pairs(fields: Record_, skip: ReadonlySet<string>): string {
  let text = "";
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || skip.has(key)) continue;
    text += ` ${key}=${typeof value === "number" ? String(value) : show(value, key === "reason" ? MAX_REASON : MAX_FIELD)}`;
  }
  return text;
}

const IN_TEXT = new Set(["component", "code", "reason", "note"]);
const IN_SUMMARY_TEXT = new Set(["component", "suppressed"]);

/** Write one record: to the structured logger, or (without one, or when it throws) as one text line. */
function write(appHandle: OidcAppHandle, settings: RefusalLogSettings, level: number, fields: Record_, message: string, text: () => string): void {
  const logger = settings.logger;
  if (logger !== undefined) {
    try {
      logger[methodOf(level)](cleaned(fields), message);
      return;
    } catch {
      // A broken logger must not turn an auth decision into a crash: the text line instead.
    }
  }
  try {
    appHandle.log?.(level, oneLine(`[ioserver-oidc] ${text()}`));
  } catch {
    // Nor a broken appHandle.log.
  }
}

function writeSummary(appHandle: OidcAppHandle, settings: RefusalLogSettings, entry: Window): void {
  const fields = { component: "ioserver-oidc" as const, ...entry.fields, suppressed: entry.suppressed, window: entry.window };
  write(appHandle, settings, entry.level, fields, SUPPRESSED_MESSAGE, () => `${entry.suppressed} similar refusal(s) not logged in ${entry.window} ms:${pairs(fields, IN_SUMMARY_TEXT)}`);
}

/** Summaries of the windows that ended, which then leave the table; the timer again for the next window to end with a count. */
function sweep(appHandle: OidcAppHandle, sampler: Sampler, now: number): void {
  let next = Infinity;
  for (const [key, entry] of sampler.windows) {
    const end = entry.start + entry.window;
    if (now >= end) {
      if (entry.suppressed > 0) writeSummary(appHandle, sampler.settings, entry);
      sampler.windows.delete(key);
    } else if (entry.suppressed > 0) next = Math.min(next, end);
  }
  if (next !== Infinity) arm(appHandle, sampler, next - now);
}

/** The app's one sweep timer, unref'd (it never keeps the process alive), due in `delay` ms unless one is set. */
function arm(appHandle: OidcAppHandle, sampler: Sampler, delay: number): void {
  if (sampler.timer !== undefined) return;
  const timer = setTimeout(() => {
    sampler.timer = undefined;
    try {
      sweep(appHandle, sampler, Date.now());
    } catch {
      // Logging only.
    }
  }, Math.max(0, delay));
  timer.unref();
  sampler.timer = timer;
}

/** The key's window, a new one when it ended (its summary logged) or never started; the oldest key evicted when the table is full. */
function windowOf(appHandle: OidcAppHandle, sampler: Sampler, key: string, now: number, level: number, fields: Window["fields"], window: number): Window {
  const entry = sampler.windows.get(key);
  if (entry !== undefined && now - entry.start < entry.window) return entry;
  if (entry !== undefined) {
    if (entry.suppressed > 0) writeSummary(appHandle, sampler.settings, entry);
    sampler.windows.delete(key);
  } else if (sampler.windows.size >= MAX_KEYS) {
    const [oldestKey, oldest] = sampler.windows.entries().next().value as [string, Window];
    if (oldest.suppressed > 0) writeSummary(appHandle, sampler.settings, oldest);
    sampler.windows.delete(oldestKey);
  }
  const fresh: Window = { start: now, window, logged: 0, suppressed: 0, level, fields };
  sampler.windows.set(key, fresh);
  return fresh;
}

/** Whether this refusal is logged, counting it either way. */
function admit(appHandle: OidcAppHandle, sampler: Sampler, fields: RefusalFields, level: number, limit: number, window: number): boolean {
  const now = Date.now();
  const address = shorten(fields.address ?? "", MAX_FIELD);
  // The key keeps a short reason: the table's size is bounded in bytes too.
  const reason = shorten(fields.reason, MAX_FIELD);
  const keyFields = { address: fields.address, transport: fields.transport, code: fields.code, reason };
  const entry = windowOf(appHandle, sampler, `${address}\u0000${fields.transport}\u0000${fields.code}\u0000${reason}`, now, level, keyFields, window);
  const source = windowOf(appHandle, sampler, `${address}\u0000`, now, level, { address: fields.address, transport: "(any)", code: "(any)" }, window);
  let counted: Window;
  if (entry.logged >= limit) counted = entry;
  else if (source.logged >= limit * SOURCE_FACTOR) counted = source;
  else {
    entry.logged++;
    source.logged++;
    return true;
  }
  counted.suppressed++;
  arm(appHandle, sampler, counted.start + counted.window - now);
  return false;
}

/**
 * Log a refusal, sampled: `where: code: reason` and the fields as
 * `key="value"` pairs on one text line, or the fields as an object to the
 * app's structured logger. Never throws.
 */
export function logRefusal(appHandle: OidcAppHandle, level: number, where: string, fields: RefusalFields, settings: RefusalLogSettings): void {
  try {
    const sampling = settings.sampling;
    if (sampling !== false) {
      const sampler = samplers.of(appHandle);
      sampler.settings = settings;
      if (!admit(appHandle, sampler, fields, level, sampling.limit, sampling.window)) return;
    }
    const record = fields as unknown as Record_;
    write(appHandle, settings, level, record, MESSAGE, () => {
      const head = `${where}${fields.note === undefined ? "" : ` (${fields.note})`}: ${fields.code}: ${fields.reason}`;
      return `${shorten(head, MAX_REASON + 400)}${pairs(record, IN_TEXT)}`;
    });
  } catch {
    // Logging only: the decision stands whatever happens here.
  }
}
