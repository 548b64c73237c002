"""Rooms the app manages (contract v2): private rooms the backend creates with their members,
roles, the member routes, `room_added` and `removed`, and a user's list of rooms."""

from __future__ import annotations

import asyncio

import pytest

from tests.backend import call, signed_in
from tests.chat_client import new_room


async def test_the_backend_creates_a_room_for_a_buyer_and_a_seller_and_removes_one(server_url: str):
    room = new_room("order")
    buyer, buyer_phone = await signed_in(server_url, f"{room}-buyer", "Buyer"), await signed_in(
        server_url, f"{room}-buyer", "Buyer")
    seller, stranger = await signed_in(server_url, f"{room}-seller", "Seller"), await signed_in(
        server_url, f"{room}-stranger")
    status, created = await call(server_url, "PUT", f"/api/rooms/{room}", {
        "private": True, "title": "Order 1234",
        "members": [{"id": buyer.user["id"], "name": "Buyer", "role": "owner"},
                    {"id": seller.user["id"], "name": "Seller"}]})
    assert status == 201, created
    assert created == {"room": room, "private": True, "title": "Order 1234", "members": [
        {"id": buyer.user["id"], "name": "Buyer", "role": "owner"},
        {"id": seller.user["id"], "name": "Seller", "role": "member"}]}
    added = {"room": room, "title": "Order 1234", "private": True, "role": "owner"}
    for client in (buyer, buyer_phone):  # every connection of the user, in no room yet
        await client.wait_for("room_added", lambda got: got == [added])
    await seller.wait_for("room_added", lambda got: got == [{**added, "role": "member"}])
    assert stranger.received["room_added"] == []

    assert (await buyer.join(room))["role"] == "owner"
    await seller.join(room)
    refused = await stranger.call("join", {"room": room})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"

    status, _ = await call(server_url, "DELETE", f"/api/rooms/{room}/members/{seller.user['id']}")
    assert status == 204
    await seller.wait_for("removed", lambda got: got == [{"room": room, "reason": "removed"}])
    await buyer.wait_for("presence", lambda got: {"room": room, "user": seller.user, "status": "left"} in got)
    after = await seller.call("message", {"room": room, "text": "still here?"})
    assert after["ok"] is False and after["error"]["code"] == "forbidden"
    rejoin = await seller.call("join", {"room": room})
    assert rejoin["ok"] is False and rejoin["error"]["code"] == "forbidden"
    for client in (buyer, buyer_phone, seller, stranger):
        await client.close()


async def test_an_update_adds_members_and_keeps_the_title(server_url: str):
    room = new_room("team")
    status, _ = await call(server_url, "PUT", f"/api/rooms/{room}", {"private": True, "title": "Team",
                                                                    "members": [{"id": "lead", "name": "Lead"}]})
    assert status == 201
    colleague = await signed_in(server_url, f"{room}-colleague", "Colleague")
    status, updated = await call(server_url, "PUT", f"/api/rooms/{room}", {
        "private": True, "members": [{"id": colleague.user["id"], "name": "Colleague", "role": "moderator"}]})
    assert status == 200, updated
    assert updated["title"] == "Team" and [m["id"] for m in updated["members"]] == [colleague.user["id"], "lead"]
    await colleague.wait_for("room_added", lambda got: got == [
        {"room": room, "title": "Team", "private": True, "role": "moderator"}])
    await colleague.join(room)
    status, listed = await call(server_url, "GET", f"/api/rooms/{room}/members")
    assert status == 200
    assert listed == {"members": [
        {"id": colleague.user["id"], "name": "Colleague", "role": "moderator", "online": True},
        {"id": "lead", "name": "Lead", "role": "member", "online": False}]}
    await colleague.close()


async def test_member_routes_add_change_and_remove(server_url: str):
    room = new_room("members")
    await call(server_url, "PUT", f"/api/rooms/{room}", {"private": True, "members": [{"id": "a", "name": "A"}]})
    newcomer = await signed_in(server_url, f"{room}-new", "Newcomer")
    status, put = await call(server_url, "PUT", f"/api/rooms/{room}/members/{newcomer.user['id']}",
                             {"name": "Newcomer"})
    assert (status, put) == (200, {"member": {"id": newcomer.user["id"], "name": "Newcomer", "role": "member"}})
    await newcomer.wait_for("room_added", lambda got: len(got) == 1)
    status, put = await call(server_url, "PUT", f"/api/rooms/{room}/members/{newcomer.user['id']}",
                             {"role": "moderator"})
    assert (status, put["member"]["role"], put["member"]["name"]) == (200, "moderator", "Newcomer")
    await asyncio.sleep(0.2)
    assert len(newcomer.received["room_added"]) == 1, "a role change is no new room"
    status, answer = await call(server_url, "DELETE", f"/api/rooms/{room}/members/nobody")
    assert (status, answer["error"]["code"]) == (404, "not_found")
    await newcomer.close()


