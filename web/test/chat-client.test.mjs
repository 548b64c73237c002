// The reconnecting client (web/static/chat-client.js) against real server
// processes: reconnect and recovery, dedupe by seq, gap filling, the outbox,
// a new epoch, token renewal, older history, messages that change (edits,
// deletions, reactions, replies) and read state across devices.

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { io } from "socket.io-client";

import { ChatClient, createSession } from "../static/chat-client.js";
import { SECRET_KEY, ServerProcess } from "./server.mjs";

const shared = new ServerProcess();
const started = [shared];
const clients = [];

before(() => shared.start());
after(async () => {
  for (const client of clients) client.close();
  for (const server of started) await server.stop();
  for (const server of started) assert.doesNotMatch(server.output, /Traceback/);
});

function newRoom(prefix = "node") {
  return `${prefix}-${randomBytes(5).toString("hex")}`;
}

async function waitFor(probe, what, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A user connected to `server` and joined to `roomId`, recording every event the room emits. */
async function user(server, name, roomId, { session, renewSession, invite } = {}) {
  const client = new ChatClient({
    io,
    session: session || await createSession(name, { baseUrl: server.url }),
    renewSession,
    url: `${server.url}/chat`,
    socketOptions: { transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 200 },
  });
  clients.push(client);
  const room = client.room(roomId, { invite });
  const seen = { seqs: [], reasons: [], resets: 0, joins: [] };
  room.on("messages", ({ messages, reason }) => {
    seen.seqs.push(...messages.map((message) => message.seq));
    seen.reasons.push(reason);
  });
  room.on("reset", ({ messages }) => {
    seen.resets += 1;
    seen.seqs = messages.map((message) => message.seq);
  });
  room.on("joined", (event) => seen.joins.push(event));
  client.connect();
  await waitFor(() => room.joined, `${name} to join`);
  return { client, room, seen };
}

const texts = (room) => room.messages.map((message) => message.text);

/** Drop the connection as a network failure would, and keep it down until `restore`. */
async function cut(client) {
  client.socket.io.reconnection(false);
  client.socket.io.engine.close();
  await waitFor(() => !client.socket.connected, "the connection to drop");
}

function restore(client) {
  client.socket.io.reconnection(true);
  client.socket.connect();
}

function assertHeldOnce(seen, room) {
  assert.equal(new Set(seen.seqs).size, seen.seqs.length, `each seq announced once: ${seen.seqs}`);
  const seqs = room.messages.map((message) => message.seq);
  assert.deepEqual(seqs, seqs.map((_, index) => seqs[0] + index), "held seqs have no gap");
}

test("own messages come back as ack and as event, and are held once", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  ana.room.send("one");
  ana.room.send("two");
  await waitFor(() => bob.room.messages.length === 2, "Ana's messages");
  bob.room.send("three");
  await waitFor(() => ana.room.messages.length === 3 && bob.room.messages.length === 3, "three messages");
  await new Promise((resolve) => setTimeout(resolve, 200)); // any repeat would have arrived by now
  for (const side of [ana, bob]) {
    assert.deepEqual(texts(side.room), ["one", "two", "three"]);
    assertHeldOnce(side.seen, side.room);
  }
  assert.equal(ana.room.outbox.entries.size, 0);

  const left = new Promise((resolve) => bob.room.on("presence", resolve));
  assert.equal(await ana.room.leave(), true);
  assert.deepEqual(await left, { user: ana.client.user, status: "left" });
  assert.deepEqual([...bob.room.members.keys()], [bob.client.user.id]);
  assert.equal(ana.client.rooms.has(id), false);
});

test("reconnect: what was missed comes with since, without repeats", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  bob.room.send("before");
  await waitFor(() => ana.room.messages.length === 1, "the first message");

  await cut(ana.client);
  assert.equal(ana.client.status, "reconnecting");
  for (const text of ["missed 1", "missed 2", "missed 3"]) bob.room.send(text);
  await waitFor(() => bob.room.messages.length === 4, "Bob's messages");
  assert.deepEqual(texts(ana.room), ["before"]);

  restore(ana.client);
  await waitFor(() => ana.seen.joins.length === 2, "the second join");
  assert.equal(ana.seen.joins[1].recovered, true);
  assert.deepEqual(texts(ana.room), ["before", "missed 1", "missed 2", "missed 3"]);
  assert.deepEqual(ana.seen.reasons.slice(-1), ["recovered"]);
  bob.room.send("after");
  await waitFor(() => ana.room.messages.length === 5, "a live message after the reconnect");
  assertHeldOnce(ana.seen, ana.room);
  assert.equal(ana.seen.resets, 1); // only the first join
});

