// Whether the reader is looking at the latest messages (the tab is visible and
// the conversation scrolled to the bottom), told to the room each time it
// changes, so the room can mark what was read.

export class ViewingWatch {
  /**
   * @param {object} options
   * @param {HTMLElement} options.scroller  the scrolling box of the conversation
   * @param {() => boolean} options.atBottom
   * @param {(viewing: boolean) => void} options.report  `room.setViewing`
   */
  constructor({ scroller, atBottom, report }) {
    Object.assign(this, { atBottom, report });
    this.viewing = null; // as last reported
    scroller.addEventListener("scroll", () => this.check(), { passive: true });
    document.addEventListener("visibilitychange", () => this.check());
  }

  /** Report the state if it changed (call after the list changed, too). */
  check() {
    const viewing = !document.hidden && this.atBottom();
    if (viewing === this.viewing) return;
    this.viewing = viewing;
    this.report(viewing);
  }
}
