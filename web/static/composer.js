// The message box: a textarea where Enter sends, Shift+Enter starts a new
// line and Escape lets go of a reply, with a character counter that appears
// near MAX_MESSAGE_LENGTH.

const COUNTER_FROM = 0.9; // show the counter from 90 % of the limit

export class Composer {
  /**
   * @param {object} options
   * @param {HTMLFormElement} options.form
   * @param {HTMLTextAreaElement} options.input
   * @param {HTMLButtonElement} options.button
   * @param {HTMLElement} options.counter
   * @param {number} options.maxLength  in code points of trimmed text, as the server counts
   * @param {(text: string) => void} options.onSend
   * @param {(hasText: boolean) => void} options.onInput
   * @param {() => boolean} [options.onEscape]  Escape was pressed; true if it was used (a reply cancelled)
   */
  constructor({ form, input, button, counter, maxLength, onSend, onInput, onEscape = () => false }) {
    Object.assign(this, { form, input, button, counter, maxLength, onSend, onInput, onEscape });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    input.addEventListener("keydown", (event) => this.keydown(event));
    input.addEventListener("input", () => {
      this.updateCounter();
      this.onInput(this.input.value.trim() !== "");
    });
  }

  keydown(event) {
    if (event.key === "Escape" && this.onEscape()) {
      event.preventDefault();
      return;
    }
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME composition is not ours.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    this.send();
  }

  send() {
    const text = this.input.value.trim();
    if (!text || this.input.disabled) return;
    this.input.value = "";
    this.updateCounter();
    this.onSend(text);
    this.input.focus();
  }

  setEnabled(enabled) {
    this.input.disabled = !enabled;
    this.button.disabled = !enabled;
  }

  /** Give a refused text back to the user to fix, unless they already typed something new. */
  restore(text) {
    if (this.input.value.trim()) return;
    this.input.value = text;
    this.updateCounter();
  }

  updateCounter() {
    const length = [...this.input.value.trim()].length;
    const over = length - this.maxLength;
    this.counter.hidden = length < this.maxLength * COUNTER_FROM;
    this.counter.classList.toggle("over", over > 0);
    this.counter.textContent = over > 0
      ? `${over.toLocaleString()} ${over === 1 ? "character" : "characters"} too many`
      : `${(this.maxLength - length).toLocaleString()} characters left`;
  }
}
