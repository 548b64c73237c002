// Where the reader is in a long room: older history loads when they scroll to
// the top (keeping the view still); new messages are followed only from the
// bottom, and otherwise marked with a "New messages" divider and a
// jump-to-latest button; while the tab is hidden, the title counts them.

const NEAR_TOP_PX = 200;
const AT_BOTTOM_PX = 40;

export class Reader {
  /**
   * @param {object} options
   * @param {HTMLElement} options.scroller  the scrolling box holding the messages
   * @param {HTMLOListElement} options.list  the `<ol>` of messages, for the divider
   * @param {HTMLButtonElement} options.jump  the jump-to-latest button
   * @param {HTMLElement} options.olderStatus  "Loading older messages…" / "This is the start of …"
   * @param {() => boolean} options.hasOlder
   * @param {() => Promise<Array>} options.loadOlder  resolves once older messages were shown
   * @param {(seq: number) => HTMLElement|null} options.itemFor  the element of a shown message
   */
  constructor({ scroller, list, jump, olderStatus, hasOlder, loadOlder, itemFor }) {
    Object.assign(this, { scroller, list, jump, olderStatus, hasOlder, loadOlder, itemFor });
    this.title = document.title;
    this.unseen = 0; // messages from others that arrived below the view (or while hidden)
    this.hiddenCount = 0; // messages that arrived while the tab was hidden
    this.divider = null;
    this.loading = false;
    this.stuck = true; // at the bottom as of the last scroll: stay there when sizes change
    this.pinnedTop = null; // where scrollToBottom last put the view
    scroller.addEventListener("scroll", () => this.scrolled(), { passive: true });
    // The box or what it holds changes size (a wrapped line, buttons shown for a new role):
    // a reader at the bottom stays there.
    const follow = new ResizeObserver(() => this.stuck && this.scrollToBottom());
    follow.observe(scroller);
    follow.observe(list);
    jump.addEventListener("click", () => this.toLatest());
    document.addEventListener("visibilitychange", () => this.visibilityChanged());
  }

  atBottom() {
    const box = this.scroller;
    return box.scrollHeight - box.scrollTop - box.clientHeight < AT_BOTTOM_PX;
  }

  /** Call before the list changes; pass the answer to `after`. */
  before() {
    const anchor = this.topItem();
    return { stick: this.atBottom(), anchor, offset: anchor ? this.offsetOf(anchor) : 0 };
  }

  /** The list item at the top edge of the view; the first one while the view starts above the list. */
  topItem() {
    const box = this.scroller.getBoundingClientRect();
    const element = document.elementFromPoint(box.left + box.width / 2, box.top + 8);
    // A message, not a separator: separators come and go as messages are inserted.
    const item = element && element.closest("li.message");
    return item && item.parentElement === this.list ? item : this.list.querySelector("li.message");
  }

  offsetOf(item) {
    return item.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top;
  }

  /**
   * The list changed: `fresh` are newly shown messages from others (live ones,
   * not history pages), and `mine` says whether the user just wrote something.
   */
  after({ stick, anchor, offset }, { fresh = [], mine = false } = {}) {
    if (mine) {
      this.clearDivider();
      this.scrollToBottom();
    } else if (stick && !document.hidden) {
      this.scrollToBottom();
    } else {
      // Keep what the reader looks at where it is, whatever came above or below it.
      if (anchor && anchor.isConnected) this.scroller.scrollTop += this.offsetOf(anchor) - offset;
      if (fresh.length) this.markUnseen(fresh);
    }
    this.updateOlderStatus();
    this.updateJump();
  }

  /** The room was shown afresh (first join, new epoch). */
  reset() {
    this.clearDivider();
    this.unseen = 0;
    this.scrollToBottom();
    this.updateOlderStatus();
    this.updateJump();
  }

  markUnseen(messages) {
    this.unseen += messages.length;
    if (document.hidden) {
      this.hiddenCount += messages.length;
      document.title = `(${this.hiddenCount}) ${this.title}`;
    }
    if (!this.divider) {
      const first = this.itemFor(messages[0].seq);
      if (!first) return;
      this.divider = document.createElement("li");
      this.divider.className = "new-divider";
      this.divider.setAttribute("role", "separator");
      this.divider.textContent = "New messages";
      this.list.insertBefore(this.divider, first);
    }
  }

  clearDivider() {
    this.divider?.remove();
    this.divider = null;
  }

  scrolled() {
    // A scroll event comes a frame late: the one our own scrollToBottom caused may find the
    // list grown since. Where we put the view, the reader is still at the bottom.
    this.stuck = this.atBottom() || this.scroller.scrollTop === this.pinnedTop;
    if (this.stuck && !document.hidden) this.unseen = 0;
    this.updateJump();
    if (this.scroller.scrollTop < NEAR_TOP_PX) this.loadMore();
  }

  async loadMore() {
    if (this.loading || !this.hasOlder()) return;
    this.loading = true;
    this.updateOlderStatus();
    try {
      await this.loadOlder();
    } catch {
      this.olderStatus.textContent = "Could not load older messages. Scroll up to try again.";
      return;
    } finally {
      this.loading = false;
    }
    this.updateOlderStatus();
    // A short page may leave the top still in view: keep going.
    if (this.scroller.scrollTop < NEAR_TOP_PX) this.loadMore();
  }

  updateOlderStatus() {
    if (this.loading) this.olderStatus.textContent = "Loading older messages…";
    else if (!this.hasOlder()) this.olderStatus.textContent = "This is the start of the conversation.";
    else this.olderStatus.textContent = "";
  }

  updateJump() {
    const show = !this.atBottom();
    this.jump.hidden = !show;
    this.jump.textContent = this.unseen ? `${this.unseen} new ${this.unseen === 1 ? "message" : "messages"} ↓`
      : "Jump to latest ↓";
  }

  toLatest() {
    this.scrollToBottom();
    this.unseen = 0;
    this.updateJump();
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.pinnedTop = this.scroller.scrollTop;
    this.stuck = true;
  }

  visibilityChanged() {
    if (document.hidden) return;
    this.hiddenCount = 0;
    document.title = this.title;
    if (this.atBottom()) this.unseen = 0;
    this.updateJump();
  }
}
