// The message list of one room: stored messages ordered by `seq`, each shown
// exactly once however many times it arrives (join ack, live event, history
// page, send ack), followed by the user's own messages still waiting for the
// server (class "pending").

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

export class MessageList {
  /**
   * @param {HTMLOListElement} element  the `<ol id="messages">`
   * @param {{user: {id: string}}} identity  read on use: the user may change
   */
  constructor(element, identity) {
    this.element = element;
    this.identity = identity;
    this.bySeq = new Map(); // seq -> <li>
    this.seqs = []; // sorted ascending, for insertion points
    this.pending = new Map(); // client_id -> <li>
  }

  get size() {
    return this.seqs.length;
  }

  get lowestSeq() {
    return this.seqs.length ? this.seqs[0] : null;
  }

  get highestSeq() {
    return this.seqs.length ? this.seqs[this.seqs.length - 1] : null;
  }

  /** Add messages not shown yet, in seq order; returns how many were new. */
  merge(messages) {
    const stick = this.isScrolledToBottom();
    const anchor = this.scrollAnchor();
    const added = this.insertNew(messages);
    if (added) this.restoreScroll(stick, anchor);
    return added;
  }

  /** Show exactly `messages`: the room's history was lost or we fell too far behind. */
  replace(messages) {
    for (const item of this.bySeq.values()) item.remove();
    this.bySeq.clear();
    this.seqs = [];
    this.insertNew(messages);
    this.scrollToBottom();
  }

  /** Show a message of ours that the server has not confirmed yet. */
  addPending(clientId, user, text) {
    const item = renderMessage({ user, text, ts: null });
    item.classList.add("pending", "mine");
    item.dataset.clientId = clientId;
    this.pending.set(clientId, item);
    this.element.append(item);
    this.scrollToBottom();
  }

  /** Change what the pending message's time slot says ("sending…", "waiting…"). */
  setPendingState(clientId, label) {
    const item = this.pending.get(clientId);
    if (item) item.querySelector("time").textContent = label;
  }

  removePending(clientId) {
    const item = this.pending.get(clientId);
    if (!item) return;
    item.remove();
    this.pending.delete(clientId);
  }

  /** Insert the messages with a seq not shown yet, leaving the scroll alone; returns how many. */
  insertNew(messages) {
    let added = 0;
    for (const message of messages) {
      if (!Number.isInteger(message.seq) || this.bySeq.has(message.seq)) continue;
      this.insert(message);
      added += 1;
    }
    return added;
  }

  insert(message) {
    const item = renderMessage(message);
    if (message.user && message.user.id === this.identity.user.id) item.classList.add("mine");
    const index = insertionIndex(this.seqs, message.seq);
    // Before the next higher seq, else before the pending ones, which stay last.
    const next = index < this.seqs.length
      ? this.bySeq.get(this.seqs[index])
      : this.pending.values().next().value || null;
    this.element.insertBefore(item, next);
    this.seqs.splice(index, 0, message.seq);
    this.bySeq.set(message.seq, item);
  }

  // Scrolling: follow new messages only when the reader is at the bottom, and
  // keep the view still when older messages are put above it. The <ol> itself
  // is the scrolling box (see style.css).
  isScrolledToBottom() {
    const box = this.element;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  scrollAnchor() {
    const box = this.element;
    return box.scrollHeight - box.scrollTop;
  }

  restoreScroll(stick, anchor) {
    const box = this.element;
    box.scrollTop = stick ? box.scrollHeight : box.scrollHeight - anchor;
  }

  scrollToBottom() {
    this.element.scrollTop = this.element.scrollHeight;
  }
}

/** `<li class="message" data-seq="42"><span class="author">Ana</span> <span class="text">hello</span> <time>…</time></li>` */
function renderMessage(message) {
  const item = document.createElement("li");
  item.className = "message";
  if (Number.isInteger(message.seq)) item.dataset.seq = String(message.seq);
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.user ? message.user.name : "";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text;
  const time = document.createElement("time");
  if (Number.isFinite(message.ts)) {
    const date = new Date(message.ts);
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString();
    time.textContent = timeFormat.format(date);
  } else {
    time.textContent = "sending…";
  }
  item.append(author, " ", text, " ", time);
  return item;
}

/** First index in the ascending `seqs` whose value is greater than `seq`. */
function insertionIndex(seqs, seq) {
  let low = 0;
  let high = seqs.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (seqs[middle] < seq) low = middle + 1;
    else high = middle;
  }
  return low;
}
