/**
 * A client process of `npm run bench:cluster` (forked by run.ts, IPC): holds
 * up to a few thousand socket.io-client connections (each process stays far
 * below the 20,000-descriptor cap), mints its own tokens with the run's
 * signing key, answers every `oidc:expiring` with an in-band `oidc:refresh`,
 * and records when and why each socket went away (wall-clock epoch ms, so the
 * run can compare it with a node's clock on the same machine).
 *
 * Not meant to be run by hand: `npm run bench:cluster`.
 */
import { Agent, request } from "node:http";
import { io, type Socket } from "socket.io-client";
import { epochMs, Minter, sleep, type SigningSpec } from "./lib.js";

interface ClientStart {
  type: "start";
  signing: SigningSpec;
  /** Lifetime of every token minted, seconds. */
  ttl: number;
}

/** One socket to open: its subject, optional provider session id, and a tag to address it by later. */
export interface SocketSpec {
  sub: string;
  sid?: string;
  tag: string;
}

interface Held {
  socket: Socket;
  spec: SocketSpec;
  node: string;
  refreshed: number;
  leaving: boolean;
  goneAt?: number;
  reason?: string;
  revokedAt?: number;
}

interface Command {
  id: number;
  cmd: string;
  url?: string;
  node?: string;
  specs?: SocketSpec[];
  batch?: number;
  tag?: string;
  subs?: string[];
  connections?: number;
  rps?: number;
  timeoutMs?: number;
}

const send = (message: unknown): void => {
  process.send?.(message);
};
process.on("disconnect", () => process.exit(0));

const HANDSHAKE_TIMEOUT = 20_000;
const REFRESH_ACK_TIMEOUT = 15_000;

let minter: Minter | undefined;
let ttl = 30;
const held: Held[] = [];
const bump = (table: Record<string, number>, key: string): void => {
  table[key] = (table[key] ?? 0) + 1;
};

const stats = {
  expiring: 0,
  expiringIgnored: 0,
  refreshOk: 0,
  refreshFailed: 0,
  refreshErrors: {} as Record<string, number>,
  refreshMs: [] as number[],
  expired: 0,
  revoked: 0,
  /** Disconnects this process did not ask for, by tag. */
  goneByTag: {} as Record<string, number>,
  reasons: {} as Record<string, number>,
};
let answering = true;
const inFlight = (): number => stats.expiring - stats.expiringIgnored - stats.refreshOk - stats.refreshFailed;

function claimsOf(spec: SocketSpec): Record<string, unknown> {
  return spec.sid === undefined ? { sub: spec.sub } : { sub: spec.sub, sid: spec.sid };
}

function connectOne(url: string, node: string, spec: SocketSpec, token: string): Promise<{ ok: boolean; ms: number; error?: string }> {
  const t0 = performance.now();
  const socket = io(`${url}/chat`, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: HANDSHAKE_TIMEOUT, auth: { token } });
  const entry: Held = { socket, spec, node, refreshed: 0, leaving: false };
  socket.on("oidc:expiring", () => {
    stats.expiring++;
    if (!answering) {
      stats.expiringIgnored++;
      return;
    }
    const r0 = performance.now();
    minter!
      .mint(claimsOf(spec), ttl)
      .then((fresh) => socket.timeout(REFRESH_ACK_TIMEOUT).emitWithAck("oidc:refresh", { token: fresh }))
      .then(
        (ack: { ok?: boolean; code?: string }) => {
          if (ack?.ok === true) {
            stats.refreshOk++;
            stats.refreshMs.push(performance.now() - r0);
            entry.refreshed++;
          } else {
            stats.refreshFailed++;
            bump(stats.refreshErrors, String(ack?.code));
          }
        },
        (error: unknown) => {
          if (entry.leaving || entry.goneAt !== undefined) {
            stats.expiringIgnored++; // cut short by a disconnect the run asked for
            return;
          }
          stats.refreshFailed++;
          bump(stats.refreshErrors, error instanceof Error ? error.message : String(error));
        },
      );
  });
  socket.on("oidc:expired", () => stats.expired++);
  socket.on("oidc:revoked", () => {
    stats.revoked++;
    entry.revokedAt = epochMs();
  });
  return new Promise((resolve) => {
    socket.once("connect", () => {
      held.push(entry);
      socket.on("disconnect", (reason) => {
        if (entry.leaving) return;
        entry.goneAt = epochMs();
        entry.reason = reason;
        bump(stats.goneByTag, spec.tag);
        bump(stats.reasons, reason);
      });
      resolve({ ok: true, ms: performance.now() - t0 });
    });
    socket.once("connect_error", (error: Error) => {
      socket.close();
      resolve({ ok: false, ms: performance.now() - t0, error: error.message });
    });
  });
}

