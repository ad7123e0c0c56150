/**
 * The registry finds a user's or a subject's sockets through the members of
 * their `oidc:*` rooms, as the namespace's adapter lists them: every
 * namespace of the app, only sockets it tracks whose context matches, and
 * also a socket its adapter would not put in its rooms. Real IOServer, real
 * socket.io-client.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { Adapter } from "socket.io-adapter";
import { OidcSessionManager } from "../../src/index.js";
import { registryOf } from "../../src/sockets/registry.js";
import { type TestIssuer } from "../../src/testing/index.js";
import { call, connectedTo, startApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";
import { useTestIssuer } from "../helpers/fixtures.js";

let issuer: TestIssuer;
useTestIssuer((created) => (issuer = created));

const ids = (sockets: Array<{ id: string }>): string[] => sockets.map((socket) => socket.id).sort();
const serverIdOf = async (client: ClientSocket): Promise<string> => {
  const rooms = (await call<{ rooms: string[] }>(client, "rooms")).rooms;
  return rooms.find((room) => !room.startsWith("oidc:"))!;
};

describe("registry lookups by user and subject", () => {
  let app: TestApp;
  before(async () => {
    class Users {
      async findOrCreate(sub: string) {
        return { id: `local-${sub}` };
      }
    }
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager, users: Users } });
  });
  after(async () => {
    await app.close();
  });

  it("find the sockets of every namespace through their rooms, and forget them once they leave", async () => {
    const registry = registryOf(app.appHandle);
    const chat = await connectedTo(app, "chat", await issuer.mint({ sub: "finder" }));
    const lenient = await connectedTo(app, "lenient", await issuer.mint({ sub: "finder" }));
    const other = await connectedTo(app, "chat", await issuer.mint({ sub: "someone-else" }));
    const expected = [await serverIdOf(chat), await serverIdOf(lenient)].sort();
    assert.deepEqual(ids(registry.ofSubject(issuer.issuer, "finder")), expected);
    assert.deepEqual(ids(registry.ofUserId("local-finder")), expected);
    assert.deepEqual(ids(registry.ofSubjectAnyIssuer("finder")), expected);
    assert.deepEqual(registry.ofSubject("https://another.example", "finder"), [], "another issuer's equal sub is someone else");
    assert.deepEqual(registry.ofUserId("finder"), [], "the sub is not the local id");
    assert.deepEqual(ids(registry.ofSubject(issuer.issuer, "someone-else")), [await serverIdOf(other)]);
    chat.disconnect();
    await waitFor(() => registry.ofSubject(issuer.issuer, "finder").length === 1);
    assert.deepEqual(ids(registry.ofUserId("local-finder")), [await serverIdOf(lenient)]);
    lenient.disconnect();
    await waitFor(() => registry.ofUserId("local-finder").length === 0);
    assert.deepEqual(registry.ofSubjectAnyIssuer("finder"), []);
  });
});

/** An adapter that refuses to put a socket in an `oidc:` room (its own id room still works). */
class RefusingAdapter extends Adapter {
  override addAll(id: string, rooms: Set<string>): void {
    if ([...rooms].some((room) => room.startsWith("oidc:"))) throw new Error("adapter failure");
    void super.addAll(id, rooms); // the in-memory adapter's addAll() is synchronous
  }
}

describe("a socket its adapter would not put in its rooms", () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ config: issuer.config, managers: { session: OidcSessionManager }, adapter: RefusingAdapter });
  });
  after(async () => {
    await app.close();
  });

  it("is still found by subject and by id while it is connected, and forgotten once it goes", async () => {
    const registry = registryOf(app.appHandle);
    const client = await connectedTo(app, "chat", await issuer.mint({ sub: "roomless" }));
    const id = await serverIdOf(client);
    assert.deepEqual((await call<{ rooms: string[] }>(client, "rooms")).rooms, [id], "in no oidc: room");
    assert.deepEqual(ids(registry.ofSubject(issuer.issuer, "roomless")), [id]);
    assert.deepEqual(ids(registry.ofSubjectAnyIssuer("roomless")), [id]);
    assert.equal(registry.get(id)?.id, id);
    client.disconnect();
    await waitFor(() => registry.ofSubject(issuer.issuer, "roomless").length === 0);
    assert.equal(registry.get(id), undefined);
  });
});
