// The official client connects, says so, and prints why it was disconnected.
// Usage: node disconnect_reason.js <base url> <token>
const path = require("path");
const { io } = require(path.join(__dirname, "..", "..", "web", "node_modules", "socket.io-client"));

const [url, token] = process.argv.slice(2);
const socket = io(`${url}/chat`, { auth: { token }, reconnection: false });
socket.on("connect", () => console.log("connected"));
socket.on("disconnect", (reason) => { console.log(reason); process.exit(0); });
socket.on("connect_error", (err) => { console.error(err.message); process.exit(1); });
