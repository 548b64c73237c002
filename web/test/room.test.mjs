// One Room (web/static/client/room.js) against a scripted connection, for the
// orderings a real server produces only by chance: events that arrive between a
// join and its ack, stale copies after it, a rev that skips, a change that
// overtakes the history page of its message.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Room } from "../static/client/room.js";

/** A ChatClient stand-in: requests wait until the test answers them. */
class ScriptedClient {
  constructor() {
    this.user = { id: "me", name: "Me" };
    this.connection = 1;
    this.rooms = new Map();
    this.pending = [];
  }

  request(event, payload) {
    return new Promise((resolve) => this.pending.push({ event, payload, resolve }));
  }

  isCurrent(connection) {
    return connection === this.connection;
  }

  /** Answer the oldest pending `event`; resolves once the room has handled the answer. */
  async answer(event, ack) {
    const index = this.pending.findIndex((request) => request.event === event);
    assert.notEqual(index, -1, `no pending ${event}`);
    const [request] = this.pending.splice(index, 1);
    request.resolve([null, { ok: true, ...ack }]);
    await new Promise((resolve) => setImmediate(resolve));
    return request.payload;
  }
}

function message(seq, rev, extra = {}) {
  return { id: `m${seq}`, room: "r", seq, rev, user: { id: "other", name: "Other" }, text: `m${seq}`, ts: 0,
    client_id: null, edited_at: null, deleted: false, reactions: {}, reply_to: null, ...extra };
}

function joinAck(messages, { seq, rev, updated, recovered = false, lastRead = 0, unread = 0 }) {
  return { room: "r", epoch: "e1", seq, rev, messages, recovered, members: [], role: null, last_read: lastRead,
    unread, ...(updated && { updated }) };
}

function newRoom() {
  const client = new ScriptedClient();
  const room = new Room(client, "r", null);
  const seen = { updated: [], messages: [], reads: [] };
  room.on("updated", ({ messages, reason }) => seen.updated.push(...messages.map((m) => [m.seq, m.rev, reason])));
  room.on("messages", ({ messages, reason }) => seen.messages.push(...messages.map((m) => [m.seq, reason])));
  room.on("read", (event) => seen.reads.push(event));
  return { client, room, seen };
}

test("events during a join: those the ack covers change nothing, newer ones apply and move rev", async () => {
  const { client, room, seen } = newRoom();
  room.join();
  // Sent while the server read the room at rev 5: message 2's edit (rev 5) is in the ack already;
  // message 3 (rev 6) and an edit of message 1 (rev 7) came after.
  room.receiveChange(message(2, 5, { text: "m2 edited" }));
  room.receive(message(3, 6));
  room.receiveChange(message(1, 7, { text: "m1 edited" }));
  await client.answer("join", joinAck([message(1, 1), message(2, 5, { text: "m2 edited" })], { seq: 2, rev: 5 }));
  assert.deepEqual(room.messages.map((m) => [m.seq, m.rev, m.text]),
    [[1, 7, "m1 edited"], [2, 5, "m2 edited"], [3, 6, "m3"]]);
  assert.equal(room.rev, 7);
  assert.equal(room.unread, 1, "message 3 came after the ack's count");

  room.receiveChange(message(1, 4, { text: "an old state" })); // late and stale: ignored
  room.receive(message(3, 6));
  assert.equal(room.messages[0].text, "m1 edited");
  assert.equal(room.rev, 7);
  room.receiveChange(message(2, 9, { text: "after a lost event" })); // rev 8 never came
  assert.equal(room.messages[1].text, "after a lost event");
  assert.equal(room.rev, 7, "rev stays where everything before it is known");

  room.disconnected();
  client.connection += 2;
  room.join();
  const payload = client.pending.at(-1).payload;
  assert.deepEqual(payload.since, { seq: 3, epoch: "e1", rev: 7 });
  room.receive(message(4, 10)); // after the ack's rev 9: a new message and its edit
  room.receiveChange(message(4, 11, { text: "m4 edited" }));
  await client.answer("join", joinAck([], {
    seq: 3, rev: 9, recovered: true,
    updated: [message(2, 9, { text: "after a lost event" }), message(3, 8, { reactions: { "👍": ["me"] } })],
  }));
  assert.deepEqual(room.messages.map((m) => [m.rev, m.text]), [[7, "m1 edited"], [9, "after a lost event"],
    [8, "m3"], [11, "m4 edited"]]);
  assert.equal(room.rev, 11);
  // The first join is a reset (its held messages come in "reset"); after it, each change once.
  assert.deepEqual(seen.updated, [[2, 9, "live"], [3, 8, "recovered"], [4, 11, "live"]]);
  assert.deepEqual(seen.messages, [[4, "live"]]);
});

