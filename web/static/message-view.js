// The conversation as the reader sees it: stored messages in seq order,
// grouped by author and minute, with a separator where a day starts, changed
// in place when they are edited, deleted or reacted to; then the user's own
// messages not stored yet, with their state (sending, waiting, rate limited,
// or refused and why) next to them. One message at a time may be edited, have
// its reaction picker open, or wait for a delete to be confirmed.

import { insertionIndex } from "./client/room-log.js";
import { fillStored } from "./message-item.js";
import { MessageEditor } from "./message-editor.js";
import { renderPicker } from "./reactions.js";
import { UnsentView } from "./unsent-view.js";

const dateFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long", day: "numeric", month: "long", year: "numeric",
});
const MINUTE_MS = 60000;
const HIGHLIGHT_MS = 2000;

export class MessageView {
  /**
   * @param {HTMLOListElement} list  the `<ol id="messages">`
   * @param {object} options
   * @param {() => {id: string, name: string}} options.user  the signed-in user, read on use (it changes on renewal)
   * @param {() => string|null} [options.role]  ours in the room: owners and moderators may delete any message
   * @param {number} options.maxLength  MAX_MESSAGE_LENGTH, for the too_large explanation and edits
   * @param {(clientId: string) => void} options.onDismiss  the user dismissed a refused message
   * @param {(message) => void} [options.onReply]  the user chose to reply to `message`
   * @param {(seq, text) => Promise<string|null>} [options.onEdit]  save an edit; resolves to why it failed, or null
   * @param {(seq) => void} [options.onDelete]
   * @param {(seq, emoji, on) => void} [options.onReact]
   * @param {(seq) => void} [options.onMissing]  a quote was clicked whose original is not loaded
   */
  constructor(list, { user, role = () => null, maxLength, onDismiss, onReply = () => {}, onEdit = async () => null,
    onDelete = () => {}, onReact = () => {}, onMissing = () => {} }) {
    Object.assign(this, { list, user, role, maxLength, onReply, onEdit, onDelete, onReact, onMissing });
    this.records = []; // {message, item, separator}, by ascending seq
    this.seqs = [];
    this.unsent = new UnsentView(list, {
      user, maxLength, onDismiss, quoteOf: (seq) => this.quoteOf(seq), goTo: (seq) => this.goTo(seq),
    });
    this.editing = null; // {seq, editor}
    this.picking = null; // {seq, picker}
    this.confirming = null; // seq waiting for "Delete this message?"
    document.addEventListener("pointerdown", (event) => {
      if (this.picking && !event.target.closest?.(".reaction-picker, .action.react")) this.closePicker();
    });
    list.addEventListener("click", (event) => this.select(event.target));
  }

  /** The `<li>` of the stored message `seq`, or null. */
  itemFor(seq) {
    return this.recordFor(seq)?.item || null;
  }

  recordFor(seq) {
    const index = insertionIndex(this.seqs, seq);
    return this.seqs[index] === seq ? this.records[index] : null;
  }

  /** A reply's quote of message `seq`, as the server will store it; null when it is not shown. */
  quoteOf(seq) {
    const message = this.recordFor(seq)?.message;
    return message ? { seq, user: message.user, text: [...message.text].slice(0, 100).join("") } : null;
  }

  /** The latest stored message shown, `{seq, authorId, item}`, or null. */
  latest() {
    const record = this.records.at(-1);
    return record ? { seq: record.message.seq, authorId: record.message.user?.id, item: record.item } : null;
  }

  /** Show exactly these stored messages (a new epoch, or the first join). */
  reset(messages) {
    for (const record of this.records) {
      record.separator?.remove();
      record.item.remove();
    }
    this.records = [];
    this.seqs = [];
    this.editing = this.picking = this.confirming = null;
    this.add(messages);
  }

  /** Insert stored messages not shown yet, each where its seq belongs. */
  add(messages) {
    for (const message of messages) {
      const index = insertionIndex(this.seqs, message.seq);
      if (this.seqs[index] === message.seq) continue;
      const item = document.createElement("li");
      item.className = "message";
      item.dataset.seq = String(message.seq);
      item.classList.toggle("mine", message.user?.id === this.user().id);
      const record = { message, item, separator: null };
      this.fill(record);
      const next = this.records[index];
      this.list.insertBefore(item, next ? next.separator || next.item : this.unsent.first());
      this.records.splice(index, 0, record);
      this.seqs.splice(index, 0, message.seq);
      this.decorate(index);
      this.decorate(index + 1);
    }
  }

  /** Show the new state of messages already shown (edited, deleted, reacted to); others are ignored. */
  update(messages) {
    for (const message of messages) {
      const record = this.recordFor(message.seq);
      if (!record) continue;
      record.message = message;
      if (message.deleted) this.forgetOpen(message.seq);
      this.fill(record);
    }
  }

  /** Draw every stored message again (our role or identity changed). */
  refreshAll() {
    for (const record of this.records) {
      record.item.classList.toggle("mine", record.message.user?.id === this.user().id);
      this.fill(record);
    }
  }

