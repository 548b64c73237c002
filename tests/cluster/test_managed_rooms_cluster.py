"""Rooms the app manages and moderation across instances, over one Redis server, the master a
Sentinel names and a Redis Cluster: a removal takes effect on every instance at once, and bans
and mutes hold on every instance and across restarts."""

from __future__ import annotations

import pytest

from tests.backend import call, signed_in
from tests.chat_client import new_room
from tests.cluster.test_cluster import shared_redis_url


@pytest.fixture(params=["redis", "sentinel", "cluster"])
def redis_for_rooms(request) -> str:
    return shared_redis_url(request, request.param)


async def test_membership_and_moderation_hold_on_every_instance(redis_for_rooms: str, start_server):
    a, b = (start_server(REDIS_URL=redis_for_rooms) for _ in range(2))
    room = new_room("shared-order")
    owner_on_a = await signed_in(a.url, f"{room}-owner", "Owner")
    member_on_b = await signed_in(b.url, f"{room}-member", "Member")
    status, _ = await call(a.url, "PUT", f"/api/rooms/{room}", {"private": True, "title": "Shared", "members": [
        {"id": owner_on_a.user["id"], "name": "Owner", "role": "owner"},
        {"id": member_on_b.user["id"], "name": "Member"}]})
    assert status == 201
    await member_on_b.wait_for("room_added", lambda got: len(got) == 1 and got[0]["room"] == room)
    await owner_on_a.join(room)
    await member_on_b.join(room)

    ack = await owner_on_a.call("mute", {"room": room, "user_id": member_on_b.user["id"], "seconds": 600})
    assert ack["ok"], ack
    await member_on_b.wait_for("moderation", lambda got: len(got) == 1 and got[0]["action"] == "mute")
    muted = await member_on_b.call("message", {"room": room, "text": "muted on another instance"})
    assert muted["ok"] is False and muted["error"]["code"] == "forbidden"
    assert (await call(b.url, "DELETE", f"/api/rooms/{room}/mutes/{member_on_b.user['id']}"))[0] == 200
    await member_on_b.send(room, "unmuted")

    status, _ = await call(a.url, "PUT", f"/api/rooms/{room}/bans/{member_on_b.user['id']}", {})
    assert status == 200
    await member_on_b.wait_for("removed", lambda got: got == [{"room": room, "reason": "banned"}])
    await owner_on_a.wait_for("presence", lambda got: {"room": room, "user": member_on_b.user,
                                                        "status": "left"} in got)
    refused = await member_on_b.call("join", {"room": room})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"

    # a restarted instance reads the same bans: nothing of it lived in the process
    b.stop()
    b.start()
    again = await signed_in(b.url, member_on_b.user["id"], "Member")
    assert (await again.call("join", {"room": new_room("open")}))["ok"]
    status, listed = await call(b.url, "GET", f"/api/rooms/{room}/members")
    assert status == 200 and [entry["id"] for entry in listed["members"]] == [owner_on_a.user["id"]]
    await call(b.url, "PUT", f"/api/rooms/{room}/members/{again.user['id']}", {"name": "Member"})
    refused = await again.call("join", {"room": room})  # a member again, but still banned
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    for client in (owner_on_a, again):
        await client.close()
