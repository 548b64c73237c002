// The reconnecting chat client: one Socket.IO connection to /chat, any number
// of rooms, recovery after every reconnect, and an outbox per room. It touches
// no DOM, so a web page, a Node.js bot or a test can use it alike; it follows
// the recovery rules of docs/protocol.md and is documented in docs/client.md.
//
//   const client = new ChatClient({ io, session, renewSession });
//   const lobby = client.room("lobby");
//   lobby.on("messages", ({ messages }) => ...);
//   client.connect();
//   lobby.send("hello");

import { Outbox } from "./client/outbox.js";
import { RoomLog } from "./client/room-log.js";

const ACK_TIMEOUT_MS = 10000;
const JOIN_RETRY_MS = 3000;
const HISTORY_PAGE = 50;
const MAX_HISTORY_LIMIT = 100; // the contract's largest `history` page

/** A minimal event emitter: `on` returns a function that removes the handler. */
export class Emitter {
  #handlers = new Map();

  on(event, handler) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(handler);
    return () => this.#handlers.get(event).delete(handler);
  }

  emit(event, detail) {
    for (const handler of [...(this.#handlers.get(event) || [])]) handler(detail);
  }
}

/** `POST /api/session`: resolves to `{token, user}`; rejects with an Error whose `code` is the server's. */
export async function createSession(name, { baseUrl = "", fetch = globalThis.fetch } = {}) {
  const response = await fetch(`${baseUrl}/api/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ name }),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 200 && data && data.token) return data;
  const error = new Error(data && data.error ? data.error.message : `The server answered ${response.status}.`);
  error.code = data && data.error ? data.error.code : "internal";
  throw error;
}

/**
 * One connection to the `/chat` namespace.
 *
 * Events: "status" ("connecting" | "online" | "reconnecting" | "offline"),
 * "session" (a renewed `{token, user}`), "error" (an Error the client cannot
 * recover from by itself, such as a refused token with no `renewSession`).
 */
export class ChatClient extends Emitter {
  /**
   * @param {object} options
   * @param {Function} options.io  socket.io-client's `io` (the browser global, or the npm import)
   * @param {{token: string, user: {id: string, name: string}}} options.session
   * @param {() => Promise<{token, user}>} [options.renewSession]  called when the server refuses the token
   * @param {string} [options.url]  the namespace URL, "/chat" on the page's own server
   * @param {object} [options.socketOptions]  more options for `io()`, such as `transports`
   * @param {number} [options.ackTimeoutMs]
   */
  constructor({ io, session, renewSession = null, url = "/chat", socketOptions = {}, ackTimeoutMs = ACK_TIMEOUT_MS }) {
    super();
    this.io = io;
    this.session = session;
    this.renewSession = renewSession;
    this.url = url;
    this.socketOptions = socketOptions;
    this.ackTimeoutMs = ackTimeoutMs;
    this.rooms = new Map(); // room id -> Room
    this.status = "connecting";
    this.connection = 0; // counts connects and disconnects, so late acks of an old connection are ignored
    this.socket = null;
  }

  /** The signed-in user, `{id, name}`. */
  get user() {
    return this.session.user;
  }

  /** Open the connection; the client reconnects by itself from then on, until `close()`. */
  connect() {
    if (this.socket) return this;
    // `auth` as a function is read at every (re)connect, so a renewed token is used.
    this.socket = this.io(this.url, {
      ...this.socketOptions,
      auth: (callback) => callback({ token: this.session.token }),
    });
    this.socket.on("connect", () => this.#connected());
    this.socket.on("disconnect", () => this.#disconnected());
    this.socket.on("connect_error", (error) => this.#connectError(error));
    this.socket.on("message", (message) => this.#route(message, (room) => room.receive(message)));
    this.socket.on("presence", (event) => this.#route(event, (room) => room.presence(event)));
    this.socket.on("typing", (event) => this.#route(event, (room) => room.typingEvent(event)));
    return this;
  }

  /** Close for good: no more reconnects. */
  close() {
    if (this.socket) this.socket.disconnect();
    this.#setStatus("offline");
  }

  /** Try to reconnect now rather than at the next backoff step (say, when the network is back). */
  reconnectNow() {
    if (!this.socket || this.socket.connected) return;
    this.socket.disconnect();
    this.socket.connect();
    this.#setStatus("reconnecting");
  }

  /** The room `id`, joined now if connected and again after every reconnect. */
  room(id, { invite = null } = {}) {
    if (!this.rooms.has(id)) {
      const room = new Room(this, id, invite);
      this.rooms.set(id, room);
      if (this.socket && this.socket.connected) room.join();
    }
    return this.rooms.get(id);
  }

  /** Emit `event` with an ack and a timeout; resolves to `[error or null, ack]`. Never buffers offline. */
  request(event, payload) {
    return new Promise((resolve) => {
      if (!this.socket || !this.socket.connected) {
        resolve([new Error("not connected"), null]);
        return;
      }
      this.socket.timeout(this.ackTimeoutMs).emit(event, payload, (err, ack) => {
        if (err) resolve([err, null]);
        else if (!ack || typeof ack !== "object") resolve([new Error("malformed ack"), null]);
        else resolve([null, ack]);
      });
    });
  }

  /** Whether `connection` (a value of this.connection) is still the live one. */
  isCurrent(connection) {
    return connection === this.connection && Boolean(this.socket && this.socket.connected);
  }

  #connected() {
    this.connection += 1;
    this.#setStatus("online");
    for (const room of this.rooms.values()) room.join();
  }

  #disconnected() {
    this.connection += 1;
    for (const room of this.rooms.values()) room.disconnected();
    this.#setStatus(this.socket.active ? "reconnecting" : "offline");
  }

  async #connectError(error) {
    if (!(error && error.data && error.data.code === "unauthorized")) {
      this.#setStatus(this.socket.active ? "reconnecting" : "offline");
      return;
    }
    // The token expired or the server's key changed; the official client does not retry this.
    this.#setStatus("offline");
    if (!this.renewSession) {
      this.emit("error", Object.assign(new Error("The server refused the token."), { code: "unauthorized" }));
      return;
    }
    this.session = await this.renewSession();
    this.emit("session", this.session);
    this.#setStatus("connecting");
    this.socket.connect();
  }

  #route(payload, handle) {
    const room = payload && typeof payload === "object" ? this.rooms.get(payload.room) : null;
    if (room) handle(room);
  }

  #setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.emit("status", status);
  }
}

/**
 * One room's state: its epoch, the messages held (by seq), members, and the outbox.
 *
 * Events:
 * - "reset" `{messages}`: everything held was replaced (first join, new epoch, or too far behind);
 * - "messages" `{messages, reason}`: new messages, oldest first; reason is "live", "recovered", "gap" or "older";
 * - "joined" `{recovered, members}` after each successful join; "join-error" `{error, retrying}`;
 * - "members" `{members}`, "presence" `{user, status}`, "typing" `{user, typing}` (never about oneself);
 * - "outbox" `{entry}` when a message being sent changes state; "stored" `{entry, message}` once stored.
 */
export class Room extends Emitter {
  constructor(client, id, invite) {
    super();
    this.client = client;
    this.id = id;
    this.invite = invite; // needed until we are a member; a member re-joins without it
    this.epoch = null;
    this.joined = false;
    this.hasOlder = false; // older messages than the lowest held remain on the server
    this.log = new RoomLog();
    this.members = new Map(); // user id -> user
    this.liveDuringJoin = null; // message events that arrive between join and its ack
    this.loadingOlder = null;
    this.outbox = new Outbox({
      send: (entry) => client.request("message", { room: id, text: entry.text, client_id: entry.clientId }),
      onChange: (entry) => this.emit("outbox", { entry }),
      onStored: (entry, message) => {
        this.add([message], "live");
        this.emit("stored", { entry, message });
      },
    });
  }

  /** Messages held, oldest first. */
  get messages() {
    return this.log.messages;
  }

  /** Write a message: it is kept in the outbox until the server stored it; returns the outbox entry. */
  send(text) {
    return this.outbox.add(text);
  }

  /** Tell the room whether we are typing (only while joined). */
  typing(typing) {
    if (this.joined) this.client.request("typing", { room: this.id, typing });
  }

  /** Fetch the page of history before the lowest seq held; resolves to the messages added. */
  loadOlder(limit = HISTORY_PAGE) {
    if (!this.loadingOlder) {
      this.loadingOlder = this.#fetchOlder(limit).finally(() => {
        this.loadingOlder = null;
      });
    }
    return this.loadingOlder;
  }

  async join() {
    const connection = this.client.connection;
    const payload = { room: this.id };
    if (this.invite) payload.invite = this.invite;
    // Ask only for what we missed, if our seq numbers still mean something.
    if (this.epoch !== null) payload.since = { seq: this.log.highest || 0, epoch: this.epoch };
    this.liveDuringJoin = [];
    const [err, ack] = await this.client.request("join", payload);
    if (!this.client.isCurrent(connection)) return; // superseded by a reconnect
    const live = this.liveDuringJoin;
    this.liveDuringJoin = null;
    if (err) return this.#rejoinLater(connection, JOIN_RETRY_MS); // no answer: try again while it lasts
    if (!ack.ok) return this.#refused(ack.error || { code: "internal" }, connection);
    this.#joined(ack, live);
  }

  /** The connection dropped: nothing is sent until the next join. */
  disconnected() {
    this.joined = false;
    this.liveDuringJoin = null;
    this.outbox.setReady(false);
  }

  /** A live `message` event for this room. */
  receive(message) {
    if (this.liveDuringJoin) {
      this.liveDuringJoin.push(message); // applied after the join ack
      return;
    }
    const highest = this.log.highest;
    this.add([message], "live");
    // A seq jump means messages are missing (say, lost between instances): fetch exactly those.
    if (this.joined && highest !== null && message.seq > highest + 1) this.#fillGap(highest, message.seq);
    if (message.user && message.user.id === this.client.user.id) this.outbox.confirm(message);
  }

  presence(event) {
    if (!event.user) return;
    if (event.status === "joined") this.members.set(event.user.id, event.user);
    else if (event.status === "left") this.members.delete(event.user.id);
    this.emit("presence", { user: event.user, status: event.status });
    this.emit("members", { members: [...this.members.values()] });
  }

  typingEvent(event) {
    if (!event.user || event.user.id === this.client.user.id) return;
    this.emit("typing", { user: event.user, typing: Boolean(event.typing) });
  }

  /** Keep the messages with a new seq and announce them; returns those. */
  add(messages, reason) {
    const added = this.log.add(messages);
    if (added.length) this.emit("messages", { messages: added, reason });
    return added;
  }

  #joined(ack, live) {
    if (ack.recovered && ack.epoch === this.epoch) {
      this.add(ack.messages, "recovered");
      this.add(live, "live");
    } else {
      // History was lost (a new epoch) or we fell too far behind: start over from the
      // latest, keeping live messages that arrived before the ack (they are newer).
      this.log.clear();
      this.log.add([...ack.messages, ...live]);
      this.hasOlder = this.log.lowest !== null && this.log.lowest > 1;
      this.emit("reset", { messages: this.log.messages });
    }
    this.epoch = ack.epoch;
    this.joined = true;
    this.invite = null;
    this.members = new Map((ack.members || []).map((user) => [user.id, user]));
    this.emit("joined", { recovered: Boolean(ack.recovered), members: [...this.members.values()] });
    this.emit("members", { members: [...this.members.values()] });
    // A message of ours stored before the connection dropped comes back here: it is sent.
    for (const message of [...ack.messages, ...live]) {
      if (message.user && message.user.id === this.client.user.id) this.outbox.confirm(message);
    }
    this.outbox.setReady(true);
  }

  #refused(error, connection) {
    const retrying = error.code === "internal" || error.code === "rate_limited";
    this.emit("join-error", { error, retrying });
    if (retrying) {
      const delay = error.code === "rate_limited" ? (Number(error.retry_after) || 1) * 1000 : JOIN_RETRY_MS;
      this.#rejoinLater(connection, delay);
    }
  }

  #rejoinLater(connection, delay) {
    setTimeout(() => this.client.isCurrent(connection) && this.join(), delay);
  }

  async #fillGap(after, before) {
    while (before - after > 1) {
      const limit = Math.min(MAX_HISTORY_LIMIT, before - after - 1);
      const [err, ack] = await this.client.request("history", { room: this.id, before_seq: before, limit });
      if (err || !ack.ok || !ack.messages.length) return;
      this.add(ack.messages, "gap");
      before = ack.messages[0].seq;
    }
  }

  async #fetchOlder(limit) {
    const lowest = this.log.lowest;
    if (lowest === null || lowest <= 1) {
      this.hasOlder = false;
      return [];
    }
    const [err, ack] = await this.client.request("history", { room: this.id, before_seq: lowest, limit });
    if (err) throw err;
    if (!ack.ok) throw Object.assign(new Error(ack.error.message || "history refused"), { code: ack.error.code });
    this.hasOlder = Boolean(ack.has_more);
    return this.add(ack.messages, "older");
  }
}