test("outbox: messages written offline wait, then are stored once each, in order", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  const states = [];
  ana.room.on("outbox", ({ entry }) => states.push(`${entry.text}:${entry.state}`));

  await cut(ana.client);
  const first = ana.room.send("offline 1");
  const second = ana.room.send("offline 2");
  assert.deepEqual(states, ["offline 1:waiting", "offline 1:waiting", "offline 2:waiting", "offline 2:waiting"]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(bob.room.messages.length, 0);

  restore(ana.client);
  await waitFor(() => bob.room.messages.length === 2 && ana.room.outbox.entries.size === 0, "the outbox to drain");
  for (const side of [ana, bob]) assert.deepEqual(texts(side.room), ["offline 1", "offline 2"]);
  const stored = await shared.history(id, ana.client.session.token);
  assert.deepEqual(stored.map((message) => message.client_id), [first.clientId, second.clientId]);
});

test("outbox: a resend with a client_id the server already has is stored once", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  // The first send reached the server, but (say) its ack was lost with the connection.
  const [, first] = await ana.client.request("message", { room: id, text: "hello", client_id: "c-resend" });
  assert.equal(first.ok, true);
  const stored = new Promise((resolve) => ana.room.on("stored", resolve));
  ana.room.outbox.add("hello", "c-resend");
  const { message } = await stored;
  assert.equal(message.id, first.message.id);
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const side of [ana, bob]) assert.deepEqual(texts(side.room), ["hello"]);
  assert.equal((await shared.history(id, ana.client.session.token)).length, 1);
});

test("outbox: rate_limited is retried after retry_after with the same client_id", async () => {
  const server = new ServerProcess({ RATE_LIMIT: "1", RATE_WINDOW: "1" });
  started.push(server);
  await server.start();
  const id = newRoom();
  const ana = await user(server, "Ana", id);
  const errors = [];
  ana.room.on("outbox", ({ entry }) => entry.state === "retrying" && errors.push(entry.error.code));
  const entries = [ana.room.send("first"), ana.room.send("second")];
  await waitFor(() => ana.room.messages.length === 2, "both messages", 10000);
  assert.deepEqual(texts(ana.room), ["first", "second"]);
  assert.ok(errors.includes("rate_limited"), errors);
  const stored = await server.history(id, ana.client.session.token);
  assert.deepEqual(stored.map((message) => message.client_id), entries.map((entry) => entry.clientId));
});

test("a live message after a gap makes the client fetch the missing ones", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  bob.room.send("one");
  await waitFor(() => ana.room.messages.length === 1, "the first message");
  // Take Ana's connection out of the room behind the client's back, so live delivery skips her.
  await new Promise((resolve) => ana.client.socket.emit("leave", { room: id }, resolve));
  bob.room.send("two");
  bob.room.send("three");
  await waitFor(() => bob.room.messages.length === 3, "Bob's messages");
  await new Promise((resolve) => ana.client.socket.emit("join", { room: id }, resolve));
  bob.room.send("four");
  await waitFor(() => ana.room.messages.length === 4, "the gap to be filled");
  assert.deepEqual(texts(ana.room), ["one", "two", "three", "four"]);
  assert.ok(ana.seen.reasons.includes("gap"), ana.seen.reasons);
  assertHeldOnce(ana.seen, ana.room);
});

test("a new epoch (server restarted, history lost) resets the room", async () => {
  const server = new ServerProcess();
  started.push(server);
  await server.start();
  const id = newRoom();
  const ana = await user(server, "Ana", id);
  ana.room.send("old 1");
  ana.room.send("old 2");
  await waitFor(() => ana.room.messages.length === 2, "the old messages");
  const oldEpoch = ana.room.epoch;

  await server.stop();
  await server.start();
  await waitFor(() => ana.seen.joins.length === 2, "the join after the restart", 15000);
  assert.notEqual(ana.room.epoch, oldEpoch);
  assert.equal(ana.seen.resets, 2);
  assert.deepEqual(texts(ana.room), []);
  ana.room.send("new 1");
  await waitFor(() => ana.room.messages.length === 1, "a message in the new epoch");
  assert.deepEqual(ana.room.messages.map((message) => [message.seq, message.text]), [[1, "new 1"]]);
});

