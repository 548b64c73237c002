// Who is online in the room, with their roles: set from the join ack, then kept current by
// `presence` events until the next join replaces it again. A room's owners and moderators
// also get the moderation buttons beside the users they may act on.

const ROLE_TEXT = { owner: "owner", moderator: "moderator" };
const MUTE_SECONDS = 10 * 60;
const BAN_SECONDS = 24 * 3600;

/** Whether a user of role `mine` may moderate one of role `theirs` (the server's rule). */
export function mayModerate(mine, theirs) {
  if (mine === "owner") return theirs !== "owner";
  if (mine === "moderator") return theirs !== "owner" && theirs !== "moderator";
  return false;
}

export class MemberList {
  /**
   * @param {HTMLUListElement} element  the `<ul id="members">`
   * @param {HTMLElement} countElement
   * @param {{user: {id: string}}} identity  read on each render: the user may change
   * @param {{role: () => string|null, moderate: (action, user, extra) => void}} [moderation]
   */
  constructor(element, countElement, identity, moderation = null) {
    this.element = element;
    this.countElement = countElement;
    this.identity = identity;
    this.moderation = moderation;
    this.members = new Map(); // user id -> user, with `role` where the user has one
  }

  replace(users) {
    this.members.clear();
    for (const user of users || []) this.members.set(user.id, user);
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
    if (ROLE_TEXT[user.role]) {
      const role = document.createElement("span");
      role.className = `role ${user.role}`;
      role.textContent = ROLE_TEXT[user.role];
      item.append(" ", role);
    }
    if (user.id === this.identity.user.id) {
      item.classList.add("me");
      const you = document.createElement("span");
      you.className = "muted";
      you.textContent = " (you)";
      item.append(you);
    } else if (this.moderation && mayModerate(this.moderation.role(), user.role)) {
      item.append(this.renderActions(user));
    }
    return item;
  }

  renderActions(user) {
    const actions = document.createElement("span");
    actions.className = "member-actions";
    const buttons = [
      ["kick", "Kick", {}],
      ["mute", "Mute 10 min", { seconds: MUTE_SECONDS }],
      ["ban", "Ban 1 day", { seconds: BAN_SECONDS }],
    ];
    for (const [action, label, extra] of buttons) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `moderate ${action}`;
      button.textContent = label;
      button.setAttribute("aria-label", `${label}: ${user.name}`);
      button.addEventListener("click", () => this.moderation.moderate(action, user, extra));
      actions.append(button);
    }
    return actions;
  }
}
