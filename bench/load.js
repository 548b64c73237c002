#!/usr/bin/env node
// Load generator for the chat benchmark; `python -m bench` drives it, but it runs alone too:
//
//   node bench/load.js --url http://127.0.0.1:8080 --target ours|reference --mode throughput|rate|idle
//       [--subscribers 200] [--inflight 64] [--rate 200] [--duration 15] [--warmup 3]
//       [--connections 1000] [--room NAME] [--users distinct|shared] [--client lean|official] [--no-deflate]
//
// throughput: N subscribers in one room, one publisher keeping K messages in flight (closed loop).
// rate:       the same room, but the publisher sends R messages per second whatever the acks (open
//             loop, so a slow server shows up as growing latency instead of a slower sender).
// idle:       C connections join a room and stay; prints {"event":"ready"} and holds them until
//             stdin closes (the driver reads the server's memory meanwhile).
// Prints JSON lines: progress events ({"event": ...}), the results last. Written for a cheap generator: one process, subscribers
// on the lean client of lean.js (--client official: socket.io-client), latencies in a typed array.
'use strict';

const { io } = require('socket.io-client');
const { performance } = require('perf_hooks');
const lean = require('./lean');

const ACK_TIMEOUT_MS = 10000;
const CONNECT_BATCH = 50; // concurrent handshakes; more only fills the server's listen backlog
const DRAIN_TIMEOUT_MS = 5000; // after the window, wait this long at most for late deliveries
const RATE_TICK_MS = 5;
const RATE_MAX_INFLIGHT = 20000; // open loop, but not unbounded if the server stalls

// How each server speaks: our contract (/chat, tokens, send time in the text) or the reference's
// bare events (/, no auth, send time in `sent_at`). The text is the same for both. `needle` is
// what precedes the send time in a serialized `message`, for the lean subscribers.
const TARGETS = {
  ours: {
    namespace: '/chat',
    credentials: async (url, name) => ({ token: (await createSession(url, name)).token }),
    payload: (room, sentAt) => ({ room, text: String(sentAt) }),
    sentAt: (message) => Number(message.text),
    needle: '"text":"',
  },
  reference: {
    namespace: '/',
    credentials: async () => null,
    payload: (room, sentAt) => ({ room, text: String(sentAt), sent_at: sentAt }),
    sentAt: (message) => message.sent_at,
    needle: '"sent_at":',
  },
};

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const key = arg.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key] = true;
    else { out[key] = next; i++; }
  }
  return out;
}

function options(argv) {
  const a = parseArgs(argv);
  const opts = {
    url: String(a.url || 'http://127.0.0.1:8080').replace(/\/$/, ''),
    target: a.target || 'ours',
    mode: a.mode || 'throughput',
    subscribers: parseInt(a.subscribers || '200', 10),
    inflight: parseInt(a.inflight || '64', 10),
    rate: parseFloat(a.rate || '200'),
    duration: parseFloat(a.duration || '15'),
    warmup: parseFloat(a.warmup || '3'),
    connections: parseInt(a.connections || '1000', 10),
    room: a.room || `bench-${Date.now()}`,
    users: a.users || 'distinct',
    client: a.client || 'lean',
    deflate: !a['no-deflate'],
  };
  if (!TARGETS[opts.target]) throw new Error(`--target must be ours or reference, not ${opts.target}`);
  if (!['throughput', 'rate', 'idle'].includes(opts.mode)) throw new Error(`unknown --mode ${opts.mode}`);
  if (!['distinct', 'shared'].includes(opts.users)) throw new Error('--users must be distinct or shared');
  if (!['lean', 'official'].includes(opts.client)) throw new Error('--client must be lean or official');
  const host = new URL(opts.url).hostname;
  // The benchmark must never load anything but this machine.
  if (host !== '127.0.0.1') throw new Error(`only 127.0.0.1 may be a target, not ${host}`);
  return opts;
}

