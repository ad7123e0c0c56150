/**
 * Storage for the demo provider: sessions, interactions, grants,
 * authorization codes, refresh tokens… all in one `Map`, owned by one provider.
 *
 * oidc-provider has a built-in in-memory adapter, but it is shared by every
 * provider in the process and prints a warning at start-up. A real
 * deployment plugs in Redis, PostgreSQL, … through the same interface
 * (https://github.com/panva/node-oidc-provider/blob/v8.x/example/my_adapter.js).
 *
 * Expiry is checked when an entry is read, so the adapter owns no timers
 * and never keeps the process alive.
 */

type Payload = Record<string, unknown>;

/** Returns an adapter class for `new Provider(issuer, { adapter })`; each call gets its own store. */
export function createMemoryAdapter() {
  const entries = new Map<string, { payload: Payload; expiresAt: number }>();
  /** Secondary indexes: `<model>:uid:<uid>` / `<model>:userCode:<code>` → id. */
  const lookups = new Map<string, string>();
  /** grantId → keys of every artifact issued under that grant (revoked together). */
  const byGrant = new Map<string, Set<string>>();

  const keyOf = (model: string, id: string) => `${model}:${id}`;

  function read(key: string): Payload | undefined {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  /** Drops expired entries that nobody read again (called now and then from `upsert`). */
  let writes = 0;
  function sweep(): void {
    const now = Date.now();
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
  }

  return class MemoryAdapter {
    /** `model` is the artifact kind: `Session`, `Interaction`, `Grant`, `AuthorizationCode`, `RefreshToken`, … */
    constructor(readonly model: string) {}

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const key = keyOf(this.model, id);
      const expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
      if (++writes % 100 === 0) sweep();
      entries.set(key, { payload, expiresAt });
      if (typeof payload.uid === "string") lookups.set(`${this.model}:uid:${payload.uid}`, id);
      if (typeof payload.userCode === "string") lookups.set(`${this.model}:userCode:${payload.userCode}`, id);
      if (typeof payload.grantId === "string") {
        const keys = byGrant.get(payload.grantId) ?? new Set<string>();
        keys.add(key);
        byGrant.set(payload.grantId, keys);
      }
    }

    async find(id: string): Promise<Payload | undefined> {
      return read(keyOf(this.model, id));
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      const id = lookups.get(`${this.model}:uid:${uid}`);
      return id === undefined ? undefined : read(keyOf(this.model, id));
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const id = lookups.get(`${this.model}:userCode:${userCode}`);
      return id === undefined ? undefined : read(keyOf(this.model, id));
    }

    /** Marks a one-time artifact (authorization code, rotated refresh token) as used. */
    async consume(id: string): Promise<void> {
      const payload = read(keyOf(this.model, id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string): Promise<void> {
      entries.delete(keyOf(this.model, id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of byGrant.get(grantId) ?? []) entries.delete(key);
      byGrant.delete(grantId);
    }
  };
}
