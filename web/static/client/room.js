// One room of the reconnecting client: its epoch, the messages held, the
// members, the outbox, and the recovery rules of docs/protocol.md
// ("Reconnecting and recovery"). ChatClient creates rooms; pages use them.

import { Emitter } from "./emitter.js";
import { Outbox } from "./outbox.js";
import { ReadMark } from "./read-mark.js";
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
 * - "updated" `{messages, reason}`: held messages now in a newer state (higher `rev`: edited, deleted,
 *   reacted to), oldest first; reason is "live" (`message_updated`, or the ack of one's own change),
 *   "recovered" (the join ack's `updated`), or "gap" / "older" (a history page brought a newer copy);
 * - "read" `{lastRead, unread}` when either changed;
 * - "read_receipt" `{user, last_read}`: in a private room, how far `user` has read (oneself included);
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
    this.rev = null; // the room's rev we have every event up to (null until a join ack gives one)
    this.joined = false;
    this.hasOlder = false; // older messages than the lowest held remain on the server
    this.log = new RoomLog();
    this.members = new Map(); // user id -> user, with `role` where the user has one in the room
    this.role = null; // ours here, from the last join ack
    this.roles = new Map(); // user id -> role, from the last join ack, for users who join later
    this.liveDuringJoin = null; // [{message, change}]: `message` and `message_updated` between join and its ack
    this.loadingOlder = null;
    this.readMark = new ReadMark(this.log, () => client.user.id);
    this.receipts = new Map(); // user id -> last_read, in a private room
    this.viewing = false; // the page shows the latest messages: mark them read
    this.reading = null; // the connection (a value of client.connection) whose `read` is under way
    this.outbox = new Outbox({
      send: ({ text, clientId, replyTo }) => client.request("message",
        { room: id, text, client_id: clientId, ...(replyTo != null && { reply_to: replyTo }) }),
      onChange: (entry) => this.emit("outbox", { entry }),
      onStored: (entry, message) => {
        this.add([message], "live");
        // Sending marks the room read up to one's message; the server tells our other connections.
        if (this.joined) this.#readChanged(this.readMark.move(message.seq));
        this.emit("stored", { entry, message });
      },
    });
  }

  /** Messages held, oldest first. */
  get messages() {
    return this.log.messages;
  }

  /** How far we have read (from the join ack and `read`; null until joined). */
  get lastRead() {
    return this.readMark.lastRead;
  }

  /** Messages from others, not deleted, after lastRead (up to 100). */
  get unread() {
    return this.readMark.unread;
  }

  /**
   * Write a message, a reply to message `replyTo` (a seq) if given: it is kept in the outbox
   * until the server stored it; returns the outbox entry.
   */
  send(text, { replyTo = null } = {}) {
    return this.outbox.add(text, undefined, replyTo);
  }

  /** Change the text of one's message `seq`; resolves to `[error or null, ack]`, the change held on `ok`. */
  edit(seq, text) {
    return this.#change("edit", { seq, text });
  }

  /** Delete message `seq` (sends `delete`); resolves to `[error or null, ack]`, as `edit`. */
  remove(seq) {
    return this.#change("delete", { seq });
  }

  /** Give (`on`) or take back `emoji` on message `seq`; resolves to `[error or null, ack]`, as `edit`. */
  react(seq, emoji, on = true) {
    return this.#change("react", { seq, emoji, on: Boolean(on) });
  }

  /**
   * Whether the page shows this room's latest messages (visible, scrolled to the bottom). While
   * it does, the room marks its highest seq held as read whenever that is past `lastRead`.
   */
  setViewing(viewing) {
    this.viewing = Boolean(viewing);
    this.#markRead();
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
    // Ask only for what we missed, if our seq numbers still mean something; with `rev`, for the changes too.
    if (this.epoch !== null) {
      payload.since = { seq: this.log.highest || 0, epoch: this.epoch, ...(this.rev !== null && { rev: this.rev }) };
    }
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
      this.liveDuringJoin.push({ message, change: false }); // applied after the join ack
      return;
    }
    this.#follow(message);
    const highest = this.log.highest;
    this.add([message], "live");
    // A seq jump means messages are missing (say, lost between instances): fetch exactly those.
    if (this.joined && highest !== null && message.seq > highest + 1) this.#fillGap(highest, message.seq);
    if (message.user && message.user.id === this.client.user.id) this.outbox.confirm(message);
  }

  /** A live `message_updated` event: the whole message in its new state. */
  receiveChange(message) {
    if (this.liveDuringJoin) {
      this.liveDuringJoin.push({ message, change: true });
      return;
    }
    this.#follow(message);
    this.add([message], "live", { onlyHeld: true });
  }

  /** Our read mark moved (a `read` event, from any of our connections). */
  readEvent(event) {
    this.#readChanged(this.readMark.move(event.last_read));
  }

  /** A `read_receipt` in a private room: kept on the member as `last_read`. */
  readReceiptEvent(event) {
    if (!event.user || !Number.isInteger(event.last_read)) return;
    this.#receipt(event.user.id, event.last_read);
    const member = this.members.get(event.user.id);
    if (member) this.members.set(member.id, this.#known(member));
    this.emit("read_receipt", { user: event.user, last_read: event.last_read });
  }

  presence(event) {
    if (!event.user) return;
    if (event.status === "joined") this.members.set(event.user.id, this.#known(event.user));
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

  /** Remember how far a member has read (forward only). */
  #receipt(userId, lastRead) {
    if (Number.isInteger(lastRead)) this.receipts.set(userId, Math.max(lastRead, this.receipts.get(userId) ?? 0));
  }

  #readChanged(changed) {
    if (changed) this.emit("read", { lastRead: this.lastRead, unread: this.unread });
  }

  /** `user` with what the room knows of them: their role here, and how far they read (private rooms). */
  #known(user) {
    const role = this.roles.get(user.id);
    const lastRead = this.receipts.get(user.id);
    return { ...user, ...(role && { role }), ...(lastRead !== undefined && { last_read: lastRead }) };
  }

  /**
   * Keep the messages with a new seq (unless `onlyHeld`) and newer copies of those held, and
   * announce them ("messages", "updated"); returns the new ones.
   */
  add(messages, reason, { onlyHeld = false } = {}) {
    const { added, updated } = this.log.merge(messages, { onlyHeld });
    if (added.length) {
      this.emit("messages", { messages: added, reason });
      if (this.joined) this.#readChanged(this.readMark.added(added)); // a join counts its own at the end
      this.#markRead();
    }
    if (updated.length) {
      this.emit("updated", { messages: updated, reason });
      if (this.joined) this.#readChanged(this.readMark.changed());
    }
    return added;
  }

  /** A live event is the room's next (`rev` one more than ours): we now have everything up to it. */
  #follow(message) {
    if (this.rev !== null && message && message.rev === this.rev + 1) this.rev = message.rev;
  }

  /** Send an `edit`, `delete` or `react`; an `ok` ack's message is held at once, before its broadcast. */
  async #change(event, payload) {
    const connection = this.client.connection;
    const result = await this.client.request(event, { room: this.id, ...payload });
    const [err, ack] = result;
    // After a reconnect the recovery brings the change (and seqs may mean something else).
    if (!err && ack.ok && this.client.isCurrent(connection)) this.add([ack.message], "live", { onlyHeld: true });
    return result;
  }

  #joined(ack, live) {
    const newEpoch = this.epoch !== null && ack.epoch !== this.epoch;
    const messages = live.filter((event) => !event.change).map((event) => event.message);
    const changes = live.filter((event) => event.change).map((event) => event.message);
    // The ack is the room at its `rev`; live events buffered meanwhile go on from there, in order.
    // (Those at or below it are in the ack already, and a copy whose `rev` is not higher changes nothing.)
    this.rev = Number.isInteger(ack.rev) ? ack.rev : null;
    for (const event of live) this.#follow(event.message);
    const ours = newEpoch ? null : this.readMark.lastRead;
    if (ack.recovered && !newEpoch) {
      this.add(ack.messages, "recovered");
      this.add(ack.updated || [], "recovered", { onlyHeld: true }); // older messages changed meanwhile
      this.add(messages, "live");
      this.add(changes, "live", { onlyHeld: true });
    } else {
      // History was lost (a new epoch) or we fell too far behind: start over from the
      // latest, keeping live events that arrived before the ack (they may be newer).
      this.log.clear();
      this.log.merge([...ack.messages, ...messages]);
      this.log.merge(changes, { onlyHeld: true });
      this.hasOlder = this.log.lowest !== null && this.log.lowest > 1;
      this.emit("reset", { messages: this.log.messages });
    }
    this.#fillGapsAbove(ack.seq, messages);
    this.epoch = ack.epoch;
    this.joined = true;
    this.invite = null;
    this.role = ack.role ?? null;
    this.roles = new Map((ack.members || []).filter((user) => user.role).map((user) => [user.id, user.role]));
    if (newEpoch) this.receipts.clear();
    for (const user of ack.members || []) this.#receipt(user.id, user.last_read);
    this.members = new Map((ack.members || []).map((user) => [user.id, this.#known(user)]));
    this.emit("joined", { recovered: Boolean(ack.recovered), members: [...this.members.values()] });
    this.emit("members", { members: [...this.members.values()] });
    // A message of ours stored before the connection dropped comes back here: it is sent.
    for (const message of [...ack.messages, ...messages]) {
      if (message.user && message.user.id === this.client.user.id) this.outbox.confirm(message);
    }
    this.outbox.setReady(true);
    this.#readChanged(this.readMark.joined(ack, ours));
    this.#markRead();
  }

  /** While viewing, mark the highest seq held read: one `read` request at a time per connection. */
  async #markRead() {
    const seq = this.log.highest;
    const connection = this.client.connection;
    if (!this.viewing || !this.joined || this.reading === connection) return;
    if (this.lastRead === null || seq === null || seq <= this.lastRead) return;
    this.reading = connection;
    const [err, ack] = await this.client.request("read", { room: this.id, seq });
    if (!err && ack.ok) this.readEvent(ack);
    const limited = !err && !ack.ok && ack.error && ack.error.code === "rate_limited";
    if (limited) await sleep(Math.max(1, Number(ack.error.retry_after) || 1) * 1000);
    if (this.reading !== connection) return;
    this.reading = null;
    // More may have come meanwhile; a lost or refused mark waits for the next message, join or setViewing.
    if (limited || (!err && ack.ok && this.log.highest > seq)) this.#markRead();
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

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
