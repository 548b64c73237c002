#!/usr/bin/env node
// The benchmark's reference: the least a Socket.IO 4.8 chat room does, for `python -m bench` to compare with.
//
//   node bench/reference/server.js [--host 127.0.0.1] [--port 3000] [--redis redis://127.0.0.1:6379]
//        [--ping-interval SECONDS] [--ping-timeout SECONDS] [--connect-timeout SECONDS]
//
// Namespace "/", no auth, no history, no validation beyond a room name:
//   join    {room}                 -> the socket joins the room; ack {ok: true}
//   message {room, text, sent_at}  -> the whole room (sender included) gets
//                                     message {room, text, sent_at, id}; ack {ok: true, id}
// --redis puts rooms on @socket.io/redis-adapter, so several instances on one Redis share them.
// Namespace "/chat" serves the same events to a client whose auth holds a `token` string (any),
// so that the transport conformance tests (tests/conformance) can run against this server too.
// Socket.IO's defaults are kept, among them no permessage-deflate.
'use strict';

const http = require('http');
const crypto = require('crypto');
const { Server } = require('socket.io');

function options(argv) {
  const opts = { host: '127.0.0.1', port: 3000, redis: null, pingInterval: 25, pingTimeout: 20, connectTimeout: 45 };
  const seconds = { '--ping-interval': 'pingInterval', '--ping-timeout': 'pingTimeout', '--connect-timeout': 'connectTimeout' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--host') opts.host = value;
    else if (flag === '--port') opts.port = Number.parseInt(value, 10);
    else if (flag === '--redis') opts.redis = value;
    else if (flag in seconds) opts[seconds[flag]] = Number.parseFloat(value);
    else throw new Error(`unknown option ${flag}`);
  }
  return opts;
}

// Two Redis connections (one publishes, one subscribes), as the adapter needs.
async function redisAdapter(url) {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pub = createClient({ url });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) client.on('error', (error) => console.error(`redis: ${error.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  return { adapter: createAdapter(pub, sub), clients: [pub, sub] };
}

const roomOf = (data) => (data && typeof data.room === 'string' && data.room ? data.room : null);

// `nextId()` numbers the messages of this instance.
function handle(io, socket, nextId) {
  const reply = (ack, value) => { if (typeof ack === 'function') ack(value); };
  socket.on('join', (data, ack) => {
    const room = roomOf(data);
    if (!room) return reply(ack, { ok: false, error: 'room required' });
    socket.join(room);
    return reply(ack, { ok: true });
  });
  socket.on('message', (data, ack) => {
    const room = roomOf(data);
    if (!room) return reply(ack, { ok: false, error: 'room required' });
    const id = nextId();
    io.to(room).emit('message', { room, text: data.text, sent_at: data.sent_at, id });
    return reply(ack, { ok: true, id });
  });
}

async function main() {
  const opts = options(process.argv.slice(2));
  const instance = crypto.randomBytes(4).toString('hex');
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    serveClient: false,
    pingInterval: opts.pingInterval * 1000,
    pingTimeout: opts.pingTimeout * 1000,
    connectTimeout: opts.connectTimeout * 1000,
  });
  const redis = opts.redis ? await redisAdapter(opts.redis) : null;
  if (redis) io.adapter(redis.adapter);
  let counter = 0;
  const nextId = () => `${instance}-${++counter}`;
  io.on('connection', (socket) => handle(io, socket, nextId));
  const chat = io.of('/chat');
  chat.use((socket, next) => {
    if (typeof socket.handshake.auth.token === 'string') return next();
    return next(Object.assign(new Error('a token is required'), { data: { code: 'unauthorized' } }));
  });
  chat.on('connection', (socket) => handle(chat, socket, nextId));

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, opts.host, resolve);
  });
  console.log(JSON.stringify({ event: 'listening', host: opts.host, port: opts.port, redis: opts.redis, instance }));

  const shutdown = async () => {
    setTimeout(() => process.exit(0), 3000).unref(); // whatever still hangs
    io.close();
    if (redis) await Promise.allSettled(redis.clients.map((client) => client.quit()));
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error) => { console.error(error); process.exit(1); });
