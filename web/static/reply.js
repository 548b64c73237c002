// Replies: the quote shown above a reply (a button that goes to the original),
// and the "Replying to …" bar above the composer while one is being written.

const PREVIEW_CHARS = 100; // as much of the original as the server quotes

/**
 * The quote of `replyTo` (`{seq, user, text}`), a button that calls `onGo(seq)`.
 * An original deleted since keeps the quote it was sent with.
 */
export function renderQuote(replyTo, onGo) {
  const quote = document.createElement("button");
  quote.type = "button";
  quote.className = "reply-quote";
  quote.dataset.replyTo = String(replyTo.seq);
  quote.dataset.key = "quote";
  const name = replyTo.user?.name || "someone";
  quote.setAttribute("aria-label", `In reply to ${name}: ${replyTo.text}. Go to the original message`);
  const author = document.createElement("span");
  author.className = "quote-author";
  author.textContent = name;
  const text = document.createElement("span");
  text.className = "quote-text";
  text.textContent = replyTo.text;
  quote.append(author, text);
  quote.addEventListener("click", () => onGo(replyTo.seq));
  return quote;
}

/** The bar above the composer naming the message being replied to, with a button to cancel. */
export class ReplyBar {
  /**
   * @param {HTMLElement} element  the `#reply-bar` container (hidden while no reply is written)
   * @param {() => void} onCancel  the reply was cancelled (the bar's button, or Escape)
   */
  constructor(element, onCancel = () => {}) {
    this.element = element;
    this.onCancel = onCancel;
    this.target = null; // the message replied to
  }

  /** The seq of the message replied to, or null. */
  get seq() {
    return this.target ? this.target.seq : null;
  }

  set(message) {
    this.target = message;
    const label = document.createElement("span");
    label.className = "reply-label";
    label.textContent = "Replying to ";
    const author = document.createElement("strong");
    author.className = "quote-author";
    author.textContent = message.user?.name || "someone";
    const text = document.createElement("span");
    text.className = "quote-text";
    text.textContent = [...message.text].slice(0, PREVIEW_CHARS).join("");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "link-button cancel-reply";
    cancel.textContent = "Cancel";
    cancel.setAttribute("aria-label", "Cancel the reply");
    cancel.addEventListener("click", () => this.cancel());
    label.append(author);
    this.element.replaceChildren(label, text, cancel);
    this.element.hidden = false;
  }

  /** Stop replying (the reply was sent, or the original is gone). */
  clear() {
    this.target = null;
    this.element.replaceChildren();
    this.element.hidden = true;
  }

  cancel() {
    if (!this.target) return false;
    this.clear();
    this.onCancel();
    return true;
  }
}
