"""Moderation (contract v2): kick, ban and mute by a room's owners and moderators and by the
backend, each announced to the room as `moderation`; who may act on whom."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.backend import call, signed_in
from tests.chat_client import ChatClient, new_room


async def staffed_room(url: str, *, private: bool = False) -> tuple[str, ChatClient, ChatClient, ChatClient]:
    """A room with an owner, a moderator and a member, all joined (roles given by the backend)."""
    room = new_room("moderated")
    owner = await signed_in(url, f"{room}-owner", "Owner")
    moderator = await signed_in(url, f"{room}-moderator", "Moderator")
    member = await signed_in(url, f"{room}-member", "Member")
    if private:
        await call(url, "PUT", f"/api/rooms/{room}", {"private": True, "members": [
            {"id": owner.user["id"], "name": "Owner", "role": "owner"},
            {"id": moderator.user["id"], "name": "Moderator", "role": "moderator"},
            {"id": member.user["id"], "name": "Member"}]})
    else:
        for client, role in ((owner, "owner"), (moderator, "moderator")):
            await call(url, "PUT", f"/api/rooms/{room}/members/{client.user['id']}",
                       {"name": client.user["name"], "role": role})
    for client in (owner, moderator, member):
        await client.join(room)
    return room, owner, moderator, member


def refused(ack: dict, code: str) -> bool:
    return ack["ok"] is False and ack["error"]["code"] == code


async def test_a_moderator_kicks_a_member_out_of_a_public_room(server_url: str):
    room, owner, moderator, member = await staffed_room(server_url)
    ack = await moderator.call("kick", {"room": room, "user_id": member.user["id"], "reason": "spam"})
    announced = {"room": room, "action": "kick", "user": member.user, "by": moderator.user, "until": None,
                 "reason": "spam"}
    assert ack == {"ok": True, "moderation": announced}
    await owner.wait_for("moderation", lambda got: got == [announced])
    await member.wait_for("removed", lambda got: got == [{"room": room, "reason": "kicked"}])
    await owner.wait_for("presence", lambda got: {"room": room, "user": member.user, "status": "left"} in got)
    assert refused(await member.call("message", {"room": room, "text": "hello?"}), "not_joined")
    await member.join(room)  # a kick is not a ban: a public room takes them back


async def test_a_ban_refuses_join_and_message_until_it_expires(server_url: str):
    room, owner, _, member = await staffed_room(server_url)
    before = int(time.time() * 1000)
    ack = await owner.call("ban", {"room": room, "user_id": member.user["id"], "seconds": 2})
    assert ack["ok"] and ack["moderation"]["action"] == "ban"
    assert before + 2000 <= ack["moderation"]["until"] <= int(time.time() * 1000) + 2000
    await member.wait_for("removed", lambda got: got == [{"room": room, "reason": "banned"}])
    assert refused(await member.call("join", {"room": room}), "forbidden")
    assert refused(await member.call("message", {"room": room, "text": "let me in"}), "forbidden")
    await asyncio.sleep(max(0.0, (ack["moderation"]["until"] - time.time() * 1000) / 1000) + 0.1)
    await member.join(room)  # expired by time, nobody lifted it
    await member.send(room, "back")


async def test_a_ban_for_good_holds_until_unban(server_url: str):
    room, owner, moderator, member = await staffed_room(server_url)
    ack = await moderator.call("ban", {"room": room, "user_id": member.user["id"]})
    assert ack["ok"] and ack["moderation"]["until"] is None
    await member.wait_for("removed", lambda got: len(got) == 1)
    assert refused(await member.call("join", {"room": room}), "forbidden")
    ack = await owner.call("unban", {"room": room, "user_id": member.user["id"]})
    assert ack["ok"] and ack["moderation"]["action"] == "unban"
    await member.join(room)


async def test_a_muted_user_reads_but_cannot_send_until_unmuted(server_url: str):
    room, owner, moderator, member = await staffed_room(server_url)
    ack = await moderator.call("mute", {"room": room, "user_id": member.user["id"], "seconds": 600})
    assert ack["ok"] and ack["moderation"]["action"] == "mute"
    await member.wait_for("moderation", lambda got: got and got[-1]["action"] == "mute")
    assert refused(await member.call("message", {"room": room, "text": "can I speak?"}), "forbidden")
    sent = await owner.send(room, "you may read")
    await member.wait_for("message", lambda got: sent in got)
    await moderator.call("unmute", {"room": room, "user_id": member.user["id"]})
    await member.send(room, "thank you")


async def test_a_private_rooms_kicked_member_is_out_for_good(server_url: str):
    room, owner, _, member = await staffed_room(server_url, private=True)
    assert (await owner.call("kick", {"room": room, "user_id": member.user["id"]}))["ok"]
    await member.wait_for("removed", lambda got: got == [{"room": room, "reason": "kicked"}])
    assert refused(await member.call("join", {"room": room}), "forbidden")
    status, listed = await call(server_url, "GET", f"/api/rooms/{room}/members")
    assert status == 200 and member.user["id"] not in [entry["id"] for entry in listed["members"]]


@pytest.mark.parametrize(("actor", "target", "action"), [
    ("member", "moderator", "kick"),   # no role
    ("member", "owner", "mute"),
    ("moderator", "owner", "ban"),     # a moderator on an owner
    ("moderator", "moderator2", "kick"),  # ... or on another moderator
    ("owner", "owner", "kick"),        # nobody on themselves
])
async def test_who_may_not_act_on_whom(server_url: str, actor: str, target: str, action: str):
    room, owner, moderator, member = await staffed_room(server_url)
    moderator2 = await signed_in(server_url, f"{room}-moderator2", "Moderator Two")
    await call(server_url, "PUT", f"/api/rooms/{room}/members/{moderator2.user['id']}", {"role": "moderator"})
    await moderator2.join(room)
    clients = {"owner": owner, "moderator": moderator, "member": member, "moderator2": moderator2}
    payload = {"room": room, "user_id": clients[target].user["id"], "seconds": 60, "role": "owner"}  # a forged role
    assert refused(await clients[actor].call(action, payload), "forbidden")
    await asyncio.sleep(0.2)
    assert all(client.received["moderation"] == [] and client.received["removed"] == []
               for client in clients.values())
    assert (await clients[target].send(room, "untouched"))["text"] == "untouched"


@pytest.mark.parametrize(("event", "payload", "code"), [
    ("kick", {"room": "lobby"}, "invalid_payload"),
    ("kick", {"room": "lobby", "user_id": ""}, "invalid_payload"),
    ("kick", {"room": "lobby", "user_id": 5}, "invalid_payload"),
    ("mute", {"room": "lobby", "user_id": "u1"}, "invalid_payload"),  # a mute needs seconds
    ("mute", {"room": "lobby", "user_id": "u1", "seconds": 0}, "invalid_payload"),
    ("ban", {"room": "lobby", "user_id": "u1", "seconds": -5}, "invalid_payload"),
    ("ban", {"room": "lobby", "user_id": "u1", "reason": "x" * 201}, "invalid_payload"),
    ("unban", {"room": "no room!", "user_id": "u1"}, "invalid_room"),
    ("unmute", ["lobby"], "invalid_payload"),
])
async def test_moderation_events_validate_their_payload(server_url: str, event: str, payload, code: str):
    client = await signed_in(server_url, f"validator-{new_room('v')}")
    assert refused(await client.call(event, payload), code)
    await client.close()


async def test_the_backend_bans_and_mutes_with_its_routes(server_url: str):
    room, owner, _, member = await staffed_room(server_url)
    status, answer = await call(server_url, "PUT", f"/api/rooms/{room}/mutes/{owner.user['id']}", {"seconds": 60})
    assert status == 200 and answer["moderation"]["by"] == {"id": "system", "name": "System"}
    assert refused(await owner.call("message", {"room": room, "text": "even owners"}), "forbidden")
    status, _ = await call(server_url, "DELETE", f"/api/rooms/{room}/mutes/{owner.user['id']}")
    assert status == 200
    await owner.send(room, "unmuted")
    status, answer = await call(server_url, "PUT", f"/api/rooms/{room}/bans/{member.user['id']}",
                                {"reason": "abuse"})
    assert status == 200 and answer["moderation"]["until"] is None and answer["moderation"]["reason"] == "abuse"
    await member.wait_for("removed", lambda got: got == [{"room": room, "reason": "banned"}])
    await owner.wait_for("moderation", lambda got: [m["action"] for m in got] == ["mute", "unmute", "ban"])
    status, _ = await call(server_url, "DELETE", f"/api/rooms/{room}/bans/{member.user['id']}")
    assert status == 200
    await member.join(room)
