/**
 * The app's own user table, in SQLite. The identity provider owns identities
 * (passwords, roles); the app keeps what is local to it — here, whether an
 * administrator disabled the account. Registered as the `users` manager,
 * `findOrCreate` is called by ioserver-oidc on every HTTP request, handshake
 * and in-band refresh, so a disabled account is refused at once.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BaseManager, type AppHandle } from "ioserver";
import type { OidcProvisionedUser } from "ioserver-oidc";
import { openSqlite, type SqliteDatabase } from "./sqlite.js";

export interface DemoUser {
  id: number;
  iss: string;
  sub: string;
  email: string | null;
  name: string | null;
  isDisabled: boolean;
  createdAt: string;
}

interface UserRow {
  id: number;
  iss: string;
  sub: string;
  email: string | null;
  name: string | null;
  is_disabled: number;
  created_at: string;
}

/**
 * Opens (and creates on first run) `<dataDir>/demo.sqlite`, through `node:sqlite`
 * or, on Node 20, `better-sqlite3` (./sqlite.ts). The caller owns the handle and closes it.
 */
export function openUsersDatabase(dataDir: string): SqliteDatabase {
  mkdirSync(dataDir, { recursive: true });
  const db = openSqlite(join(dataDir, "demo.sqlite"));
  db.exec("PRAGMA journal_mode = WAL");
  // A user is the pair (issuer, sub). A users table without an iss column
  // (keyed by sub alone) is dropped: demo users are created again at their
  // next sign-in.
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('users')").all();
  if (columns.length > 0 && !columns.some((column) => column.name === "iss")) db.exec("DROP TABLE users");
  db.exec(`
    CREATE TABLE IF NOT EXISTS users (
      id INTEGER PRIMARY KEY,
      iss TEXT NOT NULL,
      sub TEXT NOT NULL,
      email TEXT,
      name TEXT,
      is_disabled INTEGER NOT NULL DEFAULT 0,
      created_at TEXT NOT NULL,
      UNIQUE (iss, sub)
    )`);
  return db;
}

function toUser(row: UserRow): DemoUser {
  return { id: row.id, iss: row.iss, sub: row.sub, email: row.email, name: row.name, isDisabled: row.is_disabled === 1, createdAt: row.created_at };
}

export class UsersManager extends BaseManager {
  protected static readonly db: SqliteDatabase | undefined;

  /**
   * IOServer constructs managers with the appHandle only, so the database is
   * bound to a subclass: `addManager({ name: "users", manager: UsersManager.using(db) })`.
   */
  static using(db: SqliteDatabase): typeof UsersManager {
    return class SqliteUsersManager extends UsersManager {
      protected static override readonly db = db;
    };
  }

  private readonly statements;

  constructor(appHandle: AppHandle) {
    super(appHandle);
    const db = (this.constructor as typeof UsersManager).db;
    if (db === undefined) throw new TypeError("UsersManager: register UsersManager.using(db), not UsersManager itself");
    this.statements = {
      // One statement creates the row on first sight of a subject (issuer and
      // sub) and keeps the profile in step with the provider's claims afterwards.
      upsert: db.prepare<[string, string, string | null, string | null, string], Pick<UserRow, "id" | "is_disabled">>(`
        INSERT INTO users (iss, sub, email, name, created_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (iss, sub) DO UPDATE SET email = excluded.email, name = excluded.name
        RETURNING id, is_disabled`),
      setDisabled: db.prepare<[number, number]>("UPDATE users SET is_disabled = ? WHERE id = ?"),
      list: db.prepare<[], UserRow>("SELECT * FROM users ORDER BY id"),
    };
  }

  /** The ioserver-oidc provisioning hook: `{ id, isDisabled }` for the token's subject. */
  findOrCreate(sub: string, profile: { email: string | null; name: string | null; iss: string }): OidcProvisionedUser {
    const row = this.statements.upsert.get(profile.iss, sub, profile.email, profile.name, new Date().toISOString());
    if (row === undefined) throw new Error(`could not provision user ${sub}`);
    return { id: row.id, isDisabled: row.is_disabled === 1 };
  }

  /** Returns false when there is no such user. */
  setDisabled(userId: number, disabled: boolean): boolean {
    return this.statements.setDisabled.run(disabled ? 1 : 0, userId).changes > 0;
  }

  list(): DemoUser[] {
    return this.statements.list.all().map(toUser);
  }
}
