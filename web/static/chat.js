// The chat page of one room: connect, join (and re-join after every
// reconnect, catching up from the last seq seen), show messages, members and
// who is typing, and send with an outbox that survives disconnections.

import { ensureSession, renewSession, showText } from "./session.js";
import { MessageList } from "./messages.js";
import { MemberList } from "./members.js";
import { Outbox } from "./outbox.js";
import { TypingDisplay, TypingNotifier } from "./typing.js";

const ACK_TIMEOUT_MS = 10000;
const HISTORY_PAGE = 50;
const MAX_HISTORY_LIMIT = 100; // the contract's largest `history` page
const JOIN_RETRY_MS = 3000;

const page = document.getElementById("chat");
const room = page.dataset.room;
const inviteToken = page.dataset.invite || null;
const $ = (id) => document.getElementById(id);

// Shared with the list components so that a new name (after an expired token) shows everywhere.
const identity = { user: null, token: null };

const state = {
  epoch: null, // of the room's history; seq numbers only compare within one epoch
  joined: false, // this connection has an ok join ack
  olderExhausted: false, // a history page said has_more: false
  connection: 0, // counts connects, so that a late join ack of an old connection is ignored
  liveDuringJoin: null, // message events that arrive between join and its ack
  stickyError: false, // an error that must stay (forbidden) until a join succeeds
  // The invite is needed until we are a member; a member re-joins without it.
  joinInvite: inviteToken,
};

const list = new MessageList($("messages"), identity);
const members = new MemberList($("members"), $("member-count"), identity);
const typingDisplay = new TypingDisplay($("typing"));
let socket = null;

// ---- status and errors -------------------------------------------------

