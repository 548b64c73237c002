// Opens <count> official-client connections, prints "ready" once all are connected, then idles.
// Usage: node many_clients.js <base url> <token> <count>
const path = require("path");
const { io } = require(path.join(__dirname, "..", "..", "web", "node_modules", "socket.io-client"));

const [url, token, count] = process.argv.slice(2);
let connected = 0;
for (let i = 0; i < Number(count); i++) {
  const socket = io(`${url}/chat`, { auth: { token }, transports: ["websocket"], forceNew: true });
  socket.once("connect", () => { if (++connected === Number(count)) console.log("ready"); });
}