test("a join ack's updated never adds a message; a change that overtakes its history page is kept", async () => {
  const { client, room, seen } = newRoom();
  room.join();
  await client.answer("join", joinAck([message(3, 3), message(4, 4)], { seq: 4, rev: 4 }));
  assert.equal(room.hasOlder, true);
  const older = room.loadOlder();
  // Message 2 is edited after the server read the page, and the edit arrives first.
  room.receiveChange(message(2, 5, { text: "m2 edited" }));
  assert.equal(room.messages.length, 2, "a change to a message not held adds nothing");
  await client.answer("history", { messages: [message(1, 1), message(2, 2)], has_more: false });
  await older;
  assert.deepEqual(room.messages.map((m) => [m.seq, m.text]), [[1, "m1"], [2, "m2 edited"], [3, "m3"], [4, "m4"]]);
  assert.equal(room.rev, 5);
  assert.deepEqual(seen.updated, []);
});

test("unread: from the ack, up with messages from others, down when the mark moves or one is deleted", async () => {
  const { client, room, seen } = newRoom();
  room.join();
  await client.answer("join", joinAck([message(1, 1), message(2, 2), message(3, 3)],
    { seq: 3, rev: 3, lastRead: 1, unread: 2 }));
  assert.deepEqual(seen.reads, [{ lastRead: 1, unread: 2 }]);
  room.receive(message(4, 4, { user: { id: "me", name: "Me" } })); // one's own: not unread
  room.receive(message(5, 5));
  assert.equal(room.unread, 3);
  room.receiveChange(message(2, 6, { deleted: true, text: "" }));
  assert.equal(room.unread, 2);
  room.readEvent({ room: "r", last_read: 4 });
  assert.deepEqual([room.lastRead, room.unread], [4, 1]);
  room.readEvent({ room: "r", last_read: 2 }); // never back
  assert.deepEqual([room.lastRead, room.unread], [4, 1]);

  room.setViewing(true);
  assert.deepEqual(client.pending.map(({ event, payload }) => [event, payload]), [["read", { room: "r", seq: 5 }]]);
  room.receive(message(6, 7));
  room.receive(message(7, 8));
  assert.equal(client.pending.length, 1, "one read request at a time");
  await client.answer("read", { last_read: 5 });
  assert.deepEqual([room.lastRead, room.unread], [5, 2]);
  assert.deepEqual(client.pending.map(({ payload }) => payload.seq), [7], "then one for what came meanwhile");
  await client.answer("read", { last_read: 7 });
  assert.deepEqual([room.lastRead, room.unread], [7, 0]);
  assert.equal(client.pending.length, 0);
  room.setViewing(false);
  room.receive(message(8, 9));
  assert.deepEqual([client.pending.length, room.unread], [0, 1]);
});

test("the mark from a read event during a join is kept over the ack's older one", async () => {
  const { client, room } = newRoom();
  room.join();
  room.readEvent({ room: "r", last_read: 3 }); // another device read while the server answered
  await client.answer("join", joinAck([message(1, 1), message(2, 2), message(3, 3), message(4, 4)],
    { seq: 4, rev: 4, lastRead: 1, unread: 3 }));
  assert.deepEqual([room.lastRead, room.unread], [3, 1]);
});
