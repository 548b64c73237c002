// Editing one's message in place: a box over its text where Enter saves,
// Shift+Enter adds a line and Escape cancels; a refusal is said beside it.

export class MessageEditor {
  /**
   * @param {object} options
   * @param {string} options.text  the message's text now
   * @param {number} options.maxLength  in code points of trimmed text, as the server counts
   * @param {(text: string) => Promise<string|null>} options.onSave  resolves to why it failed, or null
   * @param {() => void} options.onClose  saved, unchanged or cancelled: put the text back
   */
  constructor({ text, maxLength, onSave, onClose }) {
    Object.assign(this, { original: text, maxLength, onSave, onClose });
    this.element = document.createElement("form");
    this.element.className = "editor";
    this.input = document.createElement("textarea");
    this.input.rows = 1;
    this.input.value = text;
    this.input.setAttribute("aria-label", "Edit your message");
    this.error = document.createElement("p");
    this.error.className = "error";
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = "Enter saves, Escape cancels";
    this.save = document.createElement("button");
    this.save.type = "submit";
    this.save.className = "save";
    this.save.textContent = "Save";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary cancel";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => this.onClose());
    const foot = document.createElement("div");
    foot.className = "editor-foot";
    foot.append(hint, this.save, cancel);
    this.element.append(this.input, foot, this.error);
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => this.keydown(event));
  }

  /** Put the caret at the end of the text. */
  focus() {
    this.input.focus();
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
  }

  keydown(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.onClose();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      this.submit();
    }
  }

  async submit() {
    if (this.save.disabled) return;
    const text = this.input.value.trim();
    if (text === this.original.trim()) return this.onClose();
    if (!text) return this.say("A message cannot be empty: delete it instead.");
    const length = [...text].length;
    if (length > this.maxLength) {
      return this.say(`Too long: ${length.toLocaleString()} of ${this.maxLength.toLocaleString()} characters.`);
    }
    this.save.disabled = true;
    this.say("");
    try {
      const failure = await this.onSave(text);
      if (failure) this.say(failure);
      else this.onClose();
    } finally {
      this.save.disabled = false;
    }
  }

  say(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}