test("an expired token is renewed through renewSession", async () => {
  const header = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  const claims = { sub: "gone-user", name: "Old", exp: Math.floor(Date.now() / 1000) - 60 };
  const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const signature = createHmac("sha256", SECRET_KEY).update(`${header}.${body}`).digest("base64url");
  const expired = { token: `${header}.${body}.${signature}`, user: { id: "gone-user", name: "Old" } };
  let renewals = 0;
  const renewSession = () => {
    renewals += 1;
    return createSession("Ana", { baseUrl: shared.url });
  };
  const id = newRoom();
  const ana = await user(shared, "Ana", id, { session: expired, renewSession });
  assert.equal(renewals, 1);
  assert.equal(ana.client.user.name, "Ana");
  assert.notEqual(ana.client.user.id, "gone-user");
  assert.deepEqual([...ana.room.members.values()].map((member) => member.id), [ana.client.user.id]);
});

/** A token as an app's backend mints it with the shared secret, expiring in `seconds`. */
function minted(sub, seconds) {
  const now = Math.floor(Date.now() / 1000);
  const header = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");
  const body = Buffer.from(JSON.stringify({ sub, name: sub, iat: now, exp: now + seconds })).toString("base64url");
  const signature = createHmac("sha256", SECRET_KEY).update(`${header}.${body}`).digest("base64url");
  return { token: `${header}.${body}.${signature}`, user: { id: sub, name: sub } };
}

test("a token about to expire is refreshed on the same connection", async () => {
  const sub = `refreshing-${randomBytes(4).toString("hex")}`;
  let renewals = 0;
  const renewSession = async () => {
    renewals += 1;
    return minted(sub, 600);
  };
  const ana = await user(shared, sub, newRoom(), { session: minted(sub, 3), renewSession });
  const connection = ana.client.connection;
  await waitFor(() => renewals === 1 && ana.client.refreshing === null, "the refresh");
  await new Promise((resolve) => setTimeout(resolve, 3500)); // past the first token's expiry
  assert.equal(ana.client.connection, connection, "the same connection, never dropped");
  assert.equal(ana.client.status, "online");
  assert.equal(renewals, 1);
  ana.room.send("after the first token expired");
  await waitFor(() => texts(ana.room).includes("after the first token expired"), "the message stored");
});

test("an expired token's disconnect is followed by a reconnect with a new token", async () => {
  const sub = `expiring-${randomBytes(4).toString("hex")}`;
  const sessions = [minted("someone-else", 600), minted(sub, 600)]; // the first cannot refresh this user
  const renewSession = async () => sessions.shift();
  const ana = await user(shared, sub, newRoom(), { session: minted(sub, 2), renewSession });
  await waitFor(() => sessions.length === 0 && ana.client.status === "online" && ana.room.joined,
    "the reconnect with the new token", 8000);
  assert.equal(ana.client.user.id, sub);
});

