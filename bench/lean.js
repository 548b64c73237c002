// A minimal Socket.IO v4 client over one WebSocket, for the benchmark's members.
//
// Why not socket.io-client: on a 2-core machine the generator shares the CPU with the server, and
// the official client spends most of its time per received event in emitter hops and JSON.parse.
// This client speaks just enough Engine.IO v4 / Socket.IO v5 (open, connect to a namespace, one
// `join`, events with acks, ping/pong) and reads what the benchmark needs out of each `message`
// and `message_updated` frame with byte searches, so one event costs a few microseconds. official.js has the same
// interface on socket.io-client, to check that both count the same.
'use strict';

const WebSocket = require('ws');
const { parseText } = require('./text');

const JOIN_ACK_ID = 1;
const SETUP_TIMEOUT_MS = 10000;
const SWEEP_INTERVAL_MS = 250;
const SEQ_TEXT = '"seq":';
const SEQ = Buffer.from(SEQ_TEXT);
const TEXT = Buffer.from('"text":"');
const OK = '[{"ok":true';

// Frame prefixes of a namespace: Engine.IO type 4 (message) + Socket.IO type + "/nsp," unless "/".
function prefixes(namespace) {
  const nsp = namespace === '/' ? '' : `${namespace},`;
  return {
    connect: `40${nsp}`,
    connectError: `44${nsp}`,
    event: `42${nsp}`,
    ack: `43${nsp}`,
    message: Buffer.from(`42${nsp}["message",`),
    updated: Buffer.from(`42${nsp}["message_updated",`),
  };
}

// Every client with acks outstanding; one timer fails those older than their deadline.
const waiting = new Set();
setInterval(() => {
  const now = Date.now();
  for (const client of waiting) client.expire(now);
}, SWEEP_INTERVAL_MS).unref();

/** The integer after `needle` in `data` (from `from`), or -1 if there is none. */
function integerAfter(data, needle, from) {
  const at = data.indexOf(needle, from);
  return at < 0 ? -1 : Number.parseInt(data.toString('latin1', at + needle.length, at + needle.length + 20), 10);
}

/** [sentAt, sender, n] from the text of the message in `data` (after `from`), or null. */
function textAfter(data, from) {
  const at = data.indexOf(TEXT, from);
  return at < 0 ? null : parseText(data.toString('latin1', at + TEXT.length, at + TEXT.length + 64));
}

/**
 * Connects, enters `namespace` with `auth`, joins `room` (with `since`, if given, as a reconnecting
 * client does: ours then recovers what came after it); resolves once the join is acknowledged,
 * to `{joined, send, close}`: `joined` is the join ack, `send(payload, ackTimeoutMs, done, event)`
 * emits `event` (`message` by default) and calls `done(null, seq)` on an ok ack (the first `seq`
 * in it, -1 if none), else `done(kind, detail)` with kind `nack` or `timeout`.
 * `onMessage(seq, sentAt, sender, n)` gets each `message` event (seq -1 when the server sends none;
 * the rest from the text, see text.js), `onUpdate(sentAt, sender, n)` each `message_updated` (of
 * the message with that text); `onClose()` is called if the connection drops.
 */
function open({ url, namespace, auth, room, since, deflate, onMessage, onUpdate, onClose }) {
  const wsUrl = `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const ws = new WebSocket(wsUrl, { perMessageDeflate: deflate, skipUTF8Validation: true });
  const p = prefixes(namespace);
  const pending = new Map(); // ack id -> {deadline, done}, oldest first
  let nextId = JOIN_ACK_ID + 1;
  let closing = false;

  const client = {
    expire(now) {
      for (const [id, call] of pending) {
        if (call.deadline > now) break;
        pending.delete(id);
        call.done('timeout', `no ack within the timeout`);
      }
      if (pending.size === 0) waiting.delete(client);
    },
  };

  function onAck(text) {
    const bracket = text.indexOf('[', p.ack.length);
    const id = Number.parseInt(text.slice(p.ack.length, bracket), 10);
    const call = pending.get(id);
    if (!call) return;
    pending.delete(id);
    if (!text.startsWith(OK, bracket)) { call.done('nack', text.slice(bracket, bracket + 200)); return; }
    const at = text.indexOf(SEQ_TEXT, bracket);
    call.done(null, at < 0 ? -1 : Number.parseInt(text.slice(at + SEQ_TEXT.length, at + SEQ_TEXT.length + 20), 10));
  }

  const joined = new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error('no join ack in time')), SETUP_TIMEOUT_MS).unref();
    ws.on('error', reject);
    ws.on('close', () => { if (!closing) { reject(new Error('connection closed during setup')); onClose(); } });
    ws.on('message', (data) => {
      // Hot path first: a `message` event.
      if (data.length > p.message.length && p.message.compare(data, 0, p.message.length) === 0) {
        const seq = integerAfter(data, SEQ, p.message.length);
        const parsed = textAfter(data, p.message.length);
        if (parsed) onMessage(seq, ...parsed);
        return;
      }
      if (data.length > p.updated.length && p.updated.compare(data, 0, p.updated.length) === 0) {
        const parsed = textAfter(data, p.updated.length);
        if (parsed && onUpdate) onUpdate(...parsed);
        return;
      }
      const text = data.toString();
      if (text.startsWith(p.ack)) {
        if (!text.startsWith(`${p.ack}${JOIN_ACK_ID}[`)) return onAck(text);
        const [ack] = JSON.parse(text.slice(`${p.ack}${JOIN_ACK_ID}`.length));
        if (ack && ack.ok === true) resolve(ack);
        else reject(new Error(`join refused: ${JSON.stringify(ack)}`));
      } else if (text === '2') ws.send('3'); // ping from the server
      else if (text.startsWith('0')) ws.send(p.connect + (auth ? JSON.stringify(auth) : ''));
      else if (text.startsWith(p.connectError)) reject(new Error(`connect refused: ${text.slice(p.connectError.length)}`));
      else if (text.startsWith(p.connect)) {
        ws.send(`${p.event}${JOIN_ACK_ID}${JSON.stringify(['join', since ? { room, since } : { room }])}`);
      }
      // anything else (presence, typing) is not measured
    });
  });

  const send = (payload, ackTimeoutMs, done, event = 'message') => {
    const id = nextId++;
    pending.set(id, { deadline: Date.now() + ackTimeoutMs, done });
    waiting.add(client);
    ws.send(`${p.event}${id}${JSON.stringify([event, payload])}`);
  };
  const close = () => { closing = true; ws.close(); };
  return joined.then((ack) => ({ joined: ack, send, close }), (error) => { close(); throw error; });
}

module.exports = { open };
