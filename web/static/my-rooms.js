// The home page's "Your rooms": the rooms the user belongs to or has read in
// (`GET /api/me/rooms`), most recent first, each with an unread badge that
// follows what the user reads on any tab or device.

const ROLE_TEXT = { owner: "owner", moderator: "moderator" };
const BADGE_MAX = 99; // the server counts up to 100: past 99 the badge says "99+"

/** What a badge says for `unread` messages: "", "1" … "99", "99+". */
export function badgeText(unread) {
  if (!(unread > 0)) return "";
  return unread > BADGE_MAX ? `${BADGE_MAX}+` : String(unread);
}

export class MyRooms {
  /**
   * @param {object} options
   * @param {HTMLUListElement} options.list  the `<ul id="my-rooms">`
   * @param {HTMLElement} options.empty  said while the list is empty
   * @param {() => void} options.refetch  ask the server again (counts it alone knows)
   */
  constructor({ list, empty, refetch }) {
    Object.assign(this, { list, empty, refetch });
    this.rooms = new Map(); // room id -> {room, private, title, role, seq, last_read, unread}
  }

  /** Show the server's answer, updating rows in place so a focused link keeps its focus. */
  replace(rooms) {
    const items = new Map([...this.list.children].map((item) => [item.dataset.room, item]));
    this.rooms = new Map(rooms.map((room) => [room.room, { ...room }]));
    const next = rooms.map((room) => {
      const item = items.get(room.room) || roomItem(room);
      fill(item, this.rooms.get(room.room));
      return item;
    });
    const order = (children) => [...children].map((item) => item.dataset.room).join("\n");
    if (order(this.list.children) !== order(next)) this.list.replaceChildren(...next);
    this.empty.hidden = rooms.length > 0;
  }

  /** The user read `room` up to `lastRead` (here or elsewhere): update its badge now. */
  read(room, lastRead) {
    const shown = this.rooms.get(room);
    if (!shown) {
      this.refetch(); // a public room read for the first time joins the list
      return;
    }
    if (lastRead <= shown.last_read) return;
    shown.last_read = lastRead;
    if (lastRead >= shown.seq) shown.unread = 0;
    else this.refetch(); // some are still unread: only the server knows how many
    const item = [...this.list.children].find((element) => element.dataset.room === room);
    if (item) fill(item, shown);
  }

  clear() {
    this.replace([]);
  }
}

function roomItem({ room }) {
  const item = document.createElement("li");
  item.dataset.room = room;
  const link = document.createElement("a");
  link.href = `/chat/${encodeURIComponent(room)}`;
  const name = document.createElement("span");
  name.className = "room-name";
  const role = document.createElement("span");
  role.className = "role";
  const unread = document.createElement("span");
  unread.className = "unread";
  const badge = document.createElement("span");
  badge.className = "unread-badge";
  const label = document.createElement("span");
  label.className = "visually-hidden";
  unread.append(badge, label);
  link.append(name, role, unread);
  item.append(link);
  return item;
}

function fill(item, room) {
  item.querySelector(".room-name").textContent = room.title || (room.private ? "Private room" : `#${room.room}`);
  const role = item.querySelector(".role");
  role.textContent = ROLE_TEXT[room.role] || "";
  role.hidden = !ROLE_TEXT[room.role];
  const text = badgeText(room.unread);
  item.querySelector(".unread-badge").textContent = text;
  item.querySelector(".unread .visually-hidden").textContent = room.unread === 1 ? " unread message"
    : " unread messages";
  item.querySelector(".unread").hidden = !text;
  item.classList.toggle("has-unread", Boolean(text));
}
