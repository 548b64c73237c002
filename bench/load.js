#!/usr/bin/env node
// One load-generator process of the chat benchmark. bench/generator.py starts one or several
// (`--process i --processes n`: this one opens the members whose number g has g % n == i) and
// steers them over stdin/stdout with JSON lines:
//
//   -> {"event":"ready", ...}               members connected and joined
//   <- {"cmd":"start","start":T0,"end":T1}  send from now on (warm-up), measure in [T0, T1) (ms since the epoch)
//   -> {"event":"sent","accepted":{...},"reacted":{...}}  after T1, once the acks are in:
//                                           accepted messages (and reactions) per room
//   <- {"cmd":"expect","accepted":{...},"reacted":{...}}  the same, summed over all processes
//   -> {"event":"result", ...}              once every expected delivery arrived (or DRAIN_TIMEOUT_MS)
//
// `--mode idle` prints "ready" and holds its connections until stdin closes.
//
// `--mode storm` (a reconnect storm: an instance restart, a network blip): the first --senders
// members of each room stay; the others, the fleet, wait joined.
//   <- {"cmd":"storm"}                      the fleet drops at once; meanwhile each staying member
//                                           sends --missed messages, acknowledged one by one
//   -> {"event":"missed","accepted":{...}}  accepted messages per room
//   <- {"cmd":"rejoin","accepted":{...}}    the same, summed over all processes: the fleet
//                                           reconnects at once (--storm-concurrency at a time),
//                                           each client joining with `since` (ours) and retrying
//                                           a failed attempt RECONNECT_TRIES times at most, waiting
//                                           longer each time, with jitter, as a real client does
//   -> {"event":"result", ...}              once every client rejoined or gave up: how long it took,
//                                           and whether each recovered exactly what it missed
//
// Load: --rooms R rooms of --members M members each; the first --senders S members of each room
// send, each with --inflight K messages unacknowledged (closed loop) or at --rate X messages per
// second (open loop, so a slow server shows up as growing latency instead of a slower sender).
// Every member receives and is counted, senders included (both servers send to the whole room).
// --reactions (ours only): each sender reacts to each of its messages once it is acknowledged, and
// only then sends the next, so the room carries one `message_updated` per `message`; both count
// as deliveries (a reaction belongs to the window its message was sent in).
// --urls: one or more instances; members of room r go to instance r % n (--layout rooms) or member
// k of every room to instance k % n (--layout spread). Only 127.0.0.1 may be a target.
'use strict';

const { performance } = require('perf_hooks');
const { formatText } = require('./text');

const CLIENTS = { lean: require('./lean'), official: require('./official') };
const ACK_TIMEOUT_MS = 10000;
const DRAIN_TIMEOUT_MS = 5000; // after "expect", wait this long at most for late deliveries
const RATE_TICK_MS = 5;
const RATE_MAX_INFLIGHT = 20000; // open loop, but not unbounded if the server stalls
const REACTION = '👍';
const RECONNECT_TRIES = 6;
const RECONNECT_WAIT_MS = 200; // before the 2nd try; doubled for each try after, up to RECONNECT_WAIT_MAX_MS
const RECONNECT_WAIT_MAX_MS = 5000;
// Latency histogram: bucket k holds (BASE * FACTOR^(k-1), BASE * FACTOR^k] ms; bench/latency.py reads it.
const LATENCY_BASE_MS = 0.01;
const LATENCY_FACTOR = 1.02;
const LATENCY_BUCKETS = 1024;

// How each server speaks: our contract (/chat, tokens) or the reference's bare events (/, no auth,
// the send time also in `sent_at`).
const TARGETS = {
  ours: {
    namespace: '/chat',
    credentials: async (url, name) => ({ token: (await createSession(url, name)).token }),
    payload: (room, text) => ({ room, text }),
  },
  reference: {
    namespace: '/',
    credentials: async () => null,
    payload: (room, text, sentAt) => ({ room, text, sent_at: sentAt }),
  },
};

const now = () => performance.timeOrigin + performance.now(); // ms since the epoch, sub-ms precision
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (x) => Math.round(x * 100) / 100;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key] = true;
    else { out[key] = next; i++; }
  }
  return out;
}

