// The chat page of one room: the reconnecting client (chat-client.js) does the
// talking; this module shows what it reports (messages and their changes,
// members, who has seen what, typing, the connection) and hands it what the
// user writes, edits, deletes and reacts with, and whether the user is looking.

import { ChatClient } from "./chat-client.js";
import { copyField } from "./clipboard.js";
import { Composer } from "./composer.js";
import { MemberList } from "./members.js";
import { MessageView } from "./message-view.js";
import { Reader } from "./reader.js";
import { ReplyBar } from "./reply.js";
import { SeenBy } from "./seen-by.js";
import { ensureSession, renewSession, showIdentity, showText } from "./session.js";
import { TypingDisplay, TypingNotifier } from "./typing.js";
import { ViewingWatch } from "./viewing.js";

const $ = (id) => document.getElementById(id);
const page = $("chat");
const roomId = page.dataset.room;
const invite = page.dataset.invite || null;

const STATUS_TEXT = { connecting: "connecting…", online: "online", reconnecting: "reconnecting…", offline: "offline" };
const CONNECTION_TEXT = {
  reconnecting: "Connection lost. Reconnecting… Messages you write are kept and sent once it is back.",
  offline: "You are offline. Messages you write are kept and sent once the connection is back.",
};

/** Show an error above the conversation; an empty message hides it. */
function showError(message) {
  showText($("error"), message);
}

