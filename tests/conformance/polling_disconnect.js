// The official client on long-polling connects to /chat, calls disconnect(), and is left
// to exit by itself: it can only once no request of its own is pending. Prints one JSON
// line {"connected_ms", "disconnected_ms"} when connected, then exits.
// Usage: node polling_disconnect.js <base url> <token>
const path = require("path");
const { io } = require(path.join(__dirname, "..", "..", "web", "node_modules", "socket.io-client"));

const [url, token] = process.argv.slice(2);
const started = Date.now();
const socket = io(`${url}/chat`, { auth: { token }, transports: ["polling"], reconnection: false });
socket.on("connect_error", (err) => { console.error(`connect_error ${err.message}`); process.exit(1); });
socket.on("connect", () => {
  const connected = Date.now() - started;
  // a moment for the client's next poll to be pending, as it is at any time in a session
  setTimeout(() => {
    const disconnecting = Date.now();
    socket.disconnect();
    process.on("exit", () => console.log(JSON.stringify({ connected_ms: connected,
                                                          exit_after_disconnect_ms: Date.now() - disconnecting })));
  }, 300);
});
