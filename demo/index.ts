/**
 * `npm run demo`: the demo identity provider (demo/idp) and the IOServer app
 * that trusts it (demo/app), with a single page to sign in, chat and — as an
 * admin — watch and revoke live sessions.
 *
 *   PORT=3000 IDP_PORT=4000 DEMO_DATA_DIR=demo/.data npm run demo
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startDemoApp } from "./app/server.js";
import { startDemoProvider } from "./idp/provider.js";

const port = Number(process.env.PORT ?? 3000);
const idpPort = Number(process.env.IDP_PORT ?? 4000);
const dataDir = process.env.DEMO_DATA_DIR ? resolve(process.env.DEMO_DATA_DIR) : fileURLToPath(new URL(".data", import.meta.url));
// The page must be opened at exactly this origin: it is the provider's
// registered redirect URI (<origin>/callback) and its only CORS origin.
const appOrigin = `http://127.0.0.1:${port}`;

const idp = await startDemoProvider({ port: idpPort, appOrigin });
const app = await startDemoApp({ port, issuer: idp.issuer, clientId: idp.clientId, resource: idp.resource, dataDir, publicOrigin: appOrigin }).catch(
  async (error: unknown) => {
    await idp.close();
    throw error;
  },
);

process.stdout.write(
  [
    "",
    `ioserver-oidc demo: open ${app.url}`,
    "",
    `  identity provider: ${idp.issuer}  (discovery: ${idp.issuer}/.well-known/openid-configuration)`,
    `  API audience:      ${idp.resource}`,
    "  access tokens:     DPoP-bound to a key the page makes at sign-in (the API requires DPoP)",
    `  users database:    ${dataDir}`,
    "",
    "  Sign in as:",
    ...idp.users.map((user) => `    ${user.username.padEnd(6)} / ${user.password.padEnd(15)} ${user.roles.join(", ")}`),
    "",
    "  Ctrl-C to stop.",
    "",
  ].join("\n"),
);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await app.close();
  } finally {
    await idp.close();
  }
  process.stdout.write("stopped\n");
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    shutdown().catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
  });
}
