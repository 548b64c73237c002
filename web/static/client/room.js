// One room of the reconnecting client: its epoch, the messages held, the
// members, the outbox, and the recovery rules of docs/protocol.md
// ("Reconnecting and recovery"). ChatClient creates rooms; pages use them.

import { Emitter } from "./emitter.js";
import { Outbox } from "./outbox.js";
import { RoomLog } from "./room-log.js";

const JOIN_RETRY_MS = 3000;
const HISTORY_PAGE = 50;
const MAX_HISTORY_LIMIT = 100; // the contract's largest `history` page

/**
 * One room's state: its epoch, the messages held (by seq), members, and the outbox.
 *
 * Events:
 * - "reset" `{messages}`: everything held was replaced (first join, new epoch, or too far behind);
 * - "messages" `{messages, reason}`: new messages, oldest first; reason is "live", "recovered", "gap" or "older";
 * - "joined" `{recovered, members}` after each successful join; "join-error" `{error, retrying}`;
 * - "members" `{members}`, "presence" `{user, status}`, "typing" `{user, typing}` (never about oneself);
 * - "moderation" (the server's announcement), "removed" `{reason}` (we lost the room; it is left);
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
    this.members = new Map(); // user id -> user, with `role` where the user has one in the room
    this.role = null; // ours here, from the last join ack
    this.roles = new Map(); // user id -> role, from the last join ack, for users who join later
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

  /** Leave the room: the client stops joining it after reconnects, and drops its outbox. */
  async leave() {
    this.client.rooms.delete(this.id);
    this.disconnected();
    for (const clientId of [...this.outbox.entries.keys()]) this.outbox.remove(clientId);
    const [err, ack] = await this.client.request("leave", { room: this.id });
    return !err && ack.ok;
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
    if (event.status === "joined") this.members.set(event.user.id, this.#withRole(event.user));
    else if (event.status === "left") this.members.delete(event.user.id);
    this.emit("presence", { user: event.user, status: event.status });
    this.emit("members", { members: [...this.members.values()] });
  }

  /** A `moderation` announcement for this room. */
  moderationEvent(event) {
    this.emit("moderation", event);
  }

  /**
   * We lost this room (`removed`: removed by the app, kicked or banned): the server has taken
   * this connection out. Stop re-joining it, drop what waits to be sent, and say why.
   */
  removed(event) {
    this.client.rooms.delete(this.id);
    this.disconnected();
    for (const clientId of [...this.outbox.entries.keys()]) this.outbox.remove(clientId);
    this.members.clear();
    this.emit("removed", { reason: event.reason });
  }

  /** `kick`, `ban`, `unban`, `mute` or `unmute` the user `userId` here; resolves to `[error or null, ack]`. */
  moderate(action, userId, extra = {}) {
    return this.client.request(action, { room: this.id, user_id: userId, ...extra });
  }

  typingEvent(event) {
    if (!event.user || event.user.id === this.client.user.id) return;
    this.emit("typing", { user: event.user, typing: Boolean(event.typing) });
  }

  #withRole(user) {
    const role = this.roles.get(user.id);
    return role ? { ...user, role } : user;
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
      this.#fillGapsAbove(ack.seq, live);
    } else {
      // History was lost (a new epoch) or we fell too far behind: start over from the
      // latest, keeping live messages that arrived before the ack (they are newer).
      this.log.clear();
      this.log.add([...ack.messages, ...live]);
      this.hasOlder = this.log.lowest !== null && this.log.lowest > 1;
      this.emit("reset", { messages: this.log.messages });
      this.#fillGapsAbove(ack.seq, live);
    }
    this.epoch = ack.epoch;
    this.joined = true;
    this.invite = null;
    this.role = ack.role ?? null;
    this.roles = new Map((ack.members || []).filter((user) => user.role).map((user) => [user.id, user.role]));
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

  /** Live messages that came during a join may skip some seq numbers past the ack's latest. */
  #fillGapsAbove(latest, live) {
    let highest = latest;
    for (const message of [...live].sort((a, b) => a.seq - b.seq)) {
      if (message.seq > highest + 1) this.#fillGap(highest, message.seq);
      highest = Math.max(highest, message.seq);
    }
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