function sentence(text) {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? "" : "."}`;
}

function joinErrorText(error) {
  // not a member, banned, or too many rooms: the server's words say which
  if (error.code === "forbidden") return sentence(error.message || "you may not use this room");
  if (error.code === "invalid_room") return `“${roomId}” is not a valid room name.`;
  if (error.code === "internal" || error.code === "rate_limited") return "Could not join the room yet; retrying…";
  return error.message || "Could not join the room.";
}

const ENDED_TEXT = {
  kicked: "You were removed from this room by a moderator.",
  banned: "You were banned from this room.",
  removed: "You are no longer a member of this room.",
  revoked: "You were signed out: sign in again in the app to continue.",
  disconnected: "Your session was ended by the app.",
};
const NOTICE_MS = 8000;
const ACTION_TEXT = { kick: "removed", ban: "banned", unban: "unbanned", mute: "muted", unmute: "unmuted" };

/** The room is over for this user: say why, and leave nothing that looks alive. */
function showEnded(reason) {
  $("ended-text").textContent = ENDED_TEXT[reason] || "You can no longer use this room.";
  $("ended").hidden = false;
}

let noticeTimer = null;
/** A passing notice above the conversation: the app's `notify`, or a moderation in the room. */
function showNotice(text) {
  showText($("notice"), text);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => showText($("notice"), ""), NOTICE_MS);
}

function noticeText(data) {
  if (data && typeof data.text === "string") return data.text;
  return `Notice: ${JSON.stringify(data)}`;
}

function moderationText({ action, user, by, until }) {
  const when = until ? ` until ${new Date(until).toLocaleTimeString()}` : "";
  return `${user.name} was ${ACTION_TEXT[action] || action} by ${by.name}${when}.`;
}

/** Why a change was refused, as a sentence; null when it was accepted. */
function failureText([error, ack]) {
  if (error) return "The server did not answer; try again.";
  return ack.ok ? null : sentence(ack.error?.message || "refused");
}

function showStatus(status) {
  $("status").textContent = STATUS_TEXT[status];
  $("status").className = `status ${status}`;
  showText($("connection"), CONNECTION_TEXT[status] || "");
}

function showInvite() {
  if (!invite) return;
  $("invite-link").value = `${location.origin}/invite/${invite}`;
  $("invite").hidden = false;
  $("copy-invite").addEventListener("click", () => copyField($("invite-link"), $("copy-result")));
}

/** The session expired (or the server's key changed): ask for a name again. */
async function renewExpiredSession() {
  const session = await renewSession(() => showError("Your session has expired: choose a name to continue."));
  showError("");
  return session;
}

function start(session) {
  const client = new ChatClient({ io: window.io, session, renewSession: renewExpiredSession });
  const room = client.room(roomId, { invite });
  const members = new MemberList($("members"), $("member-count"), client, {
    role: () => room.role,
    moderate: async (action, user, extra) => {
      const [error, ack] = await room.moderate(action, user.id, extra);
      if (error) showError("The server did not answer; try again.");
      else if (!ack.ok) showError(ack.error.message);
    },
  });
  const typingDisplay = new TypingDisplay($("typing"));
  const typingNotifier = new TypingNotifier((typing) => room.typing(typing));
  const replyBar = new ReplyBar($("reply-bar"), () => $("text").focus());
  const reportFailure = (answer) => showError(failureText(answer) || "");
  const view = new MessageView($("messages"), {
    user: () => client.user,
    role: () => room.role,
    maxLength: Number(page.dataset.maxLength),
    onDismiss: (clientId) => {
      room.outbox.remove(clientId);
      view.removeEntry(clientId);
    },
    onReply: (message) => {
      replyBar.set(message);
      $("text").focus();
    },
    onEdit: async (seq, text) => failureText(await room.edit(seq, text)),
    onDelete: async (seq) => reportFailure(await room.remove(seq)),
    onReact: async (seq, emoji, on) => reportFailure(await room.react(seq, emoji, on)),
    onMissing: () => showNotice("The original is further up: scroll up to load older messages."),
  });
  const seenBy = new SeenBy($("messages"), () => client.user.id, () => view.latest());
  const reader = new Reader({
    scroller: $("scroller"),
    list: $("messages"),
    jump: $("jump-latest"),
    olderStatus: $("older-status"),
    hasOlder: () => room.joined && room.hasOlder,
    loadOlder: () => room.loadOlder(),
    itemFor: (seq) => view.itemFor(seq),
  });
  const viewing = new ViewingWatch({
    scroller: $("scroller"),
    atBottom: () => reader.atBottom(),
    report: (looking) => room.setViewing(looking),
  });
  const composer = new Composer({
    form: $("composer"),
    input: $("text"),
    button: $("send"),
    counter: $("counter"),
    maxLength: Number(page.dataset.maxLength),
    onSend: (text) => {
      typingNotifier.stop();
      const replyTo = replyBar.seq;
      replyBar.clear();
      if (replyTo === null) room.send(text);
      else room.send(text, { replyTo });
    },
    onInput: (hasText) => typingNotifier.input(hasText),
    onEscape: () => replyBar.cancel(),
  });
  /** The list changed: the "seen by" line follows the latest message, and the bottom may be in view. */
  const listChanged = () => {
    seenBy.render();
    viewing.check();
  };
  let shownRole = null;

  client.on("status", (status) => {
    showStatus(status);
    if (status === "online") return;
    typingNotifier.reset();
    typingDisplay.clear();
  });
  client.on("session", (renewed) => {
    showIdentity(renewed);
    members.render();
  });
  client.on("error", (error) => showError(error.message));
  client.on("notify", (data) => showNotice(noticeText(data)));
  client.on("disconnected", ({ reason }) => {
    showEnded(reason);
    members.clear();
    composer.setEnabled(false);
  });

  room.on("reset", ({ messages }) => {
    view.reset(messages);
    if (replyBar.seq !== null && !view.itemFor(replyBar.seq)) replyBar.clear();
    reader.reset();
    listChanged();
  });
  room.on("messages", ({ messages, reason }) => {
    const before = reader.before();
    view.add(messages);
    const fresh = reason === "older" ? [] : messages.filter((message) => message.user?.id !== client.user.id);
    reader.after(before, { fresh });
    for (const message of messages) if (message.user) typingDisplay.forget(message.user.id);
    listChanged();
  });
  room.on("updated", ({ messages }) => {
    const before = reader.before();
    view.update(messages);
    reader.after(before);
    if (messages.some((message) => message.deleted && message.seq === replyBar.seq)) {
      replyBar.clear();
      showNotice("The message you were replying to was deleted.");
    }
    listChanged();
  });
  room.on("read_receipt", ({ user, last_read: lastRead }) => seenBy.mark(user, lastRead));
  room.on("outbox", ({ entry }) => {
    const before = reader.before();
    const isNew = !view.unsent.has(entry.clientId);
    view.showEntry(entry);
    reader.after(before, { mine: isNew });
    if (entry.state === "failed" && entry.error?.code === "too_large") composer.restore(entry.text);
    listChanged();
  });
  room.on("stored", ({ entry }) => view.removeEntry(entry.clientId));
  room.on("joined", () => {
    const first = $("text").disabled && !document.activeElement?.matches("input, textarea, button, a");
    showError("");
    composer.setEnabled(true);
    if (first) $("text").focus();
    if (room.role !== shownRole) {
      shownRole = room.role; // owners and moderators may delete any message
      view.refreshAll();
    }
    listChanged();
  });
  room.on("join-error", ({ error, retrying }) => {
    showError(joinErrorText(error));
    if (retrying) return;
    // forbidden, invalid_room, invalid_payload: nothing here can fix it.
    members.clear();
    composer.setEnabled(false);
  });
  room.on("members", ({ members: users }) => {
    members.replace(users);
    seenBy.members(users);
    $("online-summary").textContent = users.length ? `${users.length} online` : "";
  });
  room.on("presence", ({ user, status }) => status === "left" && typingDisplay.forget(user.id));
  room.on("moderation", (event) => showNotice(moderationText(event)));
  room.on("removed", ({ reason }) => {
    showEnded(reason);
    members.clear();
    typingDisplay.clear();
    composer.setEnabled(false);
  });
  room.on("typing", ({ user, typing }) => typingDisplay.update(user, typing));

  // The browser knows first when the network is back: do not wait for the next backoff step.
  window.addEventListener("online", () => client.reconnectNow());
  client.connect();
  window.chatSocket = client.socket; // a test hook: browser tests cut the connection through it
}

async function main() {
  showInvite();
  // The page starts with the status "connecting…" (see chat.html).
  start(await ensureSession());
}

main();
