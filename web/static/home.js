// Home page: choose a name, go to a public room, create a private one,
// and see which public rooms are active.

import {
  api, apiErrorMessage, askForName, ensureSession, loadSession, renewSession, showIdentity, showText,
} from "./session.js";

const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const ROOMS_REFRESH_MS = 10000;

function showCurrentName(session) {
  document.getElementById("current-name").textContent = session
    ? `You appear as “${session.user.name}”.`
    : "No name chosen yet.";
  document.getElementById("change-name").textContent = session ? "Change name" : "Choose a name";
}

async function changeName() {
  const asking = renewSession();
  showCurrentName(null);
  showCurrentName(await asking);
}

function showError(id, message) {
  showText(document.getElementById(id), message);
}

function createRoom(token) {
  return api("/api/rooms", { method: "POST", body: { private: true }, token });
}

function goToRoom(event) {
  event.preventDefault();
  const room = document.getElementById("room-name").value.trim();
  if (!ROOM_PATTERN.test(room)) {
    showError("room-error",
      "A room name is 1 to 64 characters: letters, digits, “-” and “_” only (no spaces).");
    return;
  }
  showError("room-error", "");
  location.assign(`/chat/${encodeURIComponent(room)}`);
}

async function createPrivateRoom() {
  const button = document.getElementById("create-private");
  showError("create-error", "");
  button.disabled = true;
  try {
    let session = await ensureSession();
    showCurrentName(session);
    let answer = await createRoom(session.token);
    if (answer.status === 401) {
      // The stored token expired or the server's key changed: get a new one and retry once.
      session = await renewSession();
      showCurrentName(session);
      answer = await createRoom(session.token);
    }
    if (answer.status !== 201 || !answer.data || !answer.data.invite) {
      showError("create-error", apiErrorMessage(answer.data, `Could not create the room (${answer.status}).`));
      return;
    }
    // The invite page lets the creator in and shows the link to pass on.
    location.assign(answer.data.invite);
  } catch {
    showError("create-error", "Could not reach the server.");
  } finally {
    button.disabled = false;
  }
}

function renderRooms(rooms) {
  const list = document.getElementById("rooms");
  list.replaceChildren(...rooms.map(({ room, online }) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/chat/${encodeURIComponent(room)}`;
    link.textContent = `#${room}`;
    const count = document.createElement("span");
    count.className = "muted";
    count.textContent = ` ${online} online`;
    item.append(link, count);
    return item;
  }));
  document.getElementById("rooms-empty").hidden = rooms.length > 0;
}

async function refreshRooms() {
  try {
    const { status, data } = await api("/api/rooms");
    if (status === 200 && data && Array.isArray(data.rooms)) renderRooms(data.rooms);
  } catch {
    // The list is a convenience; the next refresh tries again.
  }
}

function main() {
  const session = loadSession();
  showIdentity(session);
  showCurrentName(session);
  document.getElementById("change-name").addEventListener("click", changeName);
  document.getElementById("room-form").addEventListener("submit", goToRoom);
  document.getElementById("create-private").addEventListener("click", createPrivateRoom);
  refreshRooms();
  setInterval(refreshRooms, ROOMS_REFRESH_MS);
  // A first visit starts with the name form open.
  if (!session) askForName().then(showCurrentName);
}

main();
