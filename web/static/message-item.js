// One message as DOM: author and time; the quote it replies to; its text (or
// "message deleted"), marked "edited" once changed; its reactions; and what
// the user may do with it. All user text goes in as text, never as markup.

import { appendLinkified } from "./linkify.js";
import { renderActions } from "./message-actions.js";
import { renderReactions } from "./reactions.js";
import { renderQuote } from "./reply.js";

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/**
 * Fill `item` (an `<li class="message">`) with the parts of the stored `message`.
 * @param {HTMLLIElement} item
 * @param {object} message
 * @param {object} state  userId, role, confirming, and the open editor / picker element, if any
 * @param {object} on  handlers: goTo(seq), react(emoji, on), reply(), edit(), pick(), askDelete(), delete(), keep()
 */
export function fillStored(item, message, state, on) {
  item.classList.toggle("deleted", Boolean(message.deleted));
  item.classList.toggle("edited", Boolean(message.edited_at) && !message.deleted);
  const parts = [meta(message)];
  if (message.deleted) {
    parts.push(tombstone());
  } else {
    if (message.reply_to) parts.push(renderQuote(message.reply_to, on.goTo));
    parts.push(state.editor || body(message));
    parts.push(renderReactions(message, state.userId, on.react));
    parts.push(renderActions(message, { ...state, picking: Boolean(state.picker) },
      { reply: on.reply, react: on.pick, edit: on.edit, askDelete: on.askDelete, delete: on.delete, keep: on.keep }));
    parts.push(state.picker);
  }
  item.replaceChildren(...parts.filter(Boolean));
}

/** An outbox entry (not stored yet): author, the quote it replies to, text, and a line for its state. */
export function fillUnsent(item, { user, text, replyTo }, goTo) {
  item.classList.add("message", "mine");
  const state = document.createElement("p");
  state.className = "send-state";
  const quote = replyTo ? renderQuote(replyTo, goTo) : null;
  item.replaceChildren(...[meta({ user, ts: null }), quote, body({ text }), state].filter(Boolean));
}

/** `<div class="meta"><span class="author"/> <time/></div>` */
function meta(message) {
  const element = document.createElement("div");
  element.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.user ? message.user.name : "";
  element.append(author, " ");
  if (Number.isFinite(message.ts)) element.append(timeElement(message.ts));
  return element;
}

/** The text, then "edited" beside it once it was changed. */
function body(message) {
  const element = document.createElement("div");
  element.className = "body";
  const text = document.createElement("div");
  text.className = "text";
  appendLinkified(text, message.text);
  element.append(text);
  if (message.edited_at) {
    const edited = document.createElement("span");
    edited.className = "edited-mark";
    edited.textContent = "edited";
    edited.title = `Edited ${new Date(message.edited_at).toLocaleString()}`;
    element.append(edited);
  }
  return element;
}

function tombstone() {
  const element = document.createElement("div");
  element.className = "tombstone";
  element.textContent = "message deleted";
  return element;
}

export function timeElement(ts) {
  const date = new Date(ts);
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  time.textContent = timeFormat.format(date);
  return time;
}
