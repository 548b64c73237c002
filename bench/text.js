// The text of every benchmark message: "<sent at> <sender> <n>", i.e. the send time (ms since the
// epoch, the same clock in every generator process), the sending member's number, and how many
// messages that member had sent (1, 2, ...), which gives the send order for servers without `seq`.
'use strict';

// String(number) reads back as the very same number, so sender and receivers agree on the window.
const formatText = (sentAt, sender, n) => `${sentAt} ${sender} ${n}`;

/** [sentAt, sender, n] from a text, or from the start of a longer string that begins with one. */
function parseText(text) {
  const [sentAt, sender, n] = text.split(' ', 3);
  return [Number.parseFloat(sentAt), Number.parseInt(sender, 10), Number.parseInt(n, 10)];
}

module.exports = { formatText, parseText };
