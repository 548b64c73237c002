"""Every client event of the contract, over real Socket.IO connections."""

from __future__ import annotations

import asyncio

import pytest

from tests.chat_client import NAMESPACE, new_room


async def test_join_answers_position_history_and_members(make_client):
    ana, room = await make_client("Ana"), new_room()
    ack = await ana.join(room)
    assert ack["ok"] is True and ack["room"] == room
    assert ack["seq"] == 0 and ack["messages"] == [] and ack["recovered"] is False
    assert isinstance(ack["epoch"], str) and ack["epoch"]
    assert ack["members"] == [ana.user]


async def test_messages_reach_everyone_in_the_room_with_gapless_seq(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    await ben.join(room)
    first = await ana.send(room, "  hello  ")
    second = await ben.send(room, "hi Ana", client_id="c-1")
    assert (first["seq"], second["seq"]) == (1, 2)
    assert first["text"] == "hello" and first["room"] == room and first["user"] == ana.user
    assert first["client_id"] is None and second["client_id"] == "c-1"
    assert isinstance(first["ts"], int) and first["id"] != second["id"]
    for client in (ana, ben):  # the sender's own connection gets it too
        got = await client.wait_for("message", lambda m: len(m) >= 2)
        assert [m["seq"] for m in got] == [1, 2]
        assert got == [first, second]


async def test_messages_stay_in_their_room(make_client):
    ana, ben = await make_client("Ana"), await make_client("Ben")
    room_a, room_b = new_room(), new_room()
    await ana.join(room_a)
    await ben.join(room_b)
    await ana.send(room_a, "only for a")
    await ben.send(room_b, "only for b")
    await ben.wait_for("message", lambda m: len(m) == 1)
    await asyncio.sleep(0.2)
    assert [m["text"] for m in ben.received["message"]] == ["only for b"]
    assert [m["text"] for m in ana.received["message"]] == ["only for a"]


async def test_join_returns_the_latest_50_messages_oldest_first(make_client):
    ana, room = await make_client("Ana"), new_room()
    await ana.join(room)
    for n in range(60):
        await ana.send(room, f"m{n}")
    ben = await make_client("Ben")
    ack = await ben.join(room)
    assert [m["seq"] for m in ack["messages"]] == list(range(11, 61))
    assert ack["seq"] == 60 and ack["recovered"] is False


async def test_join_since_recovers_exactly_the_missed_messages(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    first = await ben.join(room)
    await ana.send(room, "seen")
    await ben.close()
    for n in range(70):  # more than a plain join returns
        await ana.send(room, f"missed {n}")
    ben_again = await make_client(session=ben.session)
    ack = await ben_again.join(room, since={"seq": 1, "epoch": first["epoch"]})
    assert ack["recovered"] is True
    assert [m["seq"] for m in ack["messages"]] == list(range(2, 72))


async def test_join_since_with_a_stale_epoch_is_not_recovered(make_client):
    ana, room = await make_client("Ana"), new_room()
    await ana.join(room)
    await ana.send(room, "one")
    ack = await ana.join(room, since={"seq": 0, "epoch": "some-old-epoch"})
    assert ack["recovered"] is False
    assert [m["text"] for m in ack["messages"]] == ["one"]


async def test_a_repeated_client_id_is_stored_and_delivered_once(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    await ben.join(room)
    first = await ana.send(room, "once", client_id="retry-me")
    again = await ana.send(room, "once", client_id="retry-me")
    assert again == first
    await ana.send(room, "next")
    got = await ben.wait_for("message", lambda m: any(x["text"] == "next" for x in m))
    assert [m["text"] for m in got] == ["once", "next"]
    assert [m["seq"] for m in got] == [1, 2]


async def test_the_same_client_id_from_another_user_is_a_new_message(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    await ben.join(room)
    a = await ana.send(room, "x", client_id="same")
    b = await ben.send(room, "y", client_id="same")
    assert (a["seq"], b["seq"]) == (1, 2)


async def test_history_pages_backwards(make_client):
    ana, room = await make_client("Ana"), new_room()
    await ana.join(room)
    for n in range(1, 8):
        await ana.send(room, f"m{n}")
    page = await ana.call("history", {"room": room, "limit": 3})
    assert page["ok"] and [m["seq"] for m in page["messages"]] == [5, 6, 7] and page["has_more"] is True
    page = await ana.call("history", {"room": room, "before_seq": 5, "limit": 3})
    assert [m["seq"] for m in page["messages"]] == [2, 3, 4] and page["has_more"] is True
    page = await ana.call("history", {"room": room, "before_seq": 2, "limit": 3})
    assert [m["seq"] for m in page["messages"]] == [1] and page["has_more"] is False
    page = await ana.call("history", {"room": room, "before_seq": 1})
    assert page["messages"] == [] and page["has_more"] is False


async def test_history_of_a_public_room_needs_no_join(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    await ana.send(room, "visible")
    page = await ben.call("history", {"room": room})
    assert [m["text"] for m in page["messages"]] == ["visible"]


async def test_typing_reaches_the_others_but_not_the_typist(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    await ben.join(room)
    assert await ana.call("typing", {"room": room, "typing": True}) == {"ok": True}
    got = await ben.wait_for("typing", lambda t: len(t) == 1)
    assert got == [{"room": room, "user": ana.user, "typing": True}]
    await asyncio.sleep(0.2)
    assert ana.received["typing"] == []


async def test_presence_counts_users_not_connections(make_client):
    ana, room = await make_client("Ana"), new_room()
    await ana.join(room)
    ben_tab1 = await make_client("Ben")
    ben_tab2 = await make_client(session=ben_tab1.session)
    ack = await ben_tab1.join(room)
    assert {u["id"] for u in ack["members"]} == {ana.user["id"], ben_tab1.user["id"]}
    await ana.wait_for("presence", lambda p: len(p) == 1)
    ack = await ben_tab2.join(room)
    assert len(ack["members"]) == 2  # Ben once, however many tabs
    await ben_tab1.close()  # one tab of two: Ben is still here
    members = await ana.call("members", {"room": room})
    assert {u["id"] for u in members["members"]} == {ana.user["id"], ben_tab1.user["id"]}
    await ben_tab2.close()  # the last tab: Ben has left
    await ana.wait_for("presence", lambda p: len(p) == 2)
    assert ana.received["presence"] == [
        {"room": room, "user": ben_tab1.user, "status": "joined"},
        {"room": room, "user": ben_tab1.user, "status": "left"},
    ]
    members = await ana.call("members", {"room": room})
    assert members == {"ok": True, "members": [ana.user]}


async def test_leave_stops_delivery_and_announces_left(make_client):
    ana, ben, room = await make_client("Ana"), await make_client("Ben"), new_room()
    await ana.join(room)
    await ben.join(room)
    assert await ben.call("leave", {"room": room}) == {"ok": True}
    await ana.wait_for("presence", lambda p: p and p[-1]["status"] == "left")
    await ana.send(room, "after ben left")
    await ana.wait_for("message", lambda m: len(m) == 1)
    await asyncio.sleep(0.2)
    assert ben.received["message"] == []
    refused = await ben.call("message", {"room": room, "text": "still here?"})
    assert refused["error"]["code"] == "not_joined"


async def test_a_typing_flood_is_refused_and_mostly_not_broadcast(make_client):
    ana, ben = await make_client("Ana"), await make_client("Ben")
    room = new_room("typing-flood")
    await ana.join(room)
    await ben.join(room)
    acks = [await ana.call("typing", {"room": room, "typing": n % 2 == 0}) for n in range(40)]
    refused = [ack for ack in acks if not ack["ok"]]
    assert refused and all(ack["error"]["code"] == "rate_limited" and ack["error"]["retry_after"] > 0
                           for ack in refused)
    await ben.wait_for("typing", lambda got: len(got) == 40 - len(refused))
    assert len(refused) >= 40 - 10 - 5  # a burst of 10, then about one a second


async def test_sending_or_typing_without_joining_is_not_joined(make_client):
    ana, room = await make_client("Ana"), new_room()
    for event, payload in (("message", {"room": room, "text": "hi"}), ("typing", {"room": room, "typing": True})):
        ack = await ana.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "not_joined" and ack["error"]["message"]


async def test_message_length_limits(make_client):
    ana, room = await make_client("Ana"), new_room()
    await ana.join(room)
    assert (await ana.call("message", {"room": room, "text": "   "}))["error"]["code"] == "invalid_payload"
    assert (await ana.call("message", {"room": room, "text": "x" * 4001}))["error"]["code"] == "too_large"
    ok = await ana.call("message", {"room": room, "text": "x" * 4000})
    assert ok["ok"] and len(ok["message"]["text"]) == 4000


@pytest.mark.parametrize("event, payload", [
    ("join", {"room": "bad room"}),
    ("join", {"room": ""}),
    ("join", {"room": "x" * 65}),
    ("message", {"room": "../etc", "text": "hi"}),
    ("history", {"room": "ä"}),
    ("members", {"room": "a b"}),
    ("leave", {"room": "a/b"}),
    ("typing", {"room": "no!", "typing": True}),
])
async def test_room_ids_of_the_wrong_form_are_invalid_room(make_client, event, payload):
    ana = await make_client("Ana")
    ack = await ana.call(event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_room"


@pytest.mark.parametrize("event, args", [
    ("join", ()),
    ("join", ("lobby",)),
    ("join", ([1, 2],)),
    ("join", (None,)),
    ("join", ({"room": 5},)),
    ("join", ({},)),
    ("join", ({"room": "lobby", "since": {"seq": "3", "epoch": "e"}},)),
    ("join", ({"room": "lobby", "since": {"seq": -1, "epoch": "e"}},)),
    ("join", ({"room": "lobby", "since": "yesterday"},)),
    ("join", ({"room": "lobby"}, {"room": "lobby"})),
    ("message", ({"room": "lobby"},)),
    ("message", ({"room": "lobby", "text": 5},)),
    ("message", ({"room": "lobby", "text": "hi", "client_id": "x" * 65},)),
    ("message", ({"room": "lobby", "text": "hi", "client_id": 7},)),
    ("typing", ({"room": "lobby", "typing": "yes"},)),
    ("typing", ({"room": "lobby", "typing": 1},)),
    ("history", ({"room": "lobby", "limit": 0},)),
    ("history", ({"room": "lobby", "limit": 101},)),
    ("history", ({"room": "lobby", "limit": 2.5},)),
    ("history", ({"room": "lobby", "before_seq": True},)),
    ("members", ("lobby",)),
    ("no-such-event", ({"room": "lobby"},)),
])
async def test_malformed_payloads_get_invalid_payload_and_keep_the_connection(make_client, event, args):
    ana, ben = await make_client("Ana"), await make_client("Ben")
    await ben.join("lobby")
    ack = await ana.call(event, *args)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload" and ack["error"]["message"]
    # still connected and usable, and nobody else heard a thing
    assert (await ana.join("lobby"))["ok"]
    await asyncio.sleep(0.1)
    assert ben.received["message"] == [] and ben.received["typing"] == []


@pytest.mark.parametrize("field", ["text", "client_id"])
async def test_lone_surrogates_are_not_unicode_and_get_invalid_payload(make_client, field):
    """JSON can carry "\\ud800"; stored, it would break stricter clients' parsers for good."""
    ana = await make_client("Ana")
    await ana.join("lobby")
    ack = await ana.call("message", {"room": "lobby", "text": "hi", field: "a\ud800b"})
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"
    assert "unicode" in ack["error"]["message"].lower()


async def test_the_rate_limit_holds_across_connections_of_one_user(start_server, make_client):
    server = start_server(RATE_LIMIT="5")
    ana = await make_client("Ana", url=server.url)
    ana_tab2 = await make_client(url=server.url, session=ana.session)
    room = new_room()
    await ana.join(room)
    await ana_tab2.join(room)
    for n in range(3):
        await ana.send(room, f"a{n}")
    for n in range(2):
        await ana_tab2.send(room, f"b{n}")
    refused = await ana_tab2.call("message", {"room": room, "text": "one too many"})
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    assert 0 < refused["error"]["retry_after"] <= 10
    other = await make_client("Ben", url=server.url)
    await other.join(room)
    assert (await other.call("message", {"room": room, "text": "Ben is not limited"}))["ok"]


async def test_concurrent_sends_get_distinct_gapless_seq(make_client):
    room = new_room()
    clients = [await make_client(f"U{n}") for n in range(5)]
    for client in clients:
        await client.join(room)
    acks = await asyncio.gather(*(c.call("message", {"room": room, "text": f"{i}-{k}"})
                                  for i, c in enumerate(clients) for k in range(5)))
    assert sorted(a["message"]["seq"] for a in acks) == list(range(1, 26))


async def test_a_users_messages_keep_their_order(make_client):
    ana, room = await make_client("Ana"), new_room()
    await ana.join(room)
    for n in range(20):  # fire without waiting for acks
        await ana.sio.emit("message", {"room": room, "text": str(n)}, namespace=NAMESPACE)
    got = await ana.wait_for("message", lambda m: len(m) == 20)
    assert [m["text"] for m in got] == [str(n) for n in range(20)]
    assert [m["seq"] for m in got] == list(range(1, 21))
