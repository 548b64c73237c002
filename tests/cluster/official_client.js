// The official Socket.IO JS client, run by Node: connect, join, send, and wait for `expect` messages.
// Usage: node official_client.js <base url> <token> <room> <text> <expect> [websocket-only]
// Prints one JSON line: {"transports": [...], "messages": [...]} and exits 0, or exits 1 with a reason.
const path = require("path");
const { io } = require(path.join(__dirname, "..", "..", "web", "node_modules", "socket.io-client"));

const [url, token, room, text, expect, mode] = process.argv.slice(2);
const transports = mode === "websocket-only" ? ["websocket"] : ["polling", "websocket"];
const socket = io(`${url}/chat`, { auth: { token }, transports, reconnection: false });
const seen = [];
const used = [];

const fail = (reason) => { console.error(reason); process.exit(1); };
setTimeout(() => fail(`timed out; transports ${used} messages ${JSON.stringify(seen)}`), 15000);

socket.on("connect_error", (err) => fail(`connect_error ${err.message} ${JSON.stringify(err.data)}`));
socket.io.on("open", () => {  // the engine is open: before any upgrade
  used.push(socket.io.engine.transport.name);
  socket.io.engine.on("upgrade", (transport) => used.push(transport.name));
});
socket.on("connect", () => {
  socket.emit("join", { room }, (ack) => {
    if (!ack.ok) fail(`join ${JSON.stringify(ack)}`);
    // give the transport upgrade a moment, so the message goes over the upgraded transport
    setTimeout(() => socket.emit("message", { room, text }, (sent) => { if (!sent.ok) fail(JSON.stringify(sent)); }), 500);
  });
});
socket.on("message", (message) => {
  seen.push(message.text);
  if (seen.length >= Number(expect)) {
    console.log(JSON.stringify({ transports: used, messages: seen }));
    socket.close();
    process.exit(0);
  }
});
