"""Read state across devices (contract v2): `read` marks, heard by every connection of the
user; unread counts in join acks and the user's room list; receipts in private rooms."""

from __future__ import annotations

from tests.backend import call, signed_in
from tests.chat_client import new_room


async def test_a_read_mark_reaches_every_connection_of_the_user_and_moves_forward_only(make_client):
    room = new_room("reads")
    ana, ben = await make_client("Ana"), await make_client("Ben")
    phone = await make_client(session=ana.session)  # Ana's second device, which never joins
    await ben.join(room)
    sent = [await ben.send(room, f"m{n}") for n in range(5)]
    ack = await ana.join(room)
    assert (ack["last_read"], ack["unread"]) == (0, 5)
    assert await ana.call("read", {"room": room, "seq": sent[2]["seq"]}) == {"ok": True, "last_read": 3}
    for client in (ana, phone):
        await client.wait_for("read", lambda got: got == [{"room": room, "last_read": 3}])
    assert await ana.call("read", {"room": room, "seq": 1}) == {"ok": True, "last_read": 3}  # never back
    assert await ana.call("read", {"room": room, "seq": 999}) == {"ok": True, "last_read": 5}  # to the latest
    await phone.wait_for("read", lambda got: got[-1] == {"room": room, "last_read": 5} and len(got) == 2)
    again = await phone.join(room)
    assert (again["last_read"], again["unread"]) == (5, 0)
    assert ben.received["read"] == []  # his sends read for him, but his one connection has each ack


async def test_sending_reads_up_to_ones_own_message(make_client):
    room = new_room("send-reads")
    ana, ben = await make_client("Ana"), await make_client("Ben")
    anas_phone = await make_client("Ana", session=ana.session)  # in no room
    await ana.join(room)
    await ben.join(room)
    for n in range(3):
        await ben.send(room, f"b{n}")
    mine = await ana.send(room, "caught up")
    await anas_phone.wait_for("read", lambda got: got == [{"room": room, "last_read": mine["seq"]}])
    assert ana.received["read"] == []  # the sending connection has its ack
    assert (await ana.join(room))["unread"] == 0
    await ben.send(room, "one more")
    deleted = await ben.send(room, "taken back")
    await ben.call("delete", {"room": room, "seq": deleted["seq"]})
    assert (await ana.join(room))["unread"] == 1  # a deleted message is not unread


async def test_unread_is_counted_up_to_a_hundred(make_client):
    room = new_room("many-unread")
    ana, ben = await make_client("Ana"), await make_client("Ben")
    await ben.join(room)
    for n in range(120):
        await ben.send(room, f"n{n}")
    assert (await ana.join(room))["unread"] == 100


async def test_a_private_room_announces_receipts_and_members_carry_last_read(server_url):
    room = new_room("receipts")
    ana = await signed_in(server_url, f"{room}-ana", "Ana")
    ben = await signed_in(server_url, f"{room}-ben", "Ben")
    await call(server_url, "PUT", f"/api/rooms/{room}", {"private": True, "members": [
        {"id": ana.user["id"], "name": "Ana"}, {"id": ben.user["id"], "name": "Ben"}]})
    await ana.join(room)
    await ben.join(room)
    sent = await ana.send(room, "did you see this?")
    await ben.call("read", {"room": room, "seq": sent["seq"]})
    receipt = {"room": room, "user": ben.user, "last_read": sent["seq"]}
    await ana.wait_for("read_receipt", lambda got: got == [receipt])
    members = (await ana.call("members", {"room": room}))["members"]
    assert {member["id"]: member["last_read"] for member in members} == \
        {ana.user["id"]: sent["seq"], ben.user["id"]: sent["seq"]}
    public = new_room("public-reads")
    await ana.join(public)
    await ben.join(public)
    await ana.send(public, "hi")
    await ben.call("read", {"room": public, "seq": 1})
    assert "last_read" not in (await ana.call("members", {"room": public}))["members"][0]
    assert ana.received["read_receipt"] == [receipt]  # no receipts in a public room
    for client in (ana, ben):
        await client.close()


async def test_a_stranger_to_a_private_room_cannot_mark_it_read(make_client, server_url):
    room = new_room("closed")
    await call(server_url, "PUT", f"/api/rooms/{room}", {"private": True, "members": []})
    stranger = await make_client("Stranger")
    ack = await stranger.call("read", {"room": room, "seq": 1})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"


async def test_my_rooms_lists_public_rooms_read_in_with_their_unread(server_url):
    room = new_room("read-in")
    reader = await signed_in(server_url, f"{room}-reader", "Reader")
    writer = await signed_in(server_url, f"{room}-writer", "Writer")
    await writer.join(room)
    for n in range(4):
        await writer.send(room, f"w{n}")
    await reader.join(room)
    await reader.call("read", {"room": room, "seq": 1})
    status, mine = await call(server_url, "GET", "/api/me/rooms", key=reader.token)
    assert status == 200
    assert mine["rooms"] == [{"room": room, "private": False, "title": None, "role": None, "seq": 4,
                              "last_read": 1, "unread": 3}]
    for client in (reader, writer):
        await client.close()
