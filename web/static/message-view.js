// The conversation as the reader sees it: stored messages in seq order,
// grouped by author and minute, with a separator where a day starts; then the
// user's own messages not stored yet, with their state (sending, waiting,
// rate limited, or refused and why) next to them.

import { appendLinkified } from "./linkify.js";
import { insertionIndex } from "./client/room-log.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long", day: "numeric", month: "long", year: "numeric",
});
const MINUTE_MS = 60000;

const FAILURES = {
  too_large: (entry, maxLength) =>
    `Not sent: too long (${[...entry.text].length.toLocaleString()} of ${maxLength.toLocaleString()} characters).`,
  forbidden: () => "Not sent: you may not write in this room.",
};

export class MessageView {
  /**
   * @param {HTMLOListElement} list  the `<ol id="messages">`
   * @param {object} options
   * @param {() => {id: string, name: string}} options.user  the signed-in user, read on use (it changes on renewal)
   * @param {number} options.maxLength  MAX_MESSAGE_LENGTH, for the too_large explanation
   * @param {(clientId: string) => void} options.onDismiss  the user dismissed a refused message
   */
  constructor(list, { user, maxLength, onDismiss }) {
    this.list = list;
    this.user = user;
    this.maxLength = maxLength;
    this.onDismiss = onDismiss;
    this.records = []; // {message, item, separator}, by ascending seq
    this.seqs = [];
    this.unsent = new Map(); // client_id -> <li>
    this.countdowns = new Map(); // client_id -> interval refreshing "retrying in N s"
  }

  /** The `<li>` of the stored message `seq`, or null. */
  itemFor(seq) {
    const index = insertionIndex(this.seqs, seq);
    return this.seqs[index] === seq ? this.records[index].item : null;
  }

  /** Show exactly these stored messages (a new epoch, or the first join). */
  reset(messages) {
    for (const record of this.records) {
      record.separator?.remove();
      record.item.remove();
    }
    this.records = [];
    this.seqs = [];
    this.add(messages);
  }

  /** Insert stored messages not shown yet, each where its seq belongs. */
  add(messages) {
    for (const message of messages) {
      const index = insertionIndex(this.seqs, message.seq);
      if (this.seqs[index] === message.seq) continue;
      const record = { message, item: this.render(message), separator: null };
      const next = this.records[index];
      this.list.insertBefore(record.item, next ? next.separator || next.item : this.firstUnsent());
      this.records.splice(index, 0, record);
      this.seqs.splice(index, 0, message.seq);
      this.decorate(index);
      this.decorate(index + 1);
    }
  }

  /** Show or update one of our messages the server has not stored (an outbox entry). */
  showEntry(entry) {
    let item = this.unsent.get(entry.clientId);
    if (!item) {
      item = this.render({ user: this.user(), text: entry.text, ts: null });
      item.dataset.clientId = entry.clientId;
      this.unsent.set(entry.clientId, item);
      this.list.append(item);
    }
    item.classList.toggle("pending", entry.state !== "failed");
    item.classList.toggle("failed", entry.state === "failed");
    const line = item.querySelector(".send-state");
    line.replaceChildren(...this.stateLine(entry));
    clearInterval(this.countdowns.get(entry.clientId));
    if (entry.state === "retrying" && entry.retryAt) {
      this.countdowns.set(entry.clientId, setInterval(() => line.replaceChildren(...this.stateLine(entry)), 1000));
    }
  }

  removeEntry(clientId) {
    clearInterval(this.countdowns.get(clientId));
    this.countdowns.delete(clientId);
    this.unsent.get(clientId)?.remove();
    this.unsent.delete(clientId);
  }

  firstUnsent() {
    return this.unsent.values().next().value || null;
  }

  /** A day separator where a day starts; a message continues its group when author and minute match. */
  decorate(index) {
    const record = this.records[index];
    if (!record) return;
    const previous = this.records[index - 1];
    const day = dayStart(record.message.ts);
    const newDay = !previous || dayStart(previous.message.ts) !== day;
    if (newDay && !record.separator) {
      record.separator = document.createElement("li");
      record.separator.className = "day-separator";
      record.separator.setAttribute("role", "separator");
      this.list.insertBefore(record.separator, record.item);
    } else if (!newDay && record.separator) {
      record.separator.remove();
      record.separator = null;
    }
    if (record.separator) record.separator.textContent = dayLabel(day);
    const continued = !newDay && sameAuthor(previous.message, record.message)
      && Math.floor(previous.message.ts / MINUTE_MS) === Math.floor(record.message.ts / MINUTE_MS);
    record.item.classList.toggle("continued", continued);
  }

  /** `<li class="message"><div class="meta"><span class="author"/> <time/></div><div class="text"/>…</li>` */
  render(message) {
    const item = document.createElement("li");
    item.className = "message";
    if (Number.isInteger(message.seq)) item.dataset.seq = String(message.seq);
    item.classList.toggle("mine", Boolean(message.user && message.user.id === this.user().id));
    const meta = document.createElement("div");
    meta.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = message.user ? message.user.name : "";
    meta.append(author, " ");
    if (Number.isFinite(message.ts)) meta.append(timeElement(message.ts));
    const text = document.createElement("div");
    text.className = "text";
    appendLinkified(text, message.text);
    item.append(meta, text);
    if (!Number.isInteger(message.seq)) {
      const state = document.createElement("p");
      state.className = "send-state";
      item.append(state);
    }
    return item;
  }

  /** What an outbox entry's state line says, as nodes. */
  stateLine(entry) {
    if (entry.state === "waiting") return ["Waiting for the connection…"];
    if (entry.state === "sending") return ["Sending…"];
    if (entry.state === "retrying") {
      const seconds = Math.max(1, Math.ceil((entry.retryAt - Date.now()) / 1000));
      const why = entry.error && entry.error.code === "rate_limited" ? "Rate limited" : "Not sent yet";
      return [`${why}: retrying in ${seconds} s.`];
    }
    const explain = FAILURES[entry.error && entry.error.code];
    const text = explain ? explain(entry, this.maxLength) : `Not sent: ${entry.error?.message || "refused"}.`;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link-button dismiss";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => this.onDismiss(entry.clientId));
    return [text, " ", dismiss];
  }
}

function sameAuthor(a, b) {
  return Boolean(a.user && b.user && a.user.id === b.user.id);
}

function timeElement(ts) {
  const date = new Date(ts);
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  time.textContent = timeFormat.format(date);
  return time;
}

/** Local midnight of the day `ts` falls in, in ms. */
function dayStart(ts) {
  const date = new Date(ts);
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/** "Today", "Yesterday", or the date. */
export function dayLabel(day) {
  const today = dayStart(Date.now());
  if (day === today) return "Today";
  if (day === dayStart(today - 1)) return "Yesterday";
  return dateFormat.format(new Date(day));
}
