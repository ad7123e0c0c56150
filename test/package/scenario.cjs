// The scenario both consumers run. It never calls process.exit: the process
// must end on its own once the server is stopped (no leaked handles).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const net = require("node:net");
const { IOServer, BaseController, BaseService } = require("ioserver");
const { io } = require("socket.io-client");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function connect(url, options) {
  return new Promise((resolve) => {
    const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, timeout: 5000, ...options });
    const timer = setTimeout(() => resolve({ socket, error: "timeout" }), 8000);
    socket.on("connect", () => {
      clearTimeout(timer);
      resolve({ socket });
    });
    socket.on("connect_error", (err) => {
      clearTimeout(timer);
      resolve({ socket, error: err.message });
    });
  });
}

async function runConsumer(oidc, testing) {
  const issuer = await testing.createTestIssuer({ appSlug: "pkg-app" });
  const routes = fs.mkdtempSync(path.join(os.tmpdir(), "ioserver-oidc-pkg-"));
  fs.writeFileSync(path.join(routes, "api.json"), JSON.stringify([{ method: "GET", url: "/me", handler: "me" }]));

  class Api extends BaseController {
    async me(request, reply) {
      return reply.send({ userId: request.userId, roles: request.roles });
    }
  }
  class Chat extends BaseService {
    async whoami(socket, _data, callback) {
      callback({ userId: socket.userId, dataAuth: socket.data.auth.sub });
    }
  }

  const port = await freePort();
  const server = new IOServer({ host: "127.0.0.1", port, routes, mode: ["websocket"], verbose: "ERROR" });
  server.addManager({ name: "oidcConfig", manager: oidc.OidcConfigManager.configure(issuer.config) });
  server.addController({ name: "api", controller: Api, middlewares: [oidc.OidcHttpMiddleware] });
  server.addService({ name: "chat", service: Chat, middlewares: [oidc.OidcSocketMiddleware] });
  await server.start();
  const url = `http://127.0.0.1:${port}`;
  try {
    const token = await issuer.mint({ sub: "pkg-user", roles: ["admin"] });
    const ok = await fetch(`${url}/api/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(8000) });
    const denied = await fetch(`${url}/api/me`, { signal: AbortSignal.timeout(8000) });
    const good = await connect(`${url}/chat`, { auth: { token } });
    const who = good.error ? null : await good.socket.timeout(5000).emitWithAck("whoami", {});
    good.socket.disconnect();
    const bad = await connect(`${url}/chat`, { auth: { token: "nope" } });
    bad.socket.disconnect();
    return {
      http: { status: ok.status, body: await ok.json(), deniedStatus: denied.status, deniedCode: (await denied.json()).code },
      socket: { error: good.error ?? null, who, refused: bad.error },
      verified: (await oidc.verifyOidcToken(token, issuer.config)).sub,
      errorClass: new oidc.OidcAuthError("ERR_FORBIDDEN").toJSON(),
    };
  } finally {
    server.getApp().io.close();
    await server.stop().catch(() => {});
    await issuer.close();
    fs.rmSync(routes, { recursive: true, force: true });
  }
}

module.exports = { runConsumer };
