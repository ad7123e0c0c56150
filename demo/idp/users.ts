/**
 * The demo's end-users. Their `roles`, `permissions` and `features` end up
 * in the access tokens, where ioserver-oidc reads them to authorize HTTP
 * routes and Socket.IO events.
 *
 * Plain-text passwords are fine for a demo whose passwords are printed on the
 * login page; a real identity provider stores slow salted hashes (scrypt,
 * argon2) and rate-limits attempts.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export interface DemoUser {
  /** Login name, also the `sub` (subject) of the user's tokens. */
  readonly username: string;
  readonly password: string;
  readonly name: string;
  readonly email: string;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  /** Free-form per-user settings, copied into the access token as `features`. */
  readonly features: Readonly<Record<string, unknown>>;
}

const user = (properties: DemoUser): DemoUser =>
  Object.freeze({
    ...properties,
    roles: Object.freeze([...properties.roles]),
    permissions: Object.freeze([...properties.permissions]),
    features: Object.freeze({ ...properties.features }),
  });

export const DEMO_USERS: ReadonlyArray<DemoUser> = Object.freeze([
  user({
    username: "alice",
    password: "alice-password",
    name: "Alice Admin",
    email: "alice@example.com",
    roles: ["admin"],
    permissions: ["chat:write", "sessions:manage"],
    features: { theme: "dark" },
  }),
  user({
    username: "bob",
    password: "bob-password",
    name: "Bob Member",
    email: "bob@example.com",
    roles: ["member"],
    permissions: ["chat:write"],
    features: {},
  }),
  user({
    username: "carol",
    password: "carol-password",
    name: "Carol Member",
    email: "carol@example.com",
    roles: ["member"],
    permissions: ["chat:write"],
    features: {},
  }),
]);

export function findUser(username: string): DemoUser | undefined {
  return DEMO_USERS.find((candidate) => candidate.username === username);
}

/** The user when `username` + `password` match, else `undefined`. Passwords are compared in constant time. */
export function checkCredentials(username: string, password: string): DemoUser | undefined {
  const candidate = findUser(username);
  const digest = (value: string) => createHash("sha256").update(value).digest();
  // Compare even for unknown users so that the answer time does not reveal which usernames exist.
  const matches = timingSafeEqual(digest(password), digest(candidate?.password ?? "\0unknown user\0"));
  return candidate !== undefined && matches ? candidate : undefined;
}