  /** (Re)draw a stored message's parts, keeping the focus on the control that had it. */
  fill(record) {
    const { message, item } = record;
    const seq = message.seq;
    const focused = item.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    fillStored(item, message, {
      userId: this.user().id,
      role: this.role(),
      confirming: this.confirming === seq,
      editor: this.editing?.seq === seq ? this.editing.editor.element : null,
      picker: this.picking?.seq === seq ? this.picking.picker : null,
    }, {
      goTo: (target) => this.goTo(target),
      react: (emoji, on) => this.onReact(seq, emoji, on),
      reply: () => this.onReply(record.message),
      edit: () => this.startEditing(seq),
      pick: () => (this.picking?.seq === seq ? this.closePicker() : this.openPicker(seq)),
      askDelete: () => this.setConfirming(seq, "delete"),
      delete: () => {
        this.setConfirming(null, "reply");
        this.onDelete(seq);
      },
      keep: () => this.setConfirming(null, "ask-delete"),
    });
    if (focused) this.focusKey(item, focused, "action:react");
  }

  /** Focus the control `key` of `item`, else `fallback`, else the message itself (say, it was deleted). */
  focusKey(item, key, fallback = null) {
    const controls = [...item.querySelectorAll("[data-key]")];
    const control = controls.find((element) => element.dataset.key === key)
      || controls.find((element) => element.dataset.key === fallback);
    if (control) return control.focus();
    item.tabIndex = -1;
    item.focus({ preventScroll: true });
  }

  /** A tap or click on a message (not on one of its controls) shows its toolbar until another is chosen. */
  select(target) {
    if (target.closest("button, a, textarea, .reaction-picker")) return;
    const item = target.closest("li.message[data-seq]");
    for (const selected of this.list.querySelectorAll("li.message.selected")) {
      if (selected !== item) selected.classList.remove("selected");
    }
    item?.classList.add("selected");
  }

  /** Scroll to the original of a quote and point it out; or say that it is not loaded. */
  goTo(seq) {
    const item = this.itemFor(seq);
    if (!item) {
      this.onMissing(seq);
      return;
    }
    item.scrollIntoView({ block: "center" });
    item.tabIndex = -1;
    item.focus({ preventScroll: true });
    item.classList.add("highlight");
    setTimeout(() => item.classList.remove("highlight"), HIGHLIGHT_MS);
  }

  startEditing(seq) {
    const record = this.recordFor(seq);
    if (!record) return;
    this.stopEditing(false);
    const editor = new MessageEditor({
      text: record.message.text,
      maxLength: this.maxLength,
      onSave: (text) => this.onEdit(seq, text),
      onClose: () => this.stopEditing(true),
    });
    this.editing = { seq, editor };
    this.fill(record);
    editor.focus();
  }

  /** Close the editor, if any; `refocus` puts the focus back on the message's Edit button. */
  stopEditing(refocus) {
    if (!this.editing) return;
    const record = this.recordFor(this.editing.seq);
    this.editing = null;
    if (!record) return;
    this.fill(record);
    if (refocus) this.focusKey(record.item, "action:edit");
  }

  openPicker(seq) {
    this.closePicker();
    const record = this.recordFor(seq);
    if (!record) return;
    const picker = renderPicker({
      onPick: (emoji) => {
        const mine = (record.message.reactions?.[emoji] || []).includes(this.user().id);
        this.closePicker(true);
        this.onReact(seq, emoji, !mine);
      },
      onClose: () => this.closePicker(true),
    });
    this.picking = { seq, picker };
    this.fill(record);
    picker.querySelector("button").focus();
  }

  closePicker(refocus = false) {
    if (!this.picking) return;
    const record = this.recordFor(this.picking.seq);
    this.picking = null;
    if (!record) return;
    this.fill(record);
    if (refocus) this.focusKey(record.item, "action:react");
  }

  /** Ask (or stop asking, `seq` null) whether to delete `seq`; the focus moves to its control `focusKey`. */
  setConfirming(seq, focusKey) {
    const previous = this.confirming;
    this.confirming = seq;
    for (const each of new Set([previous, seq])) {
      const record = each === null ? null : this.recordFor(each);
      if (record) this.fill(record);
    }
    const target = seq ?? previous;
    const record = target === null ? null : this.recordFor(target);
    if (record) this.focusKey(record.item, `action:${focusKey}`);
  }

  /** A deleted message can no longer be edited, reacted to or deleted. */
  forgetOpen(seq) {
    if (this.editing?.seq === seq) this.editing = null;
    if (this.picking?.seq === seq) this.picking = null;
    if (this.confirming === seq) this.confirming = null;
  }

  /** Show or update one of our messages the server has not stored (an outbox entry). */
  showEntry(entry) {
    this.unsent.show(entry);
  }

  removeEntry(clientId) {
    this.unsent.remove(clientId);
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
}

function sameAuthor(a, b) {
  return Boolean(a.user && b.user && a.user.id === b.user.id);
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