function options(argv) {
  const a = parseArgs(argv);
  const opts = {
    urls: String(a.urls || 'http://127.0.0.1:8080').split(',').map((url) => url.replace(/\/$/, '')),
    target: a.target || 'ours',
    mode: a.mode || 'load',
    roomPrefix: a['room-prefix'] || `bench-${Date.now()}`,
    rooms: Number.parseInt(a.rooms || '1', 10),
    members: Number.parseInt(a.members || '10', 10),
    senders: Number.parseInt(a.senders || '1', 10),
    inflight: a.inflight ? Number.parseInt(a.inflight, 10) : null,
    rate: a.rate ? Number.parseFloat(a.rate) : null,
    layout: a.layout || 'rooms',
    users: a.users || 'distinct',
    client: a.client || 'lean',
    deflate: !a['no-deflate'],
    process: Number.parseInt(a.process || '0', 10),
    processes: Number.parseInt(a.processes || '1', 10),
    connectConcurrency: Number.parseInt(a['connect-concurrency'] || '50', 10),
    reactions: Boolean(a.reactions),
    missed: Number.parseInt(a.missed || '1', 10),
    stormConcurrency: a['storm-concurrency'] ? Number.parseInt(a['storm-concurrency'], 10) : Infinity,
  };
  if (opts.reactions && opts.target !== 'ours') throw new Error('--reactions: only our server has them');
  if (!TARGETS[opts.target]) throw new Error(`--target must be ours or reference, not ${opts.target}`);
  if (!['load', 'idle', 'storm'].includes(opts.mode)) throw new Error(`unknown --mode ${opts.mode}`);
  if (!['rooms', 'spread'].includes(opts.layout)) throw new Error('--layout must be rooms or spread');
  if (!['distinct', 'shared'].includes(opts.users)) throw new Error('--users must be distinct or shared');
  if (!CLIENTS[opts.client]) throw new Error('--client must be lean or official');
  if (opts.mode === 'load' && (opts.inflight === null) === (opts.rate === null)) {
    throw new Error('a load needs exactly one of --inflight and --rate');
  }
  for (const url of opts.urls) {
    // The benchmark must never load anything but this machine.
    const host = new URL(url).hostname;
    if (host !== '127.0.0.1') throw new Error(`only 127.0.0.1 may be a target, not ${host}`);
  }
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

// Runs `task(item)` for every item, `concurrency` at a time; the results in order.
async function pool(items, concurrency, task) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

// Counters of this process.
function newStats() {
  return {
    window: { start: Infinity, end: Infinity },
    latency: new Uint32Array(LATENCY_BUCKETS),
    latencyMax: 0,
    deliveries: 0, // received during the window, messages and updates
    updates: 0, // message_updated received during the window
    windowDeliveries: 0, // first receipts of messages sent during the window
    windowUpdates: 0, // first receipts of updates of messages sent during the window
    outOfOrder: 0, // against the sender's order
    seqOutOfOrder: 0, // against the room's seq order
    duplicates: 0,
    acked: 0, // accepted messages whose ack arrived during the window
    accepted: {}, // room index -> accepted messages sent during the window
    reacted: {}, // room index -> accepted reactions to messages sent during the window
    inflight: 0,
    errors: { connect: 0, join: 0, nack: 0, timeout: 0, disconnect: 0, behind: 0 },
    firstError: null,
    closing: false,
  };
}

function noteError(stats, kind, detail) {
  stats.errors[kind] += 1;
  if (stats.firstError === null) stats.firstError = `${kind}: ${detail}`;
}

const inWindow = (stats, at) => at >= stats.window.start && at < stats.window.end;

function recordLatency(stats, ms) {
  const bucket = ms <= LATENCY_BASE_MS ? 0 : Math.ceil(Math.log(ms / LATENCY_BASE_MS) / Math.log(LATENCY_FACTOR));
  stats.latency[Math.min(bucket, LATENCY_BUCKETS - 1)] += 1;
  if (ms > stats.latencyMax) stats.latencyMax = ms;
}

// One stream of numbered messages as one member sees it: numbers above the highest so far are
// new (those skipped are remembered as gaps), a gap's number arriving later is out of order, any
// other number a duplicate.
class Order {
  constructor(last) { this.last = last; this.gaps = new Set(); }

  see(n) {
    if (n > this.last) {
      for (let k = this.last + 1; k < n; k++) this.gaps.add(k);
      this.last = n;
      return 'new';
    }
    return this.gaps.delete(n) ? 'late' : 'duplicate';
  }
}

// A member's receiving side: order and duplicate checks, then the counts and the latency. Order is
// each sender's send order (what both servers promise); for a server that numbers a room's
// messages (`seq`), the room's order is counted too, apart: our protocol lets live messages of
// different senders arrive slightly out of seq order.
function receiver(stats) {
  const bySender = new Map();
  let bySeq = new Order(0);
  const onMessage = (seq, sentAt, sender, n) => {
    const at = now();
    const window = stats.window;
    if (at >= window.start && at < window.end) stats.deliveries += 1;
    let stream = bySender.get(sender);
    if (!stream) { stream = new Order(0); bySender.set(sender, stream); }
    const verdict = stream.see(n);
    if (verdict === 'duplicate') { stats.duplicates += 1; return; }
    if (verdict === 'late') stats.outOfOrder += 1;
    if (seq >= 0 && bySeq.see(seq) === 'late') stats.seqOutOfOrder += 1;
    if (sentAt >= window.start && sentAt < window.end) {
      stats.windowDeliveries += 1;
      recordLatency(stats, at - sentAt);
    }
  };
  // Each message is reacted to once: a second update of it is a duplicate.
  const updatedBySender = new Map();
  const onUpdate = (sentAt, sender, n) => {
    if (inWindow(stats, now())) { stats.deliveries += 1; stats.updates += 1; }
    let stream = updatedBySender.get(sender);
    if (!stream) { stream = new Order(0); updatedBySender.set(sender, stream); }
    if (stream.see(n) === 'duplicate') { stats.duplicates += 1; return; }
    if (inWindow(stats, sentAt)) stats.windowUpdates += 1;
  };
  // The join ack's seq (ours) is the last message before this member joined.
  const joined = (ack) => { if (Number.isInteger(ack.seq)) bySeq = new Order(ack.seq); };
  return { onMessage, onUpdate, joined };
}

// The members this process opens: {g, room index, url, sends}.
function ownMembers(opts) {
  const members = [];
  for (let g = opts.process; g < opts.rooms * opts.members; g += opts.processes) {
    const room = Math.floor(g / opts.members);
    const k = g % opts.members;
    const url = opts.urls[(opts.layout === 'rooms' ? room : k) % opts.urls.length];
    members.push({ g, room, url, sends: opts.mode !== 'idle' && k < opts.senders });
  }
  return members;
}

// Opens and joins every member; those that fail are counted, not fatal. The shared user (idle
// connections) is one session per instance.
async function openMembers(opts, stats) {
  const target = TARGETS[opts.target];
  const shared = new Map();
  const credentials = (member) => {
    if (opts.users === 'distinct') return target.credentials(member.url, `m${member.g}`);
    if (!shared.has(member.url)) shared.set(member.url, target.credentials(member.url, 'idle'));
    return shared.get(member.url);
  };
  const openOne = async (member) => {
    try {
      const { onMessage, onUpdate, joined } = receiver(stats);
      const auth = await credentials(member);
      const conn = await CLIENTS[opts.client].open({
        url: member.url, namespace: target.namespace, auth,
        room: `${opts.roomPrefix}-${member.room}`, deflate: opts.deflate, onMessage, onUpdate,
        onClose: () => { if (!stats.closing) noteError(stats, 'disconnect', `member ${member.g} closed`); },
      });
      joined(conn.joined);
      return { ...member, conn, auth, count: 0 };
    } catch (error) {
      noteError(stats, error.message.includes('join') ? 'join' : 'connect', error.message);
      return null;
    }
  };
  const started = performance.now();
  const members = await pool(ownMembers(opts), opts.connectConcurrency, openOne);
  const connectSeconds = (performance.now() - started) / 1000;
  return { members: members.filter((member) => member !== null), connectSeconds };
}

const countIn = (counts, room) => { counts[room] = (counts[room] || 0) + 1; };

// Sends one message (and with --reactions its reaction once it is accepted) and calls `then` once
// it is done: acknowledged, refused or timed out.
function publishOne(opts, stats, member, then) {
  const sentAt = now();
  member.count += 1;
  stats.inflight += 1;
  const room = `${opts.roomPrefix}-${member.room}`;
  const finish = () => { stats.inflight -= 1; if (then) then(); };
  const payload = TARGETS[opts.target].payload(room, formatText(sentAt, member.g, member.count), sentAt);
  member.conn.send(payload, ACK_TIMEOUT_MS, (kind, detail) => {
    if (kind) { noteError(stats, kind, detail); finish(); return; }
    if (inWindow(stats, now())) stats.acked += 1;
    if (inWindow(stats, sentAt)) countIn(stats.accepted, member.room);
    if (!opts.reactions) { finish(); return; }
    member.conn.send({ room, seq: detail, emoji: REACTION, on: true }, ACK_TIMEOUT_MS, (reactKind, reactDetail) => {
      if (reactKind) noteError(stats, reactKind, `react: ${reactDetail}`);
      else if (inWindow(stats, sentAt)) countIn(stats.reacted, member.room);
      finish();
    }, 'react');
  });
}

// Closed loop: each sender keeps K messages in flight. Returns a stopper.
function publishClosedLoop(opts, stats, senders) {
  let running = true;
  for (const member of senders) {
    const next = () => { if (running) publishOne(opts, stats, member, next); };
    for (let i = 0; i < opts.inflight; i++) next();
  }
  return () => { running = false; };
}

// Open loop: each sender `rate` messages per second on one timer, the senders taking turns so
// that their sends are spread evenly over time.
function publishAtRate(opts, stats, senders) {
  if (senders.length === 0) return () => {};
  const started = performance.now();
  let due = 0;
  const timer = setInterval(() => {
    const target = Math.floor(((performance.now() - started) * opts.rate * senders.length) / 1000);
    for (; due < target; due++) {
      if (stats.inflight >= RATE_MAX_INFLIGHT) noteError(stats, 'behind', 'too many messages in flight');
      else publishOne(opts, stats, senders[due % senders.length], null);
    }
  }, RATE_TICK_MS);
  return () => clearInterval(timer);
}

// Sends `opts.missed` messages from a staying member, one acknowledged before the next; counts the
// accepted ones per room.
async function sendMissed(opts, stats, member, accepted) {
  for (let i = 0; i < opts.missed; i++) {
    member.count += 1;
    const room = `${opts.roomPrefix}-${member.room}`;
    const sentAt = now();
    const payload = TARGETS[opts.target].payload(room, formatText(sentAt, member.g, member.count), sentAt);
    const ok = await new Promise((resolve) => member.conn.send(payload, ACK_TIMEOUT_MS, (kind, detail) => {
      if (kind) noteError(stats, kind, `missed message: ${detail}`);
      resolve(!kind);
    }));
    if (ok) countIn(accepted, member.room);
  }
}

const reconnectWait = (tries) => {
  const wait = Math.min(RECONNECT_WAIT_MS * 2 ** (tries - 1), RECONNECT_WAIT_MAX_MS);
  return wait / 2 + Math.random() * wait; // jitter, so clients refused together do not retry together
};

// One client of the fleet back: reconnect and join, with `since` on our server (the position of its
// first join: nothing came in between), retrying as a real client does. What the join recovered is
// checked against the `expected` messages its room received while it was away.
async function rejoin(opts, stats, member, expected) {
  const target = TARGETS[opts.target];
  const since = opts.target === 'ours' ? { seq: member.conn.joined.seq, epoch: member.conn.joined.epoch } : null;
  const outcome = { retries: 0, refused: 0, expected, recovered: 0, duplicates: 0, notRecovered: 0 };
  for (let tries = 1; ; tries++) {
    try {
      member.conn = await CLIENTS[opts.client].open({
        url: member.url, namespace: target.namespace, auth: member.auth, room: `${opts.roomPrefix}-${member.room}`,
        since, deflate: opts.deflate, onMessage: () => {}, onUpdate: null, onClose: () => {},
      });
      break;
    } catch (error) {
      outcome.retries = tries;
      if (tries === RECONNECT_TRIES) {
        noteError(stats, error.message.includes('join') ? 'join' : 'connect', `after ${tries} tries: ${error.message}`);
        return { ...outcome, retries: tries - 1, refused: 1 };
      }
      await sleep(reconnectWait(tries));
    }
  }
  const ack = member.conn.joined;
  if (!since) return outcome; // the reference recovers nothing: only the time counts
  if (ack.recovered !== true) outcome.notRecovered = 1;
  for (const message of ack.messages || []) {
    if (message.seq > since.seq) outcome.recovered += 1;
    else outcome.duplicates += 1;
  }
  return outcome;
}

async function runStorm(opts, stats, members, next) {
  await expectCommand(next, 'storm');
  const fleet = members.filter((member) => !member.sends);
  stats.closing = true; // the drop is the scenario, not an error
  fleet.forEach((member) => member.conn.close());
  const accepted = {};
  await Promise.all(members.filter((member) => member.sends).map((member) => sendMissed(opts, stats, member, accepted)));
  emit({ event: 'missed', accepted });

  const { accepted: all } = await expectCommand(next, 'rejoin');
  const started = performance.now();
  const outcomes = await pool(fleet, Math.min(opts.stormConcurrency, fleet.length || 1),
    (member) => rejoin(opts, stats, member, opts.target === 'ours' ? all[member.room] || 0 : 0));
  const seconds = (performance.now() - started) / 1000;
  const sum = (key) => outcomes.reduce((total, outcome) => total + outcome[key], 0);
  const expected = sum('expected');
  emit({
    event: 'result',
    rejoined: fleet.length - sum('refused'),
    refused: sum('refused'),
    rejoin_s: round(seconds),
    retries: sum('retries'),
    expected,
    recovered: sum('recovered'),
    missing: Math.max(0, expected - sum('recovered')),
    duplicates: sum('duplicates'),
    not_recovered: sum('notRecovered'),
    errors: stats.errors,
    first_error: stats.firstError,
  });
}

// The next command from the driver (one JSON object per line on stdin).
function commands() {
  const lines = require('readline').createInterface({ input: process.stdin });
  const queue = [];
  const waiters = [];
  lines.on('line', (line) => { if (waiters.length) waiters.shift()(JSON.parse(line)); else queue.push(JSON.parse(line)); });
  lines.on('close', () => { if (!waiters.length) queue.push(null); waiters.splice(0).forEach((resolve) => resolve(null)); });
  return () => new Promise((resolve) => { if (queue.length) resolve(queue.shift()); else waiters.push(resolve); });
}

async function expectCommand(next, name) {
  const command = await next();
  if (!command || command.cmd !== name) throw new Error(`expected the "${name}" command, got ${JSON.stringify(command)}`);
  return command;
}

const emit = (line) => console.log(JSON.stringify(line));

async function waitUntil(condition, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!condition() && performance.now() < deadline) await sleep(10);
}

