// Copying a link with one click, with a fallback where the clipboard API is refused.

/** Copy the value of the `<input>` and say how it went in `result`. */
export async function copyField(input, result) {
  try {
    await navigator.clipboard.writeText(input.value);
    result.textContent = "Copied. Paste it into a message to the person you invite.";
  } catch {
    // No clipboard permission (or not a secure context): let the user copy it.
    input.focus();
    input.select();
    result.textContent = "Press Ctrl+C (⌘C on a Mac) to copy the selected link.";
  }
}