test("notify and disconnected from the backend reach the client", async () => {
  const sub = `reached-${randomBytes(4).toString("hex")}`;
  const ana = await user(shared, sub, newRoom(), { session: minted(sub, 600) });
  const notices = [];
  const ended = [];
  ana.client.on("notify", (data) => notices.push(data));
  ana.client.on("disconnected", (event) => ended.push(event));
  await shared.backend(`/api/users/${sub}/events`, { data: { text: "your order shipped" } });
  await waitFor(() => notices.length === 1, "the notice");
  assert.deepEqual(notices, [{ text: "your order shipped" }]);
  await shared.backend(`/api/users/${sub}/disconnect`, { revoke: true });
  await waitFor(() => ended.length === 1 && ana.client.status === "offline", "the disconnect");
  assert.deepEqual(ended, [{ reason: "revoked" }]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(ana.client.status, "offline", "no reconnect after the backend ended the session");
});

test("older history comes a page at a time until has_more is false", async () => {
  const id = newRoom();
  for (let index = 1; index <= 60; index += 1) await shared.publish(id, `m${index}`);
  const ana = await user(shared, "Ana", id);
  assert.equal(ana.room.messages.length, 50);
  assert.equal(ana.room.hasOlder, true);
  const older = await ana.room.loadOlder();
  assert.deepEqual(older.map((message) => message.text), Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
  assert.equal(ana.room.hasOlder, false);
  assert.equal(ana.room.messages.length, 60);
  assertHeldOnce(ana.seen, ana.room);
});

// --- messages that change (v2) -------------------------------------------------

/** Record every request the client makes, with its ack. */
function recordRequests(client) {
  const requests = [];
  const request = client.request.bind(client);
  client.request = async (event, payload) => {
    const result = await request(event, payload);
    requests.push({ event, payload, ack: result[1] });
    return result;
  };
  return requests;
}

/** Deliver `payload` to the client as if the server had sent `event`. */
function deliver(client, event, payload) {
  for (const listener of client.socket.listeners(event)) listener(payload);
}

/** A message's state that changes can touch. */
const state = ({ seq, rev, text, deleted, reactions, edited_at: editedAt }) =>
  ({ seq, rev, text, deleted, reactions, edited: editedAt !== null });

/** Every "updated" event of a room, as [seq, reason] pairs. */
function recordUpdates(room) {
  const updates = [];
  room.on("updated", ({ messages, reason }) => updates.push(...messages.map((message) => [message.seq, reason])));
  return updates;
}

test("reconnect: edits, a deletion and reactions made meanwhile come from the join ack's updated, once each", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  for (const text of ["one", "two", "three", "four"]) bob.room.send(text);
  await waitFor(() => ana.room.messages.length === 4 && ana.room.rev === 4, "four messages");
  const requests = recordRequests(ana.client);
  const updates = recordUpdates(ana.room);

  await cut(ana.client);
  for (const [error, ack] of [
    await bob.room.edit(1, "one, edited"),
    await bob.room.edit(1, "one, edited again"), // two changes to one message: one update, its latest state
    await bob.room.remove(2),
    await bob.room.react(3, "👍", true),
    await bob.room.react(3, "🎉", true),
  ]) assert.equal(error === null && ack.ok, true, JSON.stringify(ack));
  bob.room.send("five");
  await waitFor(() => bob.room.messages.length === 5, "Bob's fifth message");

  restore(ana.client);
  await waitFor(() => ana.seen.joins.length === 2, "the second join");
  const join = requests.find((request) => request.event === "join");
  assert.deepEqual(join.payload.since, { seq: 4, epoch: ana.room.epoch, rev: 4 });
  // Why only `updated` can bring these: messages 1 to 3 are at or below since.seq (4), so they are
  // not in the ack's `messages` (only 5 is); Ana's connection was down while they changed, so no
  // `message_updated` reached her; and she fetches no history, holding 1 to 4 already. A client
  // that ignored `updated` would still show "one", "two" and no reactions: the assertions on
  // messages 1 to 3 below would fail. (A version-1 join, without `rev`, gets the same `messages`
  // and no `updated` at all, as the last assertions show.)
  assert.deepEqual(join.ack.messages.map((message) => message.seq), [5]);
  assert.deepEqual(join.ack.updated.map((message) => message.seq), [1, 2, 3]);
  assert.equal(join.ack.recovered, true);

  const [me, bobId] = [ana.client.user.id, bob.client.user.id];
  assert.deepEqual(ana.room.messages.map(state), [
    { seq: 1, rev: 6, text: "one, edited again", deleted: false, reactions: {}, edited: true },
    { seq: 2, rev: 7, text: "", deleted: true, reactions: {}, edited: false },
    { seq: 3, rev: 9, text: "three", deleted: false, reactions: { "👍": [bobId], "🎉": [bobId] }, edited: false },
    { seq: 4, rev: 4, text: "four", deleted: false, reactions: {}, edited: false },
    { seq: 5, rev: 10, text: "five", deleted: false, reactions: {}, edited: false },
  ]);
  assert.deepEqual(ana.room.messages.map(state), (await shared.history(id, ana.client.session.token)).map(state));
  assert.deepEqual(updates, [[1, "recovered"], [2, "recovered"], [3, "recovered"]]); // each change applied once
  assert.equal(ana.room.rev, 10);
  assert.equal(ana.seen.resets, 1);
  assertHeldOnce(ana.seen, ana.room);
  assert.notEqual(me, bobId);

  const v1 = io(`${shared.url}/chat`, { auth: { token: ana.client.session.token }, transports: ["websocket"] });
  const ack = await v1.timeout(5000).emitWithAck("join", { room: id, since: { seq: 4, epoch: ana.room.epoch } });
  v1.disconnect();
  assert.deepEqual([ack.recovered, ack.messages.map((message) => message.seq), "updated" in ack], [true, [5], false]);
});

test("live message_updated replaces by rev; stale and repeated copies change nothing", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  bob.room.send("hello");
  await waitFor(() => ana.room.messages.length === 1, "the message");
  const original = ana.room.messages[0];
  const updates = recordUpdates(ana.room);

  const [, edited] = await bob.room.edit(1, "hello, edited");
  assert.equal(bob.room.messages[0].text, "hello, edited"); // the ack is applied on its own
  await waitFor(() => ana.room.messages[0].text === "hello, edited", "the edit, live");
  assert.equal(ana.room.rev, edited.message.rev);
  deliver(ana.client, "message_updated", original); // an older state: ignored
  deliver(ana.client, "message_updated", edited.message); // the same state again: ignored
  deliver(ana.client, "message", original);
  assert.equal(ana.room.messages[0].text, "hello, edited");
  assert.deepEqual(updates, [[1, "live"]]);
  assert.equal(ana.room.rev, edited.message.rev);

  const [, bobs] = await bob.room.react(1, "👍", true);
  await waitFor(() => ana.room.messages[0].rev === bobs.message.rev, "Bob's reaction");
  const [, anas] = await ana.room.react(1, "👍", true);
  assert.deepEqual(ana.room.messages[0].reactions, { "👍": [bob.client.user.id, ana.client.user.id] });
  await waitFor(() => bob.room.messages[0].rev === anas.message.rev, "Ana's reaction at Bob's");
  await bob.room.remove(1);
  await waitFor(() => ana.room.messages[0].deleted, "the deletion");
  assert.deepEqual(state(ana.room.messages[0]), { seq: 1, rev: 5, text: "", deleted: true, reactions: {}, edited: true });
  assert.equal(ana.room.rev, 5);
  const [error, refused] = await ana.room.react(1, "👍", true);
  assert.equal(error, null);
  assert.equal(refused.error.code, "forbidden"); // a deleted message takes no reaction
});

