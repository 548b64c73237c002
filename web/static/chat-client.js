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

import { Emitter } from "./client/emitter.js";
import { Room } from "./client/room.js";

export { Emitter, Room };

const ACK_TIMEOUT_MS = 10000;
// After a refusal that is not about the token (`internal`: the server's storage is away), and
// between renewals of a token the server keeps refusing: 2 s, doubling up to 30 s, with jitter.
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 30000;

function retryDelay(attempt) {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt) * (0.75 + Math.random() / 2);
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
 * "session" (a renewed `{token, user}`), "room_added" and "removed" (as the server
 * sends them: this user gained or lost a room), "notify" (the `data` the app's backend
 * sent this user), "read" (`{room, last_read}`: this user's read mark moved in `room`, on
 * any of their connections; also for rooms this client does not hold), "disconnected" (`{reason}`: the backend ended this user's
 * session, "revoked" or "disconnected"; the client stays offline), "error" (an
 * Error the client cannot recover from by itself, such as a refused token with
 * no `renewSession`).
 */
export class ChatClient extends Emitter {
  /**
   * @param {object} options
   * @param {Function} options.io  socket.io-client's `io` (the browser global, or the npm import)
   * @param {{token: string, user: {id: string, name: string}}} options.session
   * @param {() => Promise<{token, user}>} [options.renewSession]  called for a new token: before the
   *   connection's token expires (then sent as `refresh`), and when the server refuses or expires it
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
    this.tokenExpired = false; // the server said `token_expired`: its disconnect calls for a new token
    this.refreshing = null; // the refresh under way, if any
    this.closed = false; // by `close()`, or by the app's backend (`disconnected`): no reconnecting
    this.refusals = 0; // connects refused in a row, for the retry delay
    this.retryTimer = null;
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
    this.socket.on("disconnect", (reason) => this.#disconnected(reason));
    this.socket.on("connect_error", (error) => this.#connectError(error));
    this.socket.on("message", (message) => this.#route(message, (room) => room.receive(message)));
    this.socket.on("message_updated", (message) => this.#route(message, (room) => room.receiveChange(message)));
    this.socket.on("read", (event) => {
      this.#route(event, (room) => room.readEvent(event));
      if (event && typeof event === "object") this.emit("read", { room: event.room, last_read: event.last_read });
    });
    this.socket.on("read_receipt", (event) => this.#route(event, (room) => room.readReceiptEvent(event)));
    this.socket.on("presence", (event) => this.#route(event, (room) => room.presence(event)));
    this.socket.on("typing", (event) => this.#route(event, (room) => room.typingEvent(event)));
    this.socket.on("token_expiring", () => this.#refresh());
    this.socket.on("token_expired", () => { this.tokenExpired = true; });
    this.socket.on("notify", (event) => this.emit("notify", event && event.data));
    this.socket.on("moderation", (event) => this.#route(event, (room) => room.moderationEvent(event)));
    this.socket.on("room_added", (event) => this.emit("room_added", event));
    this.socket.on("removed", (event) => {
      this.#route(event, (room) => room.removed(event));
      this.emit("removed", event);
    });
    this.socket.on("disconnected", (event) => this.#ended(event && event.reason));
    return this;
  }

  /** Close for good: no more reconnects. */
  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
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
    this.tokenExpired = false;
    this.refusals = 0;
    this.#setStatus("online");
    for (const room of this.rooms.values()) room.join();
  }

  #disconnected(reason) {
    this.connection += 1;
    for (const room of this.rooms.values()) room.disconnected();
    this.#setStatus(this.socket.active ? "reconnecting" : "offline");
    if (this.tokenExpired && reason === "io server disconnect") {
      this.tokenExpired = false;
      this.#renewAndReconnect();
    }
  }

  #connectError(error) {
    const code = error && error.data && error.data.code;
    if (code === "unauthorized") {
      // The token expired, was revoked, or the server's key changed; the official client does not retry this.
      this.#setStatus("offline");
      if (this.refusals > 0) {
        this.#retry(() => this.#renewAndReconnect()); // a renewed token refused again: back off
        return;
      }
      this.refusals = 1;
      this.#renewAndReconnect();
      return;
    }
    this.#setStatus(this.socket.active ? "reconnecting" : "offline");
    // refused for a passing reason (`internal`): the official client does not retry that either
    if (code && !this.socket.active) this.#retry(() => this.socket.connect());
  }

  /** The app's backend ended this user's session: stay offline, whatever the transport does. */
  #ended(reason) {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket.disconnect();
    this.#setStatus("offline");
    this.emit("disconnected", { reason });
  }

  /** Run `attempt` after the retry delay, unless the client was closed meanwhile. */
  #retry(attempt) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.closed && !this.socket.connected) attempt();
    }, retryDelay(this.refusals));
    this.refusals += 1;
  }

  /** A new token from `renewSession`, then connect with it. */
  async #renewAndReconnect() {
    if (this.closed) return;
    if (!this.renewSession) {
      this.emit("error", Object.assign(new Error("The server refused the token."), { code: "unauthorized" }));
      return;
    }
    try {
      this.session = await this.renewSession();
    } catch (renewError) {
      this.emit("error", renewError);
      return;
    }
    this.emit("session", this.session);
    this.#setStatus("connecting");
    this.socket.connect();
  }

  /** The token is about to expire: send a new one for the same user, keeping the connection. */
  async #refresh() {
    if (!this.renewSession || this.refreshing) return;
    this.refreshing = (async () => {
      try {
        const session = await this.renewSession();
        if (!session || !session.user || session.user.id !== this.user.id) return; // another user: reconnect at expiry
        const [error, ack] = await this.request("refresh", { token: session.token });
        if (!error && ack.ok) {
          this.session = session;
          this.emit("session", session);
        }
      } catch (renewError) {
        this.emit("error", renewError);
      } finally {
        this.refreshing = null;
      }
    })();
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
