// Who is online in the room: set from the join ack, then kept current by
// `presence` events until the next join replaces it again.

export class MemberList {
  /**
   * @param {HTMLUListElement} element  the `<ul id="members">`
   * @param {HTMLElement} countElement
   * @param {{user: {id: string}}} identity  read on each render: the user may change
   */
  constructor(element, countElement, identity) {
    this.element = element;
    this.countElement = countElement;
    this.identity = identity;
    this.members = new Map(); // user id -> user
  }

  replace(users) {
    this.members.clear();
    for (const user of users || []) this.members.set(user.id, user);
    this.render();
  }

  add(user) {
    this.members.set(user.id, user);
    this.render();
  }

  remove(user) {
    this.members.delete(user.id);
    this.render();
  }

  clear() {
    this.replace([]);
  }

  render() {
    const users = [...this.members.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.element.replaceChildren(...users.map((user) => this.renderUser(user)));
    this.countElement.textContent = users.length ? `(${users.length})` : "";
  }

  renderUser(user) {
    const item = document.createElement("li");
    item.className = "member";
    item.dataset.userId = user.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = user.name;
    item.append(name);
    if (user.id === this.identity.user.id) {
      item.classList.add("me");
      const you = document.createElement("span");
      you.className = "muted";
      you.textContent = " (you)";
      item.append(you);
    }
    return item;
  }
}
