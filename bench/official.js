// The same interface as lean.js (see there) on the official socket.io-client, to check that the
// lean client counts the same (`--client official`).
'use strict';

const { io } = require('socket.io-client');
const { parseText } = require('./text');

const SETUP_TIMEOUT_MS = 10000;

function connect(url, namespace, auth, deflate) {
  return new Promise((resolve, reject) => {
    const socket = io(url + namespace, {
      transports: ['websocket'],
      forceNew: true, // one engine.io connection per socket, not one multiplexed connection
      reconnection: false, // a dropped connection is an error to report, not to hide
      auth: auth || {},
      perMessageDeflate: deflate ? { threshold: 1024 } : false,
    });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => { socket.close(); reject(new Error(`connect refused: ${error.message}`)); });
  });
}

async function open({ url, namespace, auth, room, since, deflate, onMessage, onUpdate, onClose }) {
  const socket = await connect(url, namespace, auth, deflate);
  let closing = false;
  socket.on('disconnect', () => { if (!closing) onClose(); });
  const close = () => { closing = true; socket.close(); };
  let ack;
  try {
    ack = await socket.timeout(SETUP_TIMEOUT_MS).emitWithAck('join', since ? { room, since } : { room });
  } catch (error) {
    close();
    throw new Error(`join failed: ${error.message}`);
  }
  if (!ack || ack.ok !== true) { close(); throw new Error(`join refused: ${JSON.stringify(ack)}`); }
  socket.on('message', (message) => onMessage(message.seq ?? -1, ...parseText(String(message.text))));
  if (onUpdate) socket.on('message_updated', (message) => onUpdate(...parseText(String(message.text))));
  const send = (payload, ackTimeoutMs, done, event = 'message') => {
    socket.timeout(ackTimeoutMs).emit(event, payload, (error, reply) => {
      if (error) done('timeout', error.message);
      else if (!reply || reply.ok !== true) done('nack', JSON.stringify(reply));
      else done(null, reply.message?.seq ?? -1);
    });
  };
  return { joined: ack, send, close };
}

module.exports = { open };
