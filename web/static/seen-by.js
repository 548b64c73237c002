// "Seen by Ana and Bob" under a private room's latest message: the members
// whose read mark reached it, but for oneself and its author. Marks come from the members list (private rooms
// give each member's `last_read`) and from `read_receipt` events; they only
// move forward, and are kept when a member goes offline. Public rooms carry
// no marks, so nothing is shown there.

const NAMES_SHOWN = 3;

export class SeenBy {
  /**
   * @param {HTMLOListElement} list  the `<ol>` of messages
   * @param {() => string} userId  the signed-in user, left out
   * @param {() => {seq: number, authorId: string, item: HTMLElement}|null} latest  the latest stored message shown
   */
  constructor(list, userId, latest) {
    Object.assign(this, { list, userId, latest });
    this.reads = new Map(); // user id -> {name, lastRead}
    this.element = document.createElement("li");
    this.element.className = "seen-by";
    this.element.setAttribute("aria-live", "polite");
  }

  /** Members as a join or `members` reports them; those with a `last_read` are remembered. */
  members(users) {
    for (const user of users) {
      if (Number.isInteger(user.last_read)) this.mark(user, user.last_read);
    }
  }

  /** A `read_receipt`: `user` has read up to `lastRead`. */
  mark(user, lastRead) {
    const known = this.reads.get(user.id);
    this.reads.set(user.id, { name: user.name, lastRead: Math.max(lastRead, known ? known.lastRead : 0) });
    this.render();
  }

  /** Show the line under the latest message, or take it away. */
  render() {
    const latest = this.latest();
    const me = this.userId();
    // Its author has read it, of course: saying so tells nothing.
    const names = latest ? [...this.reads]
      .filter(([id, read]) => id !== me && id !== latest.authorId && read.lastRead >= latest.seq)
      .map(([, read]) => read.name).sort((a, b) => a.localeCompare(b)) : [];
    if (!names.length) {
      this.element.remove();
      return;
    }
    this.element.textContent = `Seen by ${listed(names)}`;
    if (this.element.previousElementSibling !== latest.item) latest.item.after(this.element);
  }
}

function listed(names) {
  if (names.length <= NAMES_SHOWN) {
    return names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  }
  return `${names.slice(0, NAMES_SHOWN).join(", ")} and ${names.length - NAMES_SHOWN} more`;
}
