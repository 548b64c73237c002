"""Messages that change (contract v2): edit, delete, react and reply_to over real
connections; each change broadcast as `message_updated` and recovered after a reconnect."""

from __future__ import annotations

import asyncio

from tests.backend import call, signed_in
from tests.chat_client import ChatClient, new_room


def refused(ack: dict, code: str) -> bool:
    return ack["ok"] is False and ack["error"]["code"] == code


async def pair(make_client) -> tuple[str, ChatClient, ChatClient]:
    room = new_room("changes")
    ana, ben = await make_client("Ana"), await make_client("Ben")
    for client in (ana, ben):
        await client.join(room)
    return room, ana, ben


async def test_an_edit_reaches_everyone_with_the_whole_message(make_client):
    room, ana, ben = await pair(make_client)
    sent = await ana.send(room, "helo")
    assert (sent["rev"], sent["edited_at"], sent["deleted"], sent["reactions"], sent["reply_to"]) == \
        (sent["seq"], None, False, {}, None)
    ack = await ana.call("edit", {"room": room, "seq": sent["seq"], "text": "  hello  "})
    assert ack["ok"] and ack["message"]["text"] == "hello" and ack["message"]["edited_at"] >= sent["ts"]
    assert ack["message"]["rev"] == sent["rev"] + 1
    assert {key: value for key, value in ack["message"].items() if key not in ("text", "edited_at", "rev")} == \
        {key: value for key, value in sent.items() if key not in ("text", "edited_at", "rev")}
    for client in (ana, ben):
        await client.wait_for("message_updated", lambda got: got == [ack["message"]])
    history = await ben.call("history", {"room": room})
    assert history["messages"] == [ack["message"]]


async def test_only_the_author_edits_and_a_moderator_deletes(make_client, server_url):
    room, ana, ben = await pair(make_client)
    sent = await ana.send(room, "mine")
    assert refused(await ben.call("edit", {"room": room, "seq": sent["seq"], "text": "ours"}), "forbidden")
    assert refused(await ben.call("delete", {"room": room, "seq": sent["seq"]}), "forbidden")
    moderator = await signed_in(server_url, f"{room}-mod", "Mod")
    await call(server_url, "PUT", f"/api/rooms/{room}/members/{moderator.user['id']}", {"role": "moderator"})
    await moderator.join(room)
    ack = await moderator.call("delete", {"room": room, "seq": sent["seq"]})
    assert ack["ok"] and (ack["message"]["text"], ack["message"]["deleted"]) == ("", True)
    await ben.wait_for("message_updated", lambda got: got == [ack["message"]])
    assert refused(await ana.call("edit", {"room": room, "seq": sent["seq"], "text": "back"}), "forbidden")
    assert refused(await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": "👍", "on": True}),
                   "forbidden")
    again = await ana.call("delete", {"room": room, "seq": sent["seq"]})  # already deleted: nothing changes
    assert again == {"ok": True, "message": ack["message"]}
    await moderator.close()


async def test_reactions_toggle_and_repeat_nothing(make_client):
    room, ana, ben = await pair(make_client)
    sent = await ana.send(room, "react to me")
    first = await ben.call("react", {"room": room, "seq": sent["seq"], "emoji": "🎉", "on": True})
    second = await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": "🎉", "on": True})
    assert second["message"]["reactions"] == {"🎉": [ben.user["id"], ana.user["id"]]}
    twice = await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": "🎉", "on": True})
    assert twice == second
    off = await ben.call("react", {"room": room, "seq": sent["seq"], "emoji": "🎉", "on": False})
    assert off["message"]["reactions"] == {"🎉": [ana.user["id"]]}
    await ana.wait_for("message_updated", lambda got: [m["rev"] for m in got] ==
                       [first["message"]["rev"], second["message"]["rev"], off["message"]["rev"]])


async def test_a_reply_carries_a_quote_of_what_it_answers(make_client):
    room, ana, ben = await pair(make_client)
    original = await ana.send(room, "x" * 300)
    reply = await ben.send(room, "agreed", reply_to=original["seq"])
    assert reply["reply_to"] == {"seq": original["seq"], "user": ana.user, "text": "x" * 100}
    assert refused(await ben.call("message", {"room": room, "text": "?", "reply_to": 999}), "invalid_payload")


async def test_bad_change_payloads_get_the_contracts_codes(make_client):
    room, ana, _ = await pair(make_client)
    sent = await ana.send(room, "target")
    seq = sent["seq"]
    cases = [
        ("edit", {"room": room, "seq": seq}, "invalid_payload"),
        ("edit", {"room": room, "seq": "1", "text": "x"}, "invalid_payload"),
        ("edit", {"room": room, "seq": 0, "text": "x"}, "invalid_payload"),
        ("edit", {"room": room, "seq": seq, "text": "   "}, "invalid_payload"),
        ("edit", {"room": room, "seq": seq, "text": "x" * 4001}, "too_large"),
        ("edit", {"room": room, "seq": seq + 50, "text": "x"}, "not_found"),
        ("edit", {"room": "bad room", "seq": seq, "text": "x"}, "invalid_room"),
        ("delete", {"room": room}, "invalid_payload"),
        ("react", {"room": room, "seq": seq, "emoji": "a b", "on": True}, "invalid_payload"),
        ("react", {"room": room, "seq": seq, "emoji": "", "on": True}, "invalid_payload"),
        ("react", {"room": room, "seq": seq, "emoji": "x" * 17, "on": True}, "invalid_payload"),
        ("react", {"room": room, "seq": seq, "emoji": "👍", "on": 1}, "invalid_payload"),
        ("react", {"room": new_room("elsewhere"), "seq": seq, "emoji": "👍", "on": True}, "not_joined"),
        ("message", {"room": room, "text": "x", "reply_to": -1}, "invalid_payload"),
        ("read", {"room": room, "seq": -1}, "invalid_payload"),
    ]
    for event, payload, code in cases:
        ack = await ana.call(event, payload)
        assert refused(ack, code), (event, payload, ack)
    assert (await ana.call("history", {"room": room}))["messages"] == [sent]  # nothing changed