async def test_a_public_room_with_history_cannot_become_private(server_url: str, make_client):
    room = new_room("public")
    ana = await make_client("Ana")
    await ana.join(room)
    await ana.send(room, "this room is public")
    status, answer = await call(server_url, "PUT", f"/api/rooms/{room}", {"private": True, "members": []})
    assert (status, answer["error"]["code"]) == (409, "conflict")


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("PUT", "/api/rooms/bad room!", {"private": True}, 400, "invalid_room"),
    ("PUT", "/api/rooms/{room}", {"private": False}, 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}", {"private": True, "members": [{"id": "x"}]}, 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}", {"private": True, "members": [{"id": "x", "name": "\u0000"}]}, 400,
     "invalid_payload"),
    ("PUT", "/api/rooms/{room}", {"private": True, "members": [{"id": "x", "name": "X", "role": "admin"}]}, 400,
     "invalid_payload"),
    ("PUT", "/api/rooms/{room}", {"private": True, "members": [{"id": "x", "name": "X"}, {"id": "x", "name": "Y"}]},
     400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}", {"private": True, "title": ""}, 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}", ["private"], 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}/members/u1", {"role": "root"}, 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}/members/" + "u" * 65, {}, 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}/bans/u1", {"seconds": 0}, 400, "invalid_payload"),
    ("PUT", "/api/rooms/{room}/mutes/u1", {"seconds": "60"}, 400, "invalid_payload"),
])
async def test_backend_room_routes_validate_their_input(server_url: str, method, path, body, status, code):
    answer_status, answer = await call(server_url, method, path.format(room=new_room("v")), body)
    assert (answer_status, answer["error"]["code"]) == (status, code), answer


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/api/rooms/r1"), ("GET", "/api/rooms/r1/members"), ("PUT", "/api/rooms/r1/members/u1"),
    ("DELETE", "/api/rooms/r1/members/u1"), ("PUT", "/api/rooms/r1/bans/u1"), ("DELETE", "/api/rooms/r1/mutes/u1"),
])
async def test_backend_room_routes_need_the_api_key(server_url: str, method: str, path: str):
    status, answer = await call(server_url, method, path, {"private": True}, key="not-the-api-key-at-all")
    assert (status, answer["error"]["code"]) == (401, "unauthorized")


async def test_my_rooms_lists_the_users_rooms_most_recent_message_first(server_url: str):
    user = f"lister-{new_room('u')}"
    quiet, busy = new_room("quiet"), new_room("busy")
    for room in (quiet, busy):
        await call(server_url, "PUT", f"/api/rooms/{room}", {"private": True, "title": room.upper(),
                                                             "members": [{"id": user, "name": "Lister"}]})
    await call(server_url, "POST", f"/api/rooms/{quiet}/messages", {"text": "first, long ago"})
    await asyncio.sleep(0.01)
    await call(server_url, "POST", f"/api/rooms/{busy}/messages", {"text": "one"})
    await call(server_url, "POST", f"/api/rooms/{busy}/messages", {"text": "two"})
    client = await signed_in(server_url, user, "Lister")
    status, mine = await call(server_url, "GET", "/api/me/rooms", key=client.token)
    assert status == 200, mine
    assert mine == {"rooms": [
        {"room": busy, "private": True, "title": busy.upper(), "role": "member", "seq": 2, "last_read": 0,
         "unread": 2},
        {"room": quiet, "private": True, "title": quiet.upper(), "role": "member", "seq": 1, "last_read": 0,
         "unread": 1}]}
    status, _ = await call(server_url, "GET", "/api/me/rooms", key="not a token")
    assert status == 401
    await client.close()


async def test_the_creator_of_an_invite_room_is_its_owner(server_url: str, make_client):
    owner = await make_client("Owner")
    status, created = await call(server_url, "POST", "/api/rooms", {"private": True}, key=owner.token)
    assert status == 201
    assert (await owner.join(created["room"]))["role"] == "owner"
    guest = await make_client("Guest")
    joined = await guest.join(created["room"], invite=created["invite"].removeprefix("/invite/"))
    assert joined["role"] == "member"
    public = await guest.join(new_room("open"))
    assert public["role"] is None
