// Reactions on a message: a chip per emoji with its count, the user's own
// highlighted, each a toggle; and the small picker of common emoji.

/** The emoji the picker offers, with the names screen readers say. */
export const COMMON_EMOJI = [
  ["👍", "thumbs up"], ["❤️", "heart"], ["😂", "laughing"], ["🎉", "party"], ["😮", "surprised"], ["😢", "sad"],
];
const NAMES = new Map(COMMON_EMOJI);

/**
 * The chips of `message.reactions` (`{emoji: [user ids]}`), or null when it has none.
 * @param {(emoji: string, on: boolean) => void} onToggle  take back one's reaction, or add it
 */
export function renderReactions(message, userId, onToggle) {
  const entries = Object.entries(message.reactions || {}).filter(([, users]) => users.length);
  if (!entries.length) return null;
  const group = document.createElement("div");
  group.className = "reactions";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Reactions");
  for (const [emoji, users] of entries) {
    const mine = users.includes(userId);
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "reaction";
    chip.classList.toggle("mine", mine);
    chip.dataset.emoji = emoji;
    chip.dataset.key = `reaction:${emoji}`;
    chip.setAttribute("aria-pressed", String(mine));
    const who = users.length === 1 ? "1 person" : `${users.length} people`;
    chip.setAttribute("aria-label", `${NAMES.get(emoji) || emoji}: ${who}${mine ? ", you included" : ""}`);
    chip.title = mine ? "Take back your reaction" : "React with this too";
    const symbol = document.createElement("span");
    symbol.className = "emoji";
    symbol.textContent = emoji;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(users.length);
    chip.append(symbol, count);
    chip.addEventListener("click", () => onToggle(emoji, !mine));
    group.append(chip);
  }
  return group;
}

/**
 * The picker: a row of emoji buttons. Escape, or a pick, closes it.
 * @param {object} options
 * @param {(emoji: string) => void} options.onPick
 * @param {() => void} options.onClose  Escape was pressed
 */
export function renderPicker({ onPick, onClose }) {
  const picker = document.createElement("div");
  picker.className = "reaction-picker";
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", "Pick a reaction");
  for (const [emoji, name] of COMMON_EMOJI) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "pick";
    button.dataset.emoji = emoji;
    button.textContent = emoji;
    button.setAttribute("aria-label", `React with ${name}`);
    button.title = name;
    button.addEventListener("click", () => onPick(emoji));
    picker.append(button);
  }
  picker.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    event.stopPropagation();
    onClose();
  });
  return picker;
}
