// Messages the user wrote that the server has not stored yet (no DOM).
//
// Each one keeps the client_id it was given when written, so any number of
// resends (after a timeout, a reconnect, a rate limit) is stored only once:
// the server dedupes by client_id. Nothing is sent while the room is not
// joined, because the server would answer not_joined; the room calls
// setReady(true) after every successful join, which sends what waits.
//
// An entry's `state` is "waiting" (for a join), "sending", "retrying" (with
// `error` and `retryAt`), or "failed" (a final refusal, with `error`).

const MAX_BACKOFF_MS = 30000;
// Refusals that a resend cannot fix.
const FINAL_ERRORS = new Set(["too_large", "invalid_payload", "invalid_room", "forbidden"]);

export class Outbox {
  /**
   * @param {object} options
   * @param {(entry) => Promise<[Error|null, object|null]>} options.send  emits one `message` event
   * @param {(entry) => void} options.onChange  an entry was added or changed state
   * @param {(entry, message) => void} options.onStored  the server stored the entry as `message`
   */
  constructor({ send, onChange, onStored }) {
    this.sendEntry = send;
    this.onChange = onChange;
    this.onStored = onStored;
    this.entries = new Map(); // client_id -> entry
    this.ready = false;
  }

  /** Queue a new message (a reply to message `replyTo`, if given) and send it when possible; returns its entry. */
  add(text, clientId = randomId(), replyTo = null) {
    const entry = { clientId, text, replyTo, state: "waiting", error: null, retryAt: null, attempts: 0, timer: null };
    this.entries.set(clientId, entry);
    this.onChange(entry);
    this.send(entry);
    return entry;
  }

  /** Joined (true) or not (false); on true, everything waiting is sent. */
  setReady(ready) {
    this.ready = ready;
    for (const entry of this.entries.values()) {
      if (entry.state === "failed" || entry.state === "sending") continue;
      clearTimeout(entry.timer);
      entry.timer = null;
      if (ready) this.send(entry);
      else this.update(entry, "waiting");
    }
  }

  /** A `message` event or ack from the server: if it carries one of our client_ids, that entry is done. */
  confirm(message) {
    const entry = message && this.entries.get(message.client_id);
    if (!entry) return;
    this.remove(entry.clientId);
    this.onStored(entry, message);
  }

  /** Forget an entry (stored, or a failed one the user dismissed). */
  remove(clientId) {
    const entry = this.entries.get(clientId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.entries.delete(clientId);
  }

  async send(entry) {
    if (!this.ready) return this.update(entry, "waiting");
    entry.attempts += 1;
    this.update(entry, "sending");
    const [err, ack] = await this.sendEntry(entry);
    if (!this.entries.has(entry.clientId)) return; // a live event confirmed it meanwhile
    if (err) {
      // Timed out or disconnected: the server may or may not have it; resending is safe.
      if (this.ready) this.retryLater(entry, backoff(entry.attempts), null);
      else this.update(entry, "waiting");
    } else if (ack.ok) {
      this.confirm(ack.message);
    } else {
      this.refused(entry, ack.error || { code: "internal", message: "The server refused the message." });
    }
  }

  refused(entry, error) {
    if (FINAL_ERRORS.has(error.code)) {
      this.update(entry, "failed", error);
    } else if (error.code === "rate_limited") {
      const seconds = Math.max(1, Number(error.retry_after) || 1);
      this.retryLater(entry, seconds * 1000, error);
    } else if (error.code === "not_joined") {
      // Sent in the gap of a reconnect, before our join: the next join resends it.
      this.update(entry, "waiting");
    } else {
      this.retryLater(entry, backoff(entry.attempts), error);
    }
  }

  retryLater(entry, delayMs, error) {
    entry.retryAt = Date.now() + delayMs;
    this.update(entry, "retrying", error);
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (this.entries.has(entry.clientId)) this.send(entry);
    }, delayMs);
  }

  update(entry, state, error = null) {
    entry.state = state;
    entry.error = error;
    if (state !== "retrying") entry.retryAt = null;
    this.onChange(entry);
  }
}

/** 2 s, 4 s, 8 s ... up to 30 s. */
function backoff(attempts) {
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts, 5));
}

/** A UUID where the platform has one (browsers in secure contexts, Node), else 122 random bits. */
function randomId() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === "function") return globalThis.crypto.randomUUID();
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