test("a missed message_updated holds rev back, and the next join's updated makes up for it", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  ana.room.send("mine");
  bob.room.send("his");
  await waitFor(() => ana.room.messages.length === 2 && ana.room.rev === 2, "two messages");
  // The broadcasts of revs 3 and 4 never reach Ana (say, lost between instances).
  const listeners = ana.client.socket.listeners("message_updated");
  ana.client.socket.off("message_updated");
  ana.client.socket.on("message_updated", (message) => {
    if (message.rev > 4) for (const listener of listeners) listener(message);
  });
  const [, ack] = await ana.room.edit(1, "mine, edited"); // rev 3: Ana's own, acked
  assert.equal(ana.room.messages[0].text, "mine, edited"); // held from the ack
  await bob.room.react(2, "👀", true); // rev 4
  bob.room.send("later");
  await waitFor(() => ana.room.messages.length === 3, "a later message");
  assert.equal(ack.message.rev, 3);
  assert.equal(ana.room.rev, 2, "an ack never moves rev, and the room has not seen revs 3 and 4");
  assert.deepEqual(ana.room.messages[1].reactions, {});

  await cut(ana.client);
  restore(ana.client);
  await waitFor(() => ana.seen.joins.length === 2, "the second join");
  assert.deepEqual(ana.room.messages.map((message) => message.rev), [3, 4, 5]);
  assert.deepEqual(ana.room.messages[1].reactions, { "👀": [bob.client.user.id] });
  assert.equal(ana.room.rev, 5);
});

test("send with replyTo stores the quote; a reply to a deleted message is refused for good", async () => {
  const id = newRoom();
  const ana = await user(shared, "Ana", id);
  const bob = await user(shared, "Bob", id);
  ana.room.send("where do we meet?");
  await waitFor(() => bob.room.messages.length === 1, "the question");
  const entry = bob.room.send("at the station", { replyTo: 1 });
  assert.equal(entry.replyTo, 1);
  await waitFor(() => ana.room.messages.length === 2, "the reply");
  assert.deepEqual(ana.room.messages[1].reply_to, { seq: 1, user: ana.client.user, text: "where do we meet?" });
  assert.equal(ana.room.messages[0].reply_to, null);

  await ana.room.remove(1);
  const late = bob.room.send("too late", { replyTo: 1 });
  await waitFor(() => late.state === "failed", "the refusal");
  assert.equal(late.error.code, "invalid_payload");
  assert.deepEqual(ana.room.messages[1].reply_to.text, "where do we meet?", "a reply keeps its quote");
});

