// The reconnecting client (web/static/chat-client.js) against real server
// processes: reconnect and recovery, dedupe by seq, gap filling, the outbox,
// a new epoch, token renewal and older history.

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
async function user(server, name, roomId, { session, renewSession } = {}) {
  const client = new ChatClient({
    io,
    session: session || await createSession(name, { baseUrl: server.url }),
    renewSession,
    url: `${server.url}/chat`,
    socketOptions: { transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 200 },
  });
  clients.push(client);
  const room = client.room(roomId);
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
