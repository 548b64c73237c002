// The messages held for one room: ordered by `seq`, each kept once however
// many times it arrives (join ack, live event, history page, send ack), and
// always in the newest state seen: a copy with a higher `rev` replaces the
// one held; one with a lower or equal `rev` changes nothing.

// Newer copies of messages not held, kept aside for when they arrive (see `merge`).
// A room's history holds HISTORY_SIZE messages (1000 by default), so this covers it.
const ASIDE_MAX = 1000;

export class RoomLog {
  constructor() {
    this.bySeq = new Map(); // seq -> message
    this.seqs = []; // ascending
    this.aside = new Map(); // seq -> the newest change seen to a message not held
  }

  /** The lowest seq held, or null. */
  get lowest() {
    return this.seqs.length ? this.seqs[0] : null;
  }

  /** The highest seq held, or null. */
  get highest() {
    return this.seqs.length ? this.seqs[this.seqs.length - 1] : null;
  }

  /** Every message held, oldest first. */
  get messages() {
    return this.seqs.map((seq) => this.bySeq.get(seq));
  }

  /** The message `seq`, if held. */
  get(seq) {
    return this.bySeq.get(seq);
  }

  /**
   * Keep messages whose seq is new, and copies of held ones with a higher `rev`.
   * With `onlyHeld` (changes: `message_updated`, `updated`, change acks) no seq is added: a
   * change to a message not held is kept aside instead, and used when that message arrives
   * in an older state (a history page read before the change, say).
   * Returns `{added, updated}`, each oldest first, each seq at most once.
   */
  merge(messages, { onlyHeld = false } = {}) {
    const added = new Map();
    const updated = new Map();
    for (const incoming of messages) {
      if (!incoming || !Number.isInteger(incoming.seq)) continue;
      const { seq } = incoming;
      const held = this.bySeq.get(seq);
      if (held) {
        if (!isNewer(incoming, held)) continue;
        this.bySeq.set(seq, incoming);
        (added.has(seq) ? added : updated).set(seq, incoming);
      } else if (onlyHeld) {
        this.#keepAside(incoming);
      } else {
        const aside = this.aside.get(seq);
        this.aside.delete(seq);
        const message = aside && isNewer(aside, incoming) ? aside : incoming;
        this.bySeq.set(seq, message);
        this.seqs.splice(insertionIndex(this.seqs, seq), 0, seq);
        added.set(seq, message);
      }
    }
    return { added: bySeqOrder(added), updated: bySeqOrder(updated) };
  }

  clear() {
    this.bySeq.clear();
    this.seqs = [];
    this.aside.clear();
  }

  #keepAside(message) {
    const kept = this.aside.get(message.seq);
    if (kept && !isNewer(message, kept)) return;
    this.aside.delete(message.seq);
    this.aside.set(message.seq, message);
    if (this.aside.size > ASIDE_MAX) this.aside.delete(this.aside.keys().next().value);
  }
}

/** Whether `message` is a later state than `held`: a higher `rev` (a copy without one never is). */
export function isNewer(message, held) {
  return Number.isInteger(message.rev) && !(held.rev >= message.rev);
}

function bySeqOrder(messages) {
  return [...messages.values()].sort((a, b) => a.seq - b.seq);
}

/** First index in the ascending `seqs` whose value is not below `seq`. */
export function insertionIndex(seqs, seq) {
  let low = 0;
  let high = seqs.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (seqs[middle] < seq) low = middle + 1;
    else high = middle;
  }
  return low;
}
