// A Socket.IO client for the example: TOKEN=<access token> node examples/minimal/client.mjs [url]
import { io } from "socket.io-client";

const url = process.argv[2] ?? "http://127.0.0.1:3000";
const socket = io(`${url}/chat`, { auth: { token: process.env.TOKEN }, transports: ["websocket"], reconnection: false });

socket.on("connect_error", (err) => {
  console.error(`connect_error: ${err.message}`); // e.g. ERR_AUTH_TOKEN_REQUIRED
  process.exitCode = 1;
});
socket.on("connect", async () => {
  const reply = await socket.timeout(5000).emitWithAck("message", { text: "hello from the example client" });
  console.log("connected; message acknowledged:", JSON.stringify(reply));
  socket.disconnect();
});
