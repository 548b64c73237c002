// The user's own messages the server has not stored yet (outbox entries), at
// the end of the conversation, each with its state next to it: sending,
// waiting for the connection, retrying, or refused and why.

import { fillUnsent } from "./message-item.js";

const FAILURES = {
  too_large: (entry, maxLength) =>
    `Not sent: too long (${[...entry.text].length.toLocaleString()} of ${maxLength.toLocaleString()} characters).`,
  forbidden: () => "Not sent: you may not write in this room.",
};

export class UnsentView {
  /**
   * @param {HTMLOListElement} list  the `<ol id="messages">`
   * @param {object} options
   * @param {() => {id: string, name: string}} options.user  the signed-in user, read on use
   * @param {number} options.maxLength  MAX_MESSAGE_LENGTH, for the too_large explanation
   * @param {(clientId: string) => void} options.onDismiss  the user dismissed a refused message
   * @param {(seq: number) => object|null} options.quoteOf  the quote (`{seq, user, text}`) of a message replied to
   * @param {(seq: number) => void} options.goTo  a quote was clicked
   */
  constructor(list, { user, maxLength, onDismiss, quoteOf, goTo }) {
    Object.assign(this, { list, user, maxLength, onDismiss, quoteOf, goTo });
    this.items = new Map(); // client_id -> <li>
    this.countdowns = new Map(); // client_id -> interval refreshing "retrying in N s"
  }

  has(clientId) {
    return this.items.has(clientId);
  }

  /** The first unsent `<li>`: stored messages go before it. */
  first() {
    return this.items.values().next().value || null;
  }

  /** Show or update an entry. */
  show(entry) {
    let item = this.items.get(entry.clientId);
    if (!item) {
      item = document.createElement("li");
      const replyTo = Number.isInteger(entry.replyTo) ? this.quoteOf(entry.replyTo) : null;
      fillUnsent(item, { user: this.user(), text: entry.text, replyTo }, this.goTo);
      item.dataset.clientId = entry.clientId;
      this.items.set(entry.clientId, item);
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

  remove(clientId) {
    clearInterval(this.countdowns.get(clientId));
    this.countdowns.delete(clientId);
    this.items.get(clientId)?.remove();
    this.items.delete(clientId);
  }

  /** What an entry's state line says, as nodes. */
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
