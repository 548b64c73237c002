// "Ana is typing…": what we tell the room, and what the room tells us.

const SEND_EVERY_MS = 2000; // refresh our "typing" at most this often
const IDLE_AFTER_MS = 3000; // no keystroke for this long: we stopped typing
const EXPIRE_AFTER_MS = 5000; // others' "typing" without a refresh for this long is stale

/** Turns keystrokes into throttled `typing` true/false notices. */
export class TypingNotifier {
  /** @param {(typing: boolean) => void} emit */
  constructor(emit) {
    this.emit = emit;
    this.typing = false;
    this.lastSent = 0;
    this.idleTimer = null;
  }

  /** The input changed; `hasText` says whether anything is left in it. */
  input(hasText) {
    if (!hasText) return this.stop();
    const now = Date.now();
    if (!this.typing || now - this.lastSent >= SEND_EVERY_MS) {
      this.typing = true;
      this.lastSent = now;
      this.emit(true);
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), IDLE_AFTER_MS);
  }

  /** Idle, sent or emptied: tell the room we stopped, once. */
  stop() {
    clearTimeout(this.idleTimer);
    if (!this.typing) return;
    this.typing = false;
    this.emit(false);
  }

  /** The connection dropped: the server forgot us, so there is nothing to stop. */
  reset() {
    clearTimeout(this.idleTimer);
    this.typing = false;
  }
}

/** Shows who else is typing in `element`, forgetting anyone not refreshed in time. */
export class TypingDisplay {
  constructor(element) {
    this.element = element;
    this.users = new Map(); // user id -> {name, timer}
  }

  update(user, typing) {
    this.forget(user.id, false);
    if (typing) {
      const timer = setTimeout(() => this.forget(user.id), EXPIRE_AFTER_MS);
      this.users.set(user.id, { name: user.name, timer });
    }
    this.render();
  }

  /** Stop showing a user (they sent a message, left, or expired); nothing to do if not shown. */
  forget(userId, render = true) {
    const entry = this.users.get(userId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.users.delete(userId);
    if (render) this.render();
  }

  clear() {
    for (const id of [...this.users.keys()]) this.forget(id, false);
    this.render();
  }

  render() {
    const names = [...this.users.values()].map((entry) => entry.name);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    this.element.textContent = text;
  }
}