function setStatus(text) {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${text.replace("…", "")}`;
}

/** Not connected: `active` means the client reconnects by itself; otherwise the server sent us away. */
function setLostStatus() {
  setStatus(socket.active ? "reconnecting…" : "offline");
}

/** Show an error; a transient one is cleared by the next success. */
function showError(message, transient = false) {
  showText($("error"), message);
  state.stickyError = !transient;
}

function clearError({ sticky = false } = {}) {
  if (state.stickyError && !sticky) return;
  showText($("error"), "");
  state.stickyError = false;
}

function joinErrorText(error) {
  if (error.code === "forbidden") return "You are not a member of this room";
  if (error.code === "invalid_room") return `“${room}” is not a valid room name.`;
  return error.message || "Could not join the room.";
}

// ---- talking to the server ----------------------------------------------

/** Emit with an ack and a timeout; resolves to [error or null, ack]. */
function request(event, payload) {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      if (err) resolve([err, null]);
      else if (!ack || typeof ack !== "object") resolve([new Error("malformed ack"), null]);
      else resolve([null, ack]);
    });
  });
}

function joinPayload() {
  const payload = { room };
  if (state.joinInvite) payload.invite = state.joinInvite;
  // Ask only for what we missed, if our seq numbers still mean something.
  if (list.size && state.epoch) payload.since = { seq: list.highestSeq, epoch: state.epoch };
  return payload;
}

/** Whether `connection` (a value of state.connection) is still the live one. */
function isCurrent(connection) {
  return connection === state.connection && socket.connected;
}

/** Join again after `delay` ms, unless a reconnect or disconnect superseded `connection` by then. */
function rejoinLater(connection, delay) {
  setTimeout(() => isCurrent(connection) && join(), delay);
}

async function join() {
  const connection = state.connection;
  state.liveDuringJoin = [];
  const [err, ack] = await request("join", joinPayload());
  if (!isCurrent(connection)) return; // superseded by a reconnect
  const live = state.liveDuringJoin;
  state.liveDuringJoin = null;
  if (err) {
    // No answer: the connection is probably half dead; try again while it lasts.
    rejoinLater(connection, JOIN_RETRY_MS);
    return;
  }
  if (!ack.ok) return joinRefused(ack.error || { code: "internal" }, connection);
  joined(ack, live);
}

function joined(ack, live) {
  if (ack.recovered && ack.epoch === state.epoch) {
    list.merge(ack.messages);
  } else {
    // History was lost or we are too far behind: start over from the latest,
    // keeping live messages that arrived before the ack (they are newer).
    list.replace([...ack.messages, ...live]);
    state.olderExhausted = false;
  }
  state.epoch = ack.epoch;
  state.joined = true;
  state.joinInvite = null;
  members.replace(ack.members);
  clearError({ sticky: true });
  setComposerEnabled(true);
  updateLoadOlder();
  outbox.setReady(true);
}

function joinRefused(error, connection) {
  const retryable = error.code === "internal" || error.code === "rate_limited";
  showError(joinErrorText(error), retryable);
  if (retryable) {
    const delay = error.code === "rate_limited" ? (Number(error.retry_after) || 1) * 1000 : JOIN_RETRY_MS;
    rejoinLater(connection, delay);
    return;
  }
  // forbidden, invalid_room, invalid_payload: nothing here can fix it.
  members.clear();
  setComposerEnabled(false);
}

function sameRoom(payload) {
  return payload && typeof payload === "object" && payload.room === room;
}

function onMessage(message) {
  if (!sameRoom(message)) return;
  if (state.liveDuringJoin) state.liveDuringJoin.push(message);
  const highest = list.highestSeq;
  list.merge([message]);
  // Delivery is at-least-once but may skip (say, a broker hiccup between instances):
  // a seq jump means messages are missing, so fetch exactly those from history.
  if (state.joined && highest !== null && message.seq > highest + 1) fillGap(highest, message.seq);
  if (message.user) {
    typingDisplay.forget(message.user.id);
    if (message.user.id === identity.user.id) outbox.confirm(message);
  }
  updateLoadOlder();
}

function onPresence(event) {
  if (!sameRoom(event) || !event.user) return;
  if (event.status === "joined") members.add(event.user);
  else if (event.status === "left") {
    members.remove(event.user);
    typingDisplay.forget(event.user.id);
  }
}

function onTyping(event) {
  if (!sameRoom(event) || !event.user || event.user.id === identity.user.id) return;
  typingDisplay.update(event.user, Boolean(event.typing));
}

function onConnect() {
  state.connection += 1;
  setStatus("online");
  join();
}

function onDisconnect() {
  state.connection += 1;
  state.joined = false;
  outbox.setReady(false);
  typingNotifier.reset();
  typingDisplay.clear();
  setLostStatus();
}

async function onConnectError(err) {
  if (err && err.data && err.data.code === "unauthorized") {
    // The token expired or the server's key changed: a new name gets a new token.
    setStatus("offline");
    showError("Your session has expired: choose a name to continue.", true);
    signIn(await renewSession());
    clearError();
    socket.auth = { token: identity.token };
    socket.connect();
    return;
  }
  setLostStatus();
}

// ---- composer, typing, history ---------------------------------------------

const typingNotifier = new TypingNotifier((typing) => {
  if (state.joined) socket.emit("typing", { room, typing }, () => {});
});

const outbox = new Outbox({
  room,
  list,
  emit: (payload) => request("message", payload),
  onError: showError,
  onConfirmed: () => clearError(),
  onRejected: (entry, error) => {
    showError(error.message || "The message was refused.", true);
    // Give the text back so the user can shorten or fix it.
    const input = $("text");
    if (!input.value) input.value = entry.text;
  },
});

function setComposerEnabled(enabled) {
  $("text").disabled = !enabled;
  $("send").disabled = !enabled;
}

function onSubmit(event) {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  typingNotifier.stop();
  outbox.add(text, identity.user);
  input.focus();
}

function updateLoadOlder() {
  const lowest = list.lowestSeq;
  // seq starts at 1, so a list starting at 1 has nothing older.
  $("load-older").hidden = !state.joined || state.olderExhausted || lowest === null || lowest <= 1;
}

async function fillGap(after, before) {
  const limit = Math.min(MAX_HISTORY_LIMIT, before - after - 1);
  const [err, ack] = await request("history", { room, before_seq: before, limit });
  if (!err && ack.ok) list.merge(ack.messages);
}

async function loadOlder() {
  const button = $("load-older");
  button.disabled = true;
  const [err, ack] = await request("history", { room, before_seq: list.lowestSeq, limit: HISTORY_PAGE });
  button.disabled = false;
  if (err) showError("Could not load older messages; try again.", true);
  else if (!ack.ok) showError((ack.error && ack.error.message) || "Could not load older messages.", true);
  else {
    list.merge(ack.messages);
    if (!ack.has_more) state.olderExhausted = true;
  }
  updateLoadOlder();
}

// ---- invite -----------------------------------------------------------------

function showInvite() {
  if (!inviteToken) return;
  $("invite-link").value = `${location.origin}/invite/${inviteToken}`;
  $("invite").hidden = false;
  $("copy-invite").addEventListener("click", copyInvite);
}

async function copyInvite() {
  const input = $("invite-link");
  try {
    await navigator.clipboard.writeText(input.value);
    $("copy-result").textContent = "Copied.";
  } catch {
    // No clipboard permission (or not a secure context): let the user copy it.
    input.select();
    $("copy-result").textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
  }
}

// ---- start --------------------------------------------------------------------

function signIn(session) {
  identity.user = session.user;
  identity.token = session.token;
  members.render();
}

function connect() {
  socket = io("/chat", { auth: { token: identity.token } });
  window.chatSocket = socket; // a test hook: browser tests cut the connection through it
  socket.on("connect", onConnect);
  socket.on("disconnect", onDisconnect);
  socket.on("connect_error", onConnectError);
  socket.on("message", onMessage);
  socket.on("presence", onPresence);
  socket.on("typing", onTyping);
}

async function main() {
  showInvite();
  $("composer").addEventListener("submit", onSubmit);
  $("text").addEventListener("input", (event) => typingNotifier.input(event.target.value.trim() !== ""));
  $("load-older").addEventListener("click", loadOlder);
  // The page starts with the status "connecting…" (see chat.html).
  signIn(await ensureSession());
  connect();
}

main();