async function createSession(url, name) {
  const response = await fetch(`${url}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (response.status !== 200) throw new Error(`POST /api/session: ${response.status} ${await response.text()}`);
  return response.json();
}

// Runs `task(i)` for i in [0, count), at most `batch` at a time, keeping the order of results.
async function inBatches(count, batch, task) {
  const results = [];
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const slice = [];
    for (let i = start; i < end; i++) slice.push(task(i));
    results.push(...(await Promise.all(slice)));
  }
  return results;
}

// Counters shared by every socket of the run.
function newStats() {
  return {
    window: { start: Infinity, end: Infinity },
    latencies: new Float64Array(1 << 16),
    latencyCount: 0,
    deliveries: 0, // received by subscribers during the window
    windowDeliveries: 0, // received by subscribers, of messages sent during the window
    acked: 0, // accepted messages whose ack arrived during the window
    accepted: 0, // accepted messages sent during the window
    inflight: 0,
    sent: 0,
    errors: { connect: 0, join: 0, nack: 0, timeout: 0, disconnect: 0, missing: 0, behind: 0 },
    firstError: null,
    closing: false,
  };
}

function noteError(stats, kind, detail) {
  stats.errors[kind] += 1;
  if (stats.firstError === null) stats.firstError = `${kind}: ${detail}`;
}

function recordLatency(stats, ms) {
  if (stats.latencyCount === stats.latencies.length) {
    const grown = new Float64Array(stats.latencies.length * 2);
    grown.set(stats.latencies);
    stats.latencies = grown;
  }
  stats.latencies[stats.latencyCount++] = ms;
}

function connect(opts, auth) {
  return new Promise((resolve, reject) => {
    const socket = io(opts.url + TARGETS[opts.target].namespace, {
      transports: ['websocket'],
      forceNew: true, // one engine.io connection per socket, not one multiplexed connection
      reconnection: false, // a dropped connection is an error to report, not to hide
      auth: auth || {},
      // Offered by browsers too; --no-deflate shows what compression costs the server.
      perMessageDeflate: opts.deflate ? { threshold: 1024 } : false,
    });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => { socket.close(); reject(error); });
  });
}

async function join(socket, room) {
  const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('join', { room });
  if (!ack || ack.ok !== true) throw new Error(`join refused: ${JSON.stringify(ack)}`);
}

// A socket.io-client socket joined to the room; `onSentAt` (if any) gets each message's send time.
async function openOfficial(opts, stats, auth, onSentAt) {
  const socket = await connect(opts, auth);
  socket.on('disconnect', (reason) => { if (!stats.closing) noteError(stats, 'disconnect', reason); });
  await join(socket, opts.room);
  if (onSentAt) {
    const sentAtOf = TARGETS[opts.target].sentAt;
    socket.on('message', (message) => onSentAt(sentAtOf(message)));
  }
  return socket;
}

// A lean subscriber (see lean.js) joined to the room.
function openLean(opts, stats, auth, onSentAt) {
  const target = TARGETS[opts.target];
  return lean.subscribe({
    url: opts.url, namespace: target.namespace, auth, room: opts.room, deflate: opts.deflate,
    needle: target.needle, onSentAt, onClose: () => { if (!stats.closing) noteError(stats, 'disconnect', 'closed'); },
  });
}

// Opens `count` sockets joined to the room with `opener`; those that fail are counted, not fatal.
async function openSockets(opts, stats, count, prefix, opener, onSentAt = null) {
  const target = TARGETS[opts.target];
  let shared = null;
  const open = async (i) => {
    try {
      if (opts.users === 'shared') shared = shared || target.credentials(opts.url, `${prefix}`);
      const auth = await (shared || target.credentials(opts.url, `${prefix}${i}`));
      return await opener(opts, stats, auth, onSentAt);
    } catch (error) {
      noteError(stats, error.message.includes('join') ? 'join' : 'connect', error.message);
      return null;
    }
  };
  return (await inBatches(count, CONNECT_BATCH, open)).filter((socket) => socket !== null);
}

// The subscribers' one hot function: count the delivery, record its latency.
function receiver(stats) {
  return (sentAt) => {
    const now = performance.now();
    const window = stats.window;
    if (now >= window.start && now < window.end) stats.deliveries += 1;
    if (sentAt >= window.start && sentAt < window.end) {
      stats.windowDeliveries += 1;
      recordLatency(stats, now - sentAt);
    }
  };
}

// Sends one message and calls `then` once it is acknowledged, refused or timed out.
function publishOne(opts, stats, publisher, then) {
  const sentAt = performance.now();
  stats.inflight += 1;
  stats.sent += 1;
  publisher.timeout(ACK_TIMEOUT_MS).emit('message', TARGETS[opts.target].payload(opts.room, sentAt), (err, ack) => {
    stats.inflight -= 1;
    const now = performance.now();
    if (err) noteError(stats, 'timeout', err.message);
    else if (!ack || ack.ok !== true) noteError(stats, 'nack', JSON.stringify(ack));
    else {
      if (now >= stats.window.start && now < stats.window.end) stats.acked += 1;
      if (sentAt >= stats.window.start && sentAt < stats.window.end) stats.accepted += 1;
    }
    if (then) then();
  });
}

// Closed loop: K messages in flight, the next leaves as soon as an ack returns. Returns a stopper.
function publishClosedLoop(opts, stats, publisher) {
  let running = true;
  const next = () => { if (running) publishOne(opts, stats, publisher, next); };
  for (let i = 0; i < opts.inflight; i++) next();
  return () => { running = false; };
}

// Open loop: `rate` messages per second on a timer, however fast the acks come back.
function publishAtRate(opts, stats, publisher) {
  const started = performance.now();
  let due = 0;
  const timer = setInterval(() => {
    const target = Math.floor(((performance.now() - started) * opts.rate) / 1000);
    for (; due < target; due++) {
      if (stats.inflight >= RATE_MAX_INFLIGHT) noteError(stats, 'behind', 'too many messages in flight');
      else publishOne(opts, stats, publisher, null);
    }
  }, RATE_TICK_MS);
  return () => clearInterval(timer);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function drain(stats, expected) {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  while (performance.now() < deadline && (stats.inflight > 0 || stats.windowDeliveries < expected)) await sleep(20);
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return round(sorted[index]);
}

const round = (x) => Math.round(x * 100) / 100;

function summary(opts, stats, subscribers, setupSeconds, cpu) {
  const sorted = stats.latencies.subarray(0, stats.latencyCount).sort();
  return {
    target: opts.target,
    mode: opts.mode,
    subscribers,
    inflight: opts.mode === 'throughput' ? opts.inflight : null,
    rate: opts.mode === 'rate' ? opts.rate : null,
    duration_s: opts.duration,
    client: opts.client,
    deflate: opts.deflate,
    messages_per_s: round(stats.acked / opts.duration),
    deliveries_per_s: round(stats.deliveries / opts.duration),
    latency_ms: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: percentile(sorted, 1),
      samples: sorted.length,
    },
    errors: stats.errors,
    first_error: stats.firstError,
    setup_s: round(setupSeconds),
    generator_cpu_percent: round(cpu),
  };
}

async function runLoad(opts) {
  const stats = newStats();
  const setupStarted = performance.now();
  const opener = opts.client === 'lean' ? openLean : openOfficial;
  const subscribers = await openSockets(opts, stats, opts.subscribers, 'sub', opener, receiver(stats));
  const [publisher] = await openSockets(opts, stats, 1, 'pub', openOfficial);
  if (!publisher) throw new Error(`publisher could not connect: ${stats.firstError}`);
  const setupSeconds = (performance.now() - setupStarted) / 1000;

  const stop = opts.mode === 'rate' ? publishAtRate(opts, stats, publisher) : publishClosedLoop(opts, stats, publisher);
  await sleep(opts.warmup * 1000);
  // The driver samples the server's CPU time at these two lines.
  console.log(JSON.stringify({ event: 'measuring' }));
  const cpuBefore = process.cpuUsage();
  stats.window.start = performance.now();
  stats.window.end = stats.window.start + opts.duration * 1000;
  await sleep(opts.duration * 1000);
  const cpu = process.cpuUsage(cpuBefore);
  console.log(JSON.stringify({ event: 'measured' }));
  stop();
  const expected = stats.accepted * subscribers.length;
  await drain(stats, expected);
  stats.errors.missing = Math.max(0, expected - stats.windowDeliveries);

  stats.closing = true;
  [publisher, ...subscribers].forEach((socket) => socket.close());
  const cpuPercent = ((cpu.user + cpu.system) / 1000 / (opts.duration * 1000)) * 100;
  return summary(opts, stats, subscribers.length, setupSeconds, cpuPercent);
}

// Holds `connections` joined sockets until stdin closes, so the driver can read the server's RSS.
async function runIdle(opts) {
  const stats = newStats();
  const started = performance.now();
  const sockets = await openSockets(opts, stats, opts.connections, 'idle', openOfficial);
  console.log(JSON.stringify({
    event: 'ready', target: opts.target, connections: sockets.length,
    setup_s: round((performance.now() - started) / 1000), errors: stats.errors, first_error: stats.firstError,
  }));
  await new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('error', resolve);
    process.stdin.resume();
  });
  stats.closing = true;
  sockets.forEach((socket) => socket.close());
}

async function main() {
  const opts = options(process.argv.slice(2));
  if (opts.mode === 'idle') await runIdle(opts);
  else console.log(JSON.stringify(await runLoad(opts)));
  process.exit(0); // do not wait for sockets to finish closing
}

main().catch((error) => { console.error(`load.js: ${error.stack || error}`); process.exit(1); });
