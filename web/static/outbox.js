// Messages the user wrote that the server has not confirmed yet.
//
// Each one keeps the client_id it was given when written, so any number of
// resends (after a timeout, a reconnect, a rate limit) is stored only once:
// the server dedupes by client_id. Nothing is sent while the room is not
// joined, because the server would answer not_joined; the page calls
// setReady(true) after every successful join, which sends what waits.

const MAX_BACKOFF_MS = 30000;
// Refusals that a resend cannot fix: the text goes back to the user.
const FINAL_ERRORS = new Set(["too_large", "invalid_payload", "invalid_room", "forbidden"]);

export class Outbox {
  /**
   * @param {object} options
   * @param {MessageList} options.list       where pending messages are shown
   * @param {(payload) => Promise<[Error|null, object]>} options.emit  sends a `message` event
   * @param {(message: string, transient: boolean) => void} options.onError
   * @param {(entry, error) => void} options.onRejected   a final refusal
   * @param {() => void} options.onConfirmed
   */
  constructor({ room, list, emit, onError, onRejected, onConfirmed }) {
    this.room = room;
    this.list = list;
    this.emit = emit;
    this.onError = onError;
    this.onRejected = onRejected;
    this.onConfirmed = onConfirmed;
    this.entries = new Map(); // client_id -> {clientId, text, inFlight, timer, attempts}
    this.ready = false;
  }

  /** Queue a new message written by `user` and send it when possible. */
  add(text, user) {
    const entry = { clientId: crypto.randomUUID(), text, inFlight: false, timer: null, attempts: 0 };
    this.entries.set(entry.clientId, entry);
    this.list.addPending(entry.clientId, user, text);
    this.send(entry);
  }

  /** Joined (true) or not (false); on true, everything waiting is sent. */
  setReady(ready) {
    this.ready = ready;
    if (!ready) return;
    for (const entry of this.entries.values()) {
      if (entry.inFlight) continue;
      clearTimeout(entry.timer);
      entry.timer = null;
      this.send(entry);
    }
  }

  /** A `message` event or ack carried this message: if it is one of ours, it is done. */
  confirm(message) {
    const entry = message && this.entries.get(message.client_id);
    if (!entry) return;
    this.drop(entry);
    this.onConfirmed();
  }

  async send(entry) {
    if (!this.ready) {
      this.list.setPendingState(entry.clientId, "waiting…");
      return;
    }
    entry.inFlight = true;
    entry.attempts += 1;
    this.list.setPendingState(entry.clientId, "sending…");
    const [err, ack] = await this.emit({ room: this.room, text: entry.text, client_id: entry.clientId });
    entry.inFlight = false;
    if (!this.entries.has(entry.clientId)) return; // a live event confirmed it meanwhile
    if (err || !ack || typeof ack !== "object") {
      // Timed out or disconnected: the server may or may not have it; resending is safe.
      this.retryLater(entry, backoff(entry.attempts));
    } else if (ack.ok) {
      this.list.merge([ack.message]);
      this.confirm(ack.message);
    } else {
      this.refused(entry, ack.error || { code: "internal", message: "The server refused the message." });
    }
  }

  refused(entry, error) {
    if (FINAL_ERRORS.has(error.code)) {
      this.drop(entry);
      this.onRejected(entry, error);
    } else if (error.code === "rate_limited") {
      const seconds = Math.max(1, Math.ceil(Number(error.retry_after) || 1));
      this.onError(`slow down, retry in ${seconds}s`, true);
      this.retryLater(entry, seconds * 1000);
    } else if (error.code === "not_joined") {
      // Sent in the gap of a reconnect, before our join: the next join resends it.
      this.retryLater(entry, 500);
    } else {
      this.onError(error.message || "The message could not be sent; retrying.", true);
      this.retryLater(entry, backoff(entry.attempts));
    }
  }

  /** Done with `entry` (confirmed or finally refused): stop its retry and its pending line. */
  drop(entry) {
    clearTimeout(entry.timer);
    this.entries.delete(entry.clientId);
    this.list.removePending(entry.clientId);
  }

  retryLater(entry, delayMs) {
    this.list.setPendingState(entry.clientId, "waiting…");
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (this.entries.has(entry.clientId)) this.send(entry);
    }, delayMs);
  }
}

function backoff(attempts) {
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts, 5));
}
