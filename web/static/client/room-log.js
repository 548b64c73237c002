// The messages held for one room: ordered by `seq`, each kept once however
// many times it arrives (join ack, live event, history page, send ack).

export class RoomLog {
  constructor() {
    this.bySeq = new Map(); // seq -> message
    this.seqs = []; // ascending
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

  /** Keep the messages whose seq is new; returns those, oldest first. */
  add(messages) {
    const added = [];
    for (const message of messages) {
      if (!message || !Number.isInteger(message.seq) || this.bySeq.has(message.seq)) continue;
      this.bySeq.set(message.seq, message);
      this.seqs.splice(insertionIndex(this.seqs, message.seq), 0, message.seq);
      added.push(message);
    }
    return added.sort((a, b) => a.seq - b.seq);
  }

  clear() {
    this.bySeq.clear();
    this.seqs = [];
  }
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