// --- read state across devices (v2) --------------------------------------------

test("read state: the join ack's unread, setViewing marks read, and the user's other connections follow", async () => {
  const id = newRoom();
  const bob = await user(shared, "Bob", id);
  for (const text of ["one", "two", "three"]) bob.room.send(text);
  await waitFor(() => bob.room.messages.length === 3, "Bob's messages");
  const ana = await user(shared, "Ana", id);
  const phone = await user(shared, "Ana", id, { session: ana.client.session });
  for (const side of [ana, phone]) assert.deepEqual([side.room.lastRead, side.room.unread], [0, 3]);
  await waitFor(() => bob.room.lastRead === 3 && bob.room.unread === 0, "sending to mark read");
  const home = new ChatClient({ io, session: ana.client.session, url: `${shared.url}/chat`,
    socketOptions: { transports: ["websocket"] } });
  clients.push(home);
  const heard = [];
  home.on("read", (event) => heard.push(event));
  home.connect();
  await waitFor(() => home.status === "online", "the page without rooms");
  const phoneReads = [];
  phone.room.on("read", (event) => phoneReads.push(event));
  const requests = recordRequests(ana.client);

  ana.room.setViewing(true);
  await waitFor(() => phone.room.lastRead === 3 && ana.room.lastRead === 3, "the mark on both connections");
  assert.deepEqual(requests.map(({ event, payload }) => [event, payload]), [["read", { room: id, seq: 3 }]]);
  assert.deepEqual([ana.room.unread, phone.room.unread], [0, 0]);
  assert.deepEqual(phoneReads, [{ lastRead: 3, unread: 0 }]);
  await waitFor(() => heard.length === 1, "the read event on a page that holds no room");
  assert.deepEqual(heard, [{ room: id, last_read: 3 }]);

  bob.room.send("four"); // while Ana looks: read at once, everywhere
  await waitFor(() => phone.room.lastRead === 4 && ana.room.lastRead === 4, "the new message read");
  assert.equal(phone.room.unread, 0);

  ana.room.setViewing(false);
  bob.room.send("five");
  bob.room.send("six");
  await waitFor(() => phone.room.unread === 2 && ana.room.unread === 2, "two unread");
  assert.deepEqual([ana.room.lastRead, phone.room.lastRead], [4, 4]);
  await bob.room.remove(6);
  await waitFor(() => phone.room.unread === 1 && ana.room.unread === 1, "a deleted message no longer unread");
  phone.room.send("mine");
  await waitFor(() => ana.room.lastRead === 7 && ana.room.unread === 0, "a message of one's own marks read");
  assert.equal(requests.filter(({ event }) => event === "read").length, 2, "no read while not viewing");

  const again = await user(shared, "Ana", id, { session: ana.client.session });
  assert.deepEqual([again.room.lastRead, again.room.unread], [7, 0]);
});

test("read receipts in a private room are kept on the member", async () => {
  const ana = await user(shared, "Ana", newRoom());
  const response = await fetch(`${shared.url}/api/rooms`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ana.client.session.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ private: true }),
  });
  const { room: id, invite } = await response.json();
  const anaRoom = ana.client.room(id);
  await waitFor(() => anaRoom.joined, "Ana in the private room");
  const bob = await user(shared, "Bob", id, { invite: invite.split("/").pop() });
  assert.equal(bob.room.members.get(ana.client.user.id).last_read, 0, "members in a private room carry last_read");
  const receipts = [];
  bob.room.on("read_receipt", (event) => receipts.push(event));
  bob.room.send("are you there?");
  await waitFor(() => anaRoom.messages.length === 1 && anaRoom.unread === 1, "Bob's message at Ana's");
  anaRoom.setViewing(true);
  await waitFor(() => receipts.some((event) => event.user.id === ana.client.user.id), "Ana's receipt");
  assert.deepEqual(receipts.find((event) => event.user.id === ana.client.user.id),
    { user: ana.client.user, last_read: 1 });
  assert.equal(bob.room.members.get(ana.client.user.id).last_read, 1);
});