function latencyReport(stats) {
  const buckets = {};
  stats.latency.forEach((count, k) => { if (count) buckets[k] = count; });
  return { buckets, max: round(stats.latencyMax) };
}

async function runLoad(opts, stats, members, next) {
  const { start, end } = await expectCommand(next, 'start');
  stats.window = { start, end };
  const senders = members.filter((member) => member.sends);
  const stop = opts.rate !== null ? publishAtRate(opts, stats, senders) : publishClosedLoop(opts, stats, senders);
  await sleep(start - now());
  const cpuBefore = process.cpuUsage();
  await sleep(end - now());
  const cpu = process.cpuUsage(cpuBefore);
  stop();
  await waitUntil(() => stats.inflight === 0, ACK_TIMEOUT_MS + 1000);
  emit({ event: 'sent', accepted: stats.accepted, reacted: stats.reacted });

  const { accepted, reacted } = await expectCommand(next, 'expect');
  const expected = members.reduce((sum, member) => sum + (accepted[member.room] || 0), 0);
  const expectedUpdates = members.reduce((sum, member) => sum + (reacted[member.room] || 0), 0);
  await waitUntil(() => stats.windowDeliveries >= expected && stats.windowUpdates >= expectedUpdates,
    DRAIN_TIMEOUT_MS);
  const seconds = (end - start) / 1000;
  emit({
    event: 'result',
    deliveries: stats.deliveries,
    acked: stats.acked,
    expected,
    missing: Math.max(0, expected - stats.windowDeliveries),
    updates: stats.updates,
    expected_updates: expectedUpdates,
    missing_updates: Math.max(0, expectedUpdates - stats.windowUpdates),
    out_of_order: stats.outOfOrder,
    seq_out_of_order: stats.seqOutOfOrder,
    duplicates: stats.duplicates,
    latency: latencyReport(stats),
    errors: stats.errors,
    first_error: stats.firstError,
    generator_cpu_percent: round(((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100),
  });
}

async function main() {
  const opts = options(process.argv.slice(2));
  const next = commands();
  const stats = newStats();
  const { members, connectSeconds } = await openMembers(opts, stats);
  emit({
    event: 'ready', connections: members.length, connect_s: round(connectSeconds),
    errors: stats.errors, first_error: stats.firstError,
  });
  if (opts.mode === 'load') await runLoad(opts, stats, members, next);
  else if (opts.mode === 'storm') await runStorm(opts, stats, members, next);
  else await next(); // idle: hold the connections until stdin closes (or a line arrives)
  stats.closing = true;
  members.forEach((member) => member.conn.close());
  process.exit(0); // do not wait for sockets to finish closing
}

main().catch((error) => { console.error(`load.js: ${error.stack || error}`); process.exit(1); });
