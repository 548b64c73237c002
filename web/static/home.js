// Home page: go to a public room, create a private one and pass on its
// invite, see the public rooms with people online, one's own rooms with what
// is unread there (kept live over a connection of the user's own), and change
// one's name.

import { ChatClient } from "./chat-client.js";
import { copyField } from "./clipboard.js";
import { MyRooms } from "./my-rooms.js";
import { api, apiErrorMessage, changeName, ensureSession, loadSession, renewSession, showIdentity, showText } from "./session.js";

const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const ROOMS_REFRESH_MS = 5000;
const REFETCH_AFTER_MS = 300; // read events come in bursts: ask once
const $ = (id) => document.getElementById(id);

function goToRoom(event) {
  event.preventDefault();
  const room = $("room-name").value.trim().replace(/^#/, "");
  if (!ROOM_PATTERN.test(room)) {
    showText($("room-error"), "A room name is 1 to 64 characters: letters, digits, “-” and “_” only (no spaces).");
    $("room-name").focus();
    return;
  }
  showText($("room-error"), "");
  location.assign(`/chat/${encodeURIComponent(room)}`);
}

function createRoom(token) {
  return api("/api/rooms", { method: "POST", body: { private: true }, token });
}

async function createPrivateRoom() {
  const button = $("create-private");
  showText($("create-error"), "");
  button.disabled = true;
  try {
    let session = await ensureSession();
    let answer = await createRoom(session.token);
    if (answer.status === 401) {
      // The stored token expired or the server's key changed: get a new one and retry once.
      session = await renewSession();
      answer = await createRoom(session.token);
    }
    if (answer.status !== 201 || !answer.data || !answer.data.invite) {
      showText($("create-error"), apiErrorMessage(answer.data, `Could not create the room (${answer.status}).`));
      return;
    }
    showPrivateRoom(answer.data.invite);
  } catch {
    showText($("create-error"), "Could not reach the server.");
  } finally {
    button.disabled = false;
  }
}

function showPrivateRoom(invitePath) {
  $("private-link").value = new URL(invitePath, location.origin).href;
  $("open-private").href = invitePath;
  $("copy-private-result").textContent = "";
  $("private-result").hidden = false;
  $("copy-private").focus();
}

/** Update the list in place where possible, so a focused link keeps its focus. */
function renderRooms(rooms) {
  const list = $("rooms");
  const shown = [...list.children].map((item) => item.dataset.room);
  const items = new Map([...list.children].map((item) => [item.dataset.room, item]));
  const next = rooms.map(({ room, online }) => {
    const item = items.get(room) || roomItem(room);
    item.querySelector(".online").textContent = `${online} online`;
    return item;
  });
  if (shown.join("\n") !== rooms.map(({ room }) => room).join("\n")) list.replaceChildren(...next);
  $("rooms-empty").hidden = rooms.length > 0;
}

function roomItem(room) {
  const item = document.createElement("li");
  item.dataset.room = room;
  const link = document.createElement("a");
  link.href = `/chat/${encodeURIComponent(room)}`;
  const name = document.createElement("span");
  name.className = "room-name";
  name.textContent = `#${room}`;
  const online = document.createElement("span");
  online.className = "online";
  link.append(name, online);
  item.append(link);
  return item;
}

async function refreshRooms() {
  if (document.hidden) return;
  try {
    const { status, data } = await api("/api/rooms");
    if (status === 200 && data && Array.isArray(data.rooms)) renderRooms(data.rooms);
  } catch {
    // The list is a convenience; the next refresh tries again.
  }
}

const myRooms = new MyRooms({ list: $("my-rooms"), empty: $("my-rooms-empty"), refetch: () => refetchSoon() });
let client = null; // the user's own connection: `read`, `room_added` and `removed` arrive on it

async function refreshMyRooms() {
  if (!client || document.hidden) return;
  try {
    const { status, data } = await api("/api/me/rooms", { token: client.session.token });
    // A 401 is left to the connection, which renews the token and says so ("session").
    if (status === 200 && data && Array.isArray(data.rooms)) myRooms.replace(data.rooms);
  } catch {
    // The next refresh tries again.
  }
}

let refetchTimer = null;
function refetchSoon() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(refreshMyRooms, REFETCH_AFTER_MS);
}

/** Connect as `session`'s user (closing the connection of a previous one) and list their rooms. */
function connectAs(session) {
  client?.close();
  myRooms.clear();
  $("my-rooms-card").hidden = !session;
  if (!session) return;
  client = new ChatClient({ io: window.io, session, renewSession: () => renewSession() });
  client.on("read", ({ room, last_read: lastRead }) => myRooms.read(room, lastRead));
  client.on("room_added", refetchSoon);
  client.on("removed", refetchSoon);
  client.on("session", (renewed) => {
    showIdentity(renewed);
    refetchSoon();
  });
  client.on("status", (status) => status === "online" && refetchSoon()); // catch up on what was missed
  client.connect();
  refreshMyRooms();
}

async function onChangeName() {
  const session = await changeName();
  if (session) connectAs(session);
  $("change-name").focus();
}

function refreshAll() {
  refreshRooms();
  refreshMyRooms();
}

function main() {
  const session = loadSession();
  showIdentity(session);
  $("change-name").hidden = false;
  $("change-name").addEventListener("click", onChangeName);
  $("room-form").addEventListener("submit", goToRoom);
  $("create-private").addEventListener("click", createPrivateRoom);
  $("copy-private").addEventListener("click", () => copyField($("private-link"), $("copy-private-result")));
  refreshRooms();
  setInterval(refreshAll, ROOMS_REFRESH_MS);
  document.addEventListener("visibilitychange", refreshAll);
  if (session) connectAs(session);
  // A first visit starts with the name form open.
  else ensureSession().then(connectAs);
}

main();
