/**
 * The demo's one way to open SQLite, the same on every Node the package
 * supports from a single `npm ci`:
 *
 * - Node >= 22.13 ships `node:sqlite` (`DatabaseSync`): nothing to compile,
 *   nothing tied to a Node ABI. It is used whenever it loads.
 * - Node 20 has no `node:sqlite`: `better-sqlite3` (a devDependency, a native
 *   addon compiled by `npm install` for the Node that ran it) is loaded then,
 *   and only then, so a `node_modules` installed by Node 20 still runs the
 *   demo and its tests under Node 22, 24 and 26 without ever loading the addon.
 *
 * Above this module there is one code path: `prepare(sql).run/get/all` with
 * positional `?` parameters, `exec(sql)` (pragmas too: `exec("PRAGMA …")`,
 * there is no `pragma()` helper) and `close()`. Rows are plain objects under
 * both drivers (`node:sqlite` returns null-prototype ones); integers are
 * JavaScript numbers under both (their defaults).
 */
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";

/** What SQLite binds and returns here (both drivers; no booleans). */
export type SqliteValue = null | number | bigint | string | Uint8Array;

export type SqliteRow = Record<string, SqliteValue>;

export interface SqliteRunResult {
  changes: number | bigint;
  lastInsertRowid: number | bigint;
}

/**
 * `Params` and `Row` are the caller's statement of the `?` parameters and the
 * row shape, as with better-sqlite3's generics: checked at compile time only.
 */
export interface SqliteStatement<Params extends SqliteValue[] = SqliteValue[], Row extends object = SqliteRow> {
  run(...params: Params): SqliteRunResult;
  get(...params: Params): Row | undefined;
  all(...params: Params): Row[];
}

export interface SqliteDatabase {
  /** Which driver opened it. */
  readonly driver: "node:sqlite" | "better-sqlite3";
  prepare<Params extends SqliteValue[] = SqliteValue[], Row extends object = SqliteRow>(sql: string): SqliteStatement<Params, Row>;
  exec(sql: string): void;
  close(): void;
}

export interface OpenSqliteOptions {
  /** Open read-only; the file must then exist (SQLite does not create it). */
  readOnly?: boolean;
}

// The part of `node:sqlite` used here. Declared locally: the project's
// @types/node is 20's, which has no `node:sqlite`.
interface NodeStatementSync {
  run(...params: SqliteValue[]): SqliteRunResult;
  get(...params: SqliteValue[]): SqliteRow | undefined;
  all(...params: SqliteValue[]): SqliteRow[];
}
interface NodeDatabaseSync {
  prepare(sql: string): NodeStatementSync;
  exec(sql: string): void;
  close(): void;
}
interface NodeSqliteModule {
  DatabaseSync: new (path: string, options?: { readOnly?: boolean }) => NodeDatabaseSync;
}

const load = createRequire(import.meta.url);

function loadNodeSqlite(): NodeSqliteModule | undefined {
  try {
    return load("node:sqlite") as NodeSqliteModule;
  } catch (error) {
    // Node 20 (and 22 before 22.13 without --experimental-sqlite).
    if ((error as NodeJS.ErrnoException).code === "ERR_UNKNOWN_BUILTIN_MODULE") return undefined;
    throw error;
  }
}

let nodeSqlite: NodeSqliteModule | null | undefined; // null: looked, not there

function fromNodeSqlite(module: NodeSqliteModule, file: string, options: OpenSqliteOptions): SqliteDatabase {
  const db = new module.DatabaseSync(file, options.readOnly === true ? { readOnly: true } : {});
  return {
    driver: "node:sqlite",
    prepare<Params extends SqliteValue[], Row extends object>(sql: string): SqliteStatement<Params, Row> {
      const statement = db.prepare(sql);
      return {
        run: (...params) => statement.run(...params),
        get: (...params) => {
          const row = statement.get(...params);
          return row === undefined ? undefined : ({ ...row } as unknown as Row);
        },
        all: (...params) => statement.all(...params).map((row) => ({ ...row }) as unknown as Row),
      };
    },
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
  };
}

function fromBetterSqlite3(file: string, options: OpenSqliteOptions): SqliteDatabase {
  // Loaded here, on first use, so that no Node with `node:sqlite` ever loads
  // an addon compiled for another Node's ABI.
  const Database = load("better-sqlite3") as typeof BetterSqlite3;
  const db = new Database(file, options.readOnly === true ? { readonly: true, fileMustExist: true } : {});
  return {
    driver: "better-sqlite3",
    prepare<Params extends SqliteValue[], Row extends object>(sql: string): SqliteStatement<Params, Row> {
      const statement = db.prepare<Params, Row>(sql);
      return {
        run: (...params) => statement.run(...params),
        get: (...params) => statement.get(...params),
        all: (...params) => statement.all(...params),
      };
    },
    exec: (sql) => void db.exec(sql),
    close: () => void db.close(),
  };
}

/** Opens (creating it unless `readOnly`) the SQLite database at `file`. */
export function openSqlite(file: string, options: OpenSqliteOptions = {}): SqliteDatabase {
  nodeSqlite ??= loadNodeSqlite() ?? null;
  return nodeSqlite === null ? fromBetterSqlite3(file, options) : fromNodeSqlite(nodeSqlite, file, options);
}