async def test_a_message_takes_at_most_twenty_different_emoji(make_client):
    room, ana, ben = await pair(make_client)
    sent = await ana.send(room, "popular")
    for n in range(20):
        assert (await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": f"e{n}", "on": True}))["ok"]
    assert refused(await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": "e20", "on": True}),
                   "forbidden")
    assert (await ben.call("react", {"room": room, "seq": sent["seq"], "emoji": "e3", "on": True}))["ok"]


async def test_a_reaction_storm_is_rate_limited_like_messages(start_server, make_client):
    server = start_server(RATE_LIMIT="5")
    room = new_room("storm")
    ana = await make_client("Ana", url=server.url)
    await ana.join(room)
    sent = await ana.send(room, "storm target")
    acks = [await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": f"e{n}", "on": True})
            for n in range(6)]
    assert [ack["ok"] for ack in acks] == [True, True, True, True, False, False]
    assert acks[-1]["error"]["code"] == "rate_limited" and acks[-1]["error"]["retry_after"] > 0


async def test_a_muted_user_can_no_longer_edit_or_react(make_client, server_url):
    room, ana, _ = await pair(make_client)
    sent = await ana.send(room, "before the mute")
    status, _ = await call(server_url, "PUT", f"/api/rooms/{room}/mutes/{ana.user['id']}", {"seconds": 60})
    assert status == 200
    assert refused(await ana.call("edit", {"room": room, "seq": sent["seq"], "text": "x"}), "forbidden")
    assert refused(await ana.call("react", {"room": room, "seq": sent["seq"], "emoji": "👍", "on": True}),
                   "forbidden")
    assert (await ana.call("delete", {"room": room, "seq": sent["seq"]}))["ok"]  # taking back is still allowed


async def test_the_backend_edits_and_deletes_any_message(make_client, server_url):
    room, ana, ben = await pair(make_client)
    sent = await ana.send(room, "needs fixing")
    status, edited = await call(server_url, "PATCH", f"/api/rooms/{room}/messages/{sent['seq']}", {"text": "fixed"})
    assert status == 200 and edited["text"] == "fixed" and edited["edited_at"] is not None
    await ben.wait_for("message_updated", lambda got: got == [edited])
    status, deleted = await call(server_url, "DELETE", f"/api/rooms/{room}/messages/{sent['seq']}")
    assert status == 200 and deleted["deleted"] is True
    assert (await call(server_url, "DELETE", f"/api/rooms/{room}/messages/999"))[0] == 404
    assert (await call(server_url, "PATCH", f"/api/rooms/{room}/messages/x", {"text": "y"}))[0] == 400
    assert (await call(server_url, "PATCH", f"/api/rooms/{room}/messages/1", {"text": " "}))[0] == 400
    assert (await call(server_url, "PATCH", f"/api/rooms/{room}/messages/1", {"text": "y"}, key="wrong"))[0] == 401


async def test_a_reconnect_recovers_each_change_once_in_rev_order(make_client):
    room, ana, ben = await pair(make_client)
    first, second, third = [await ana.send(room, text) for text in ("one", "two", "three")]
    seen = await ben.join(room)  # where Ben's view stands
    await ben.close()
    await ana.call("edit", {"room": room, "seq": first["seq"], "text": "one, edited"})
    await ana.call("react", {"room": room, "seq": second["seq"], "emoji": "👍", "on": True})
    await ana.call("delete", {"room": room, "seq": second["seq"]})
    fourth = await ana.send(room, "four")
    back = await make_client(session=ben.session)
    since = {"seq": seen["seq"], "epoch": seen["epoch"], "rev": seen["rev"]}
    ack = await back.join(room, since=since)
    assert ack["recovered"] and ack["messages"] == [fourth] and ack["rev"] == fourth["rev"]
    assert [(m["seq"], m["text"], m["deleted"]) for m in ack["updated"]] == \
        [(first["seq"], "one, edited", False), (second["seq"], "", True)]
    assert ack["updated"][1]["reactions"] == {} and third["seq"] not in [m["seq"] for m in ack["updated"]]
    version_1 = await back.join(room, since={"seq": seen["seq"], "epoch": seen["epoch"]})
    assert "updated" not in version_1 and version_1["messages"] == [fourth]


async def test_changes_pipelined_after_messages_keep_their_order(make_client):
    room, ana, ben = await pair(make_client)
    sent = await ana.send(room, "base")
    reacts = await asyncio.gather(*(ana.call("react", {"room": room, "seq": sent["seq"], "emoji": f"r{n}", "on": True})
                                    for n in range(15)))
    revs = [ack["message"]["rev"] for ack in reacts]
    assert sorted(revs) == list(range(sent["rev"] + 1, sent["rev"] + 16))
    await ben.wait_for("message_updated", lambda got: len(got) == 15)
    assert [m["rev"] for m in ben.received["message_updated"]] == sorted(revs)  # delivered in rev order