async function connectMany(url: string, node: string, specs: SocketSpec[], batch: number) {
  const result = { ok: 0, failed: 0, errors: {} as Record<string, number>, ms: [] as number[] };
  for (let i = 0; i < specs.length; i += batch) {
    const slice = specs.slice(i, i + batch);
    const tokens = await Promise.all(slice.map((spec) => minter!.mint(claimsOf(spec), ttl)));
    const outcomes = await Promise.all(slice.map((spec, k) => connectOne(url, node, spec, tokens[k]!)));
    for (const outcome of outcomes) {
      if (outcome.ok) {
        result.ok++;
        result.ms.push(outcome.ms);
      } else {
        result.failed++;
        bump(result.errors, outcome.error ?? "?");
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Keep-alive HTTP to GET /api/me: connections opened first, then reused.

const http = { agent: undefined as Agent | undefined, timer: undefined as NodeJS.Timeout | undefined, ok: 0, failed: 0, errors: {} as Record<string, number>, ms: [] as number[] };
let httpToken = "";

function httpOne(url: string): Promise<void> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(`${url}/api/me`, { agent: http.agent, headers: { authorization: `Bearer ${httpToken}` }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => {
        if (res.statusCode === 200) {
          http.ok++;
          http.ms.push(performance.now() - t0);
        } else {
          http.failed++;
          bump(http.errors, `HTTP ${res.statusCode}`);
        }
        resolve();
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (error) => {
      http.failed++;
      bump(http.errors, error.message);
      resolve();
    });
    req.end();
  });
}

async function httpStart(url: string, connections: number, rps: number): Promise<void> {
  httpToken = await minter!.mint({ sub: "http-client" }, ttl);
  let mintedAt = Date.now();
  http.agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  // Open the connections now (they must exist before the server runs out of descriptors).
  await Promise.all(Array.from({ length: connections }, () => httpOne(url)));
  http.ok = 0;
  http.ms.length = 0;
  const every = Math.max(10, Math.round((1000 * connections) / Math.max(1, rps)));
  http.timer = setInterval(() => {
    if (Date.now() - mintedAt > (ttl * 1000) / 3) {
      mintedAt = Date.now();
      void minter!.mint({ sub: "http-client" }, ttl).then((token) => (httpToken = token));
    }
    for (let i = 0; i < connections; i++) void httpOne(url);
  }, every);
}

function httpSnapshot() {
  const sockets = http.agent === undefined ? 0 : Object.values(http.agent.sockets).reduce((sum, list) => sum + (list?.length ?? 0), 0) + Object.values(http.agent.freeSockets).reduce((sum, list) => sum + (list?.length ?? 0), 0);
  return { ok: http.ok, failed: http.failed, errors: http.errors, ms: http.ms, sockets };
}

// ---------------------------------------------------------------------------

async function answer(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case "connect":
      return connectMany(command.url!, command.node ?? command.url!, command.specs ?? [], command.batch ?? 50);
    case "stats": {
      const live = held.filter((entry) => !entry.leaving);
      const connected = live.filter((entry) => entry.socket.connected).length;
      const byTag: Record<string, { held: number; connected: number; neverRefreshed: number }> = {};
      for (const entry of live) {
        const row = (byTag[entry.spec.tag] ??= { held: 0, connected: 0, neverRefreshed: 0 });
        row.held++;
        if (entry.socket.connected) row.connected++;
        if (entry.refreshed === 0) row.neverRefreshed++;
      }
      return { ...stats, refreshMs: undefined, inFlight: inFlight(), connected, byTag };
    }
    case "refreshMs":
      return stats.refreshMs;
    case "gone": {
      // When each socket of these subjects went away (undefined: still connected).
      const subs = new Set(command.subs ?? []);
      return held.filter((entry) => subs.has(entry.spec.sub) && !entry.leaving).map((entry) => ({ sub: entry.spec.sub, node: entry.node, goneAt: entry.goneAt, reason: entry.reason, revokedAt: entry.revokedAt }));
    }
    case "drain": {
      answering = false;
      const deadline = Date.now() + (command.timeoutMs ?? REFRESH_ACK_TIMEOUT + 1_000);
      while (inFlight() > 0 && Date.now() < deadline) await sleep(20);
      return { pending: inFlight() };
    }
    case "refresh": {
      // One in-band refresh now for every socket of a tag (the warm-up uses it).
      const entries = held.filter((entry) => !entry.leaving && entry.spec.tag === command.tag);
      const acks = await Promise.all(
        entries.map(async (entry) => {
          const fresh = await minter!.mint(claimsOf(entry.spec), ttl);
          const ack = (await entry.socket.timeout(REFRESH_ACK_TIMEOUT).emitWithAck("oidc:refresh", { token: fresh })) as { ok?: boolean };
          return ack?.ok === true;
        }),
      );
      return { ok: acks.filter(Boolean).length, failed: acks.filter((ok) => !ok).length };
    }
    case "resume":
      answering = true;
      return { ok: true };
    case "leave": {
      // Leave (all, or one tag), a few hundred at a time; these disconnects are not counted.
      const leaving = held.filter((entry) => !entry.leaving && (command.tag === undefined || entry.spec.tag === command.tag));
      for (let i = 0; i < leaving.length; i += 500) {
        for (const entry of leaving.slice(i, i + 500)) {
          entry.leaving = true;
          entry.socket.disconnect();
        }
        await sleep(20);
      }
      for (let i = held.length - 1; i >= 0; i--) if (held[i]!.leaving) held.splice(i, 1);
      return { left: leaving.length };
    }
    case "httpStart":
      await httpStart(command.url!, command.connections ?? 4, command.rps ?? 20);
      return { ok: true };
    case "http":
      return httpSnapshot();
    case "httpStop": {
      if (http.timer !== undefined) clearInterval(http.timer);
      http.timer = undefined;
      await sleep(200);
      const snapshot = httpSnapshot();
      http.agent?.destroy();
      return snapshot;
    }
    case "stop":
      for (const entry of held) {
        entry.leaving = true;
        entry.socket.disconnect();
      }
      if (http.timer !== undefined) clearInterval(http.timer);
      http.agent?.destroy();
      setTimeout(() => process.exit(0), 100).unref();
      return { ok: true };
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
}

process.on("message", (message: ClientStart | Command) => {
  if ("type" in message && message.type === "start") {
    minter = new Minter(message.signing);
    ttl = message.ttl;
    send({ type: "ready", pid: process.pid });
    return;
  }
  const command = message as Command;
  answer(command).then(
    (result) => send({ id: command.id, result }),
    (error: unknown) => send({ id: command.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
send({ type: "spawned" });
