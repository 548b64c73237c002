// A receive-mostly Socket.IO v4 client over one WebSocket, for the benchmark's subscribers.
//
// Why not socket.io-client for them: on a 2-core machine the generator shares the CPU with the
// server, and the official client spends most of its time per received event in emitter hops and
// JSON.parse. This client speaks just enough Engine.IO v4 / Socket.IO v5 (open, connect to a
// namespace, one `join` with its ack, ping/pong) and reads the send time out of `message` frames
// with a byte search, so one event costs a few microseconds. Publishers and idle connections
// still use socket.io-client.
'use strict';

const WebSocket = require('ws');

const JOIN_ACK_ID = 1;
const SETUP_TIMEOUT_MS = 10000;

// Frame prefixes of a namespace: Engine.IO type 4 (message) + Socket.IO type + "/nsp," unless "/".
function prefixes(namespace) {
  const nsp = namespace === '/' ? '' : `${namespace},`;
  return {
    connect: `40${nsp}`,
    connectError: `44${nsp}`,
    ack: `43${nsp}${JOIN_ACK_ID}`,
    join: `42${nsp}${JOIN_ACK_ID}`,
    message: Buffer.from(`42${nsp}["message",`),
  };
}

/**
 * Connects, enters `namespace` with `auth`, joins `room`; resolves once the join is acknowledged.
 * `needle` is the bytes just before the send time in a `message` frame (e.g. `"sent_at":`);
 * `onSentAt(ms)` is called for each such frame, `onClose()` if the connection drops.
 */
function subscribe({ url, namespace, auth, room, deflate, needle, onSentAt, onClose }) {
  const wsUrl = `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  const ws = new WebSocket(wsUrl, { perMessageDeflate: deflate, skipUTF8Validation: true });
  const p = prefixes(namespace);
  const needleBytes = Buffer.from(needle);
  let closing = false;

  const joined = new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error('no join ack in time')), SETUP_TIMEOUT_MS).unref();
    ws.on('error', reject);
    ws.on('close', () => { if (!closing) { reject(new Error('connection closed during setup')); onClose(); } });
    ws.on('message', (data) => {
      // Hot path first: a `message` event.
      if (data.length > p.message.length && p.message.compare(data, 0, p.message.length) === 0) {
        const at = data.indexOf(needleBytes, p.message.length);
        if (at >= 0) onSentAt(parseFloat(data.toString('latin1', at + needleBytes.length, at + needleBytes.length + 32)));
        return;
      }
      const text = data.toString();
      if (text === '2') ws.send('3'); // ping from the server
      else if (text.startsWith('0')) ws.send(p.connect + (auth ? JSON.stringify(auth) : ''));
      else if (text.startsWith(p.connectError)) reject(new Error(`connect refused: ${text.slice(p.connectError.length)}`));
      else if (text.startsWith(p.connect)) ws.send(`${p.join}${JSON.stringify(['join', { room }])}`);
      else if (text.startsWith(p.ack)) {
        const [ack] = JSON.parse(text.slice(p.ack.length));
        if (ack && ack.ok === true) resolve();
        else reject(new Error(`join refused: ${JSON.stringify(ack)}`));
      }
      // anything else (presence, typing) is not measured
    });
  });

  const close = () => { closing = true; ws.close(); };
  return joined.then(() => ({ close }), (error) => { close(); throw error; });
}

module.exports = { subscribe };
