// What one can do with a stored message: reply and react to anyone's; edit
// one's own; delete one's own, or any as the room's owner or a moderator
// (after a second, inline "Delete?" step). Deleted messages offer nothing.

const MAY_DELETE_ANY = new Set(["owner", "moderator"]);

/** Whether a user of room role `role` may delete `message` (the contract's rule). */
export function mayDelete(message, userId, role) {
  return message.user?.id === userId || MAY_DELETE_ANY.has(role);
}

/**
 * The toolbar of `message`, or null for a deleted one.
 * @param {object} message
 * @param {object} state
 * @param {string} state.userId  the signed-in user
 * @param {string|null} state.role  ours in the room
 * @param {boolean} state.confirming  the user asked to delete it: show the second step
 * @param {boolean} state.picking  the reaction picker is open
 * @param {object} on  handlers: reply(), react(), edit(), askDelete(), delete(), keep()
 */
export function renderActions(message, { userId, role, confirming, picking }, on) {
  if (message.deleted) return null;
  const bar = document.createElement("div");
  bar.className = "message-actions";
  bar.setAttribute("role", "group");
  const author = message.user?.id === userId ? "your message" : `the message from ${message.user?.name}`;
  bar.setAttribute("aria-label", `Actions on ${author}`);
  if (confirming) {
    bar.classList.add("confirming");
    const question = document.createElement("span");
    question.className = "confirm-question";
    question.textContent = "Delete this message?";
    bar.append(question,
      button("delete", "Delete", `Yes, delete ${author}`, on.delete, "danger"),
      button("keep", "Cancel", "No, keep it", on.keep));
    return bar;
  }
  bar.append(button("reply", "Reply", `Reply to ${author}`, on.reply));
  const react = button("react", "React", `Add a reaction to ${author}`, on.react);
  react.setAttribute("aria-expanded", String(picking));
  bar.append(react);
  if (message.user?.id === userId) bar.append(button("edit", "Edit", "Edit your message", on.edit));
  if (mayDelete(message, userId, role)) bar.append(button("ask-delete", "Delete", `Delete ${author}`, on.askDelete));
  return bar;
}

function button(name, label, ariaLabel, onClick, extraClass = "") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = `action ${name} ${extraClass}`.trim();
  element.dataset.key = `action:${name}`;
  element.textContent = label;
  element.setAttribute("aria-label", ariaLabel);
  element.addEventListener("click", onClick);
  return element;
}
