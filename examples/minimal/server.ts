/**
 * The minimal example: an IOServer app whose HTTP routes and Socket.IO
 * namespace are protected by ioserver-oidc, trusting a local test issuer.
 *
 *   npm run example         then follow the printed instructions
 *
 * In production you would drop createTestIssuer and point AUTH_SERVICE_URL /
 * AUTH_SERVICE_APP_SLUG (or OidcConfigManager.configure) at your provider.
 */
import { fileURLToPath } from "node:url";
import { IOServer } from "ioserver";
import { OidcConfigManager, OidcHttpMiddleware, OidcSocketMiddleware } from "ioserver-oidc";
import { createTestIssuer } from "ioserver-oidc/testing";
import { ApiController } from "./ApiController.js";
import { ChatService } from "./ChatService.js";

const port = Number(process.env.PORT ?? 3000);
const idpPort = Number(process.env.IDP_PORT ?? 0);

// A local issuer (discovery + JWKS on 127.0.0.1) that signs demo tokens.
const issuer = await createTestIssuer({ appSlug: "demo-app", port: idpPort, accessTokenTtl: 3600 });

const server = new IOServer({
  host: "127.0.0.1",
  port,
  routes: fileURLToPath(new URL("./routes", import.meta.url)),
  verbose: "WARNING",
});
server.addManager({ name: "oidcConfig", manager: OidcConfigManager.configure(issuer.config) });
server.addController({ name: "api", controller: ApiController, middlewares: [OidcHttpMiddleware] });
server.addService({ name: "chat", service: ChatService, middlewares: [OidcSocketMiddleware] });
await server.start();

const alice = await issuer.mint({ sub: "alice", name: "Alice", email: "alice@example.test", roles: ["admin"] });
const bob = await issuer.mint({ sub: "bob", name: "Bob", roles: ["member"], permissions: ["chat:write"] });
const url = `http://127.0.0.1:${port}`;

process.stdout.write(
  [
    "",
    `ioserver-oidc example ready: ${url}`,
    `  identity provider (test issuer): ${issuer.issuer}   JWKS: ${issuer.jwksUri}`,
    "",
    "  Tokens (valid 1 hour):",
    `    ALICE=${alice}`,
    `    BOB=${bob}`,
    "",
    "  Try:",
    `    curl -s ${url}/api/me                                   # 401 ERR_AUTH_TOKEN_REQUIRED`,
    `    curl -s -H "Authorization: Bearer $ALICE" ${url}/api/me  # 200 with Alice's context`,
    `    TOKEN=$BOB node examples/minimal/client.mjs ${url}       # Socket.IO chat as Bob`,
    "",
    "  Ctrl-C to stop.",
    "",
  ].join("\n"),
);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  (server.getApp() as unknown as { io?: { close(): void } }).io?.close();
  await server.stop().catch(() => undefined);
  await issuer.close();
  process.stdout.write("stopped\n");
}
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());
