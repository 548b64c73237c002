// How far the user has read one room, and how many messages after that are
// unread, kept from the join ack, the user's `read` events and the messages held.

import { insertionIndex } from "./room-log.js";

const UNREAD_MAX = 100; // the server counts unread messages up to this (shown "99+")

export class ReadMark {
  /**
   * @param {import("./room-log.js").RoomLog} log  the room's messages
   * @param {() => string} userId  the signed-in user: one's own messages are never unread
   */
  constructor(log, userId) {
    this.log = log;
    this.userId = userId;
    this.lastRead = null; // null until a join ack gives it (a server without read state never does)
    this.unread = 0; // messages from others, not deleted, after lastRead, up to 100
    this.countedSeq = 0; // the join ack's seq: its `unread` counted the messages up to there
  }

  /**
   * The ack of a join, once its messages (and the live ones that came meanwhile) are held.
   * `ours` is our mark before it (null after a new epoch): a `read` that came meanwhile may be
   * further on. Returns whether lastRead or unread changed.
   */
  joined(ack, ours) {
    if (!Number.isInteger(ack.last_read)) return false;
    const before = [this.lastRead, this.unread];
    this.countedSeq = ack.seq;
    this.lastRead = ack.last_read;
    // Live messages newer than the ack are held already, and are not in its count.
    const unread = (Number.isInteger(ack.unread) ? ack.unread : 0) + this.#countHeld(Math.max(ack.seq, ack.last_read));
    this.unread = Math.min(UNREAD_MAX, unread);
    if (ours !== null) this.move(ours);
    return this.lastRead !== before[0] || this.unread !== before[1];
  }

  /** Our mark is now `lastRead`, if that is further on; returns whether anything changed. */
  move(lastRead) {
    if (!Number.isInteger(lastRead) || (this.lastRead !== null && lastRead <= this.lastRead)) return false;
    const unread = this.lastRead === null ? this.unread : Math.min(this.unread, this.#recount(lastRead));
    this.lastRead = lastRead;
    this.unread = unread;
    return true;
  }

  /** Messages new to the log (live, or filling a gap): each unread one past the ack's count adds one. */
  added(messages) {
    if (this.lastRead === null) return false;
    const more = messages.filter((message) => message.seq > this.countedSeq && this.#unread(message)).length;
    if (!more) return false;
    this.unread = Math.min(UNREAD_MAX, this.unread + more);
    return true;
  }

  /** Held messages changed: one deleted is no longer unread. Returns whether unread changed. */
  changed() {
    if (this.lastRead === null) return false;
    const unread = Math.min(this.unread, this.#recount(this.lastRead));
    if (unread === this.unread) return false;
    this.unread = unread;
    return true;
  }

  /**
   * Unread after `lastRead` by the messages held: exact when they reach down to lastRead + 1,
   * else an upper bound (every seq between lastRead and the lowest held counts).
   */
  #recount(lastRead) {
    const lowest = this.log.lowest;
    if (lowest === null) return this.unread;
    return Math.min(UNREAD_MAX, Math.max(0, lowest - lastRead - 1) + this.#countHeld(lastRead));
  }

  /** Held messages above `after` that are unread. */
  #countHeld(after) {
    const { seqs } = this.log;
    let count = 0;
    for (let index = insertionIndex(seqs, after + 1); index < seqs.length; index += 1) {
      if (this.#unread(this.log.get(seqs[index]))) count += 1;
    }
    return count;
  }

  #unread(message) {
    return message.seq > this.lastRead && !message.deleted && message.user?.id !== this.userId();
  }
}
