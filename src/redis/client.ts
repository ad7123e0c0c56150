/** What the Redis stores share: checking the client they are given, and running a transaction. */

/** The one method of a queued transaction both stores use. */
export interface RedisExec {
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/** Throw a `TypeError` naming `factory` unless `client` has every one of `methods`. */
export function requireClient(factory: string, client: unknown, methods: readonly string[]): void {
  for (const method of methods) {
    if (typeof (client as Record<string, unknown> | null | undefined)?.[method] !== "function") {
      throw new TypeError(`${factory}: "client" must be a Redis client (ioredis) with ${method}()`);
    }
  }
}

/** The `prefix` option: a string, `ioserver-oidc:` by default. */
export function keyPrefix(factory: string, prefix: unknown): string {
  if (prefix === undefined || prefix === null) return "ioserver-oidc:";
  if (typeof prefix !== "string") throw new TypeError(`${factory}: "prefix" must be a string`);
  return prefix;
}

/** Run a transaction; reject when it was aborted or any of its commands failed. */
export async function execAll(multi: RedisExec): Promise<void> {
  const replies = await multi.exec();
  if (replies === null) throw new Error("Redis transaction aborted");
  for (const [error] of replies) if (error) throw error;
}
