"""Private rooms: created over HTTP, entered by invite, closed to everyone else."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.chat_client import new_session


async def create_private_room(url: str, token: str, **body: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(
            f"{url}/api/rooms", json={"private": True, **body},
            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def private_room(server_url, make_client):
    owner = await make_client("Owner")
    status, room = await create_private_room(server_url, owner.token)
    assert status == 201, room
    return owner, room


async def test_creation_answers_an_unguessable_room_and_an_invite(private_room):
    _, room = private_room
    assert len(room["room"]) >= 16 and room["capacity"] == 2
    assert room["invite"].startswith("/invite/") and len(room["invite"]) > len("/invite/") + 16


async def test_the_creator_joins_without_an_invite(private_room):
    owner, room = private_room
    ack = await owner.join(room["room"])
    assert ack["members"] == [{**owner.user, "role": "owner", "last_read": 0}]  # the creator owns an invite room


async def test_an_invited_user_becomes_a_member_for_good(private_room, make_client):
    owner, room = private_room
    invite = room["invite"].removeprefix("/invite/")
    guest = await make_client("Guest")
    await owner.join(room["room"])
    await guest.join(room["room"], invite=invite)
    await guest.send(room["room"], "thanks for the invite")
    await owner.wait_for("message", lambda m: len(m) == 1)
    await guest.call("leave", {"room": room["room"]})
    assert (await guest.join(room["room"]))["ok"]  # no invite needed any more


@pytest.mark.parametrize("event, extra", [
    ("join", {}),
    ("join", {"invite": "not-the-invite"}),
    ("message", {"text": "let me in"}),
    ("typing", {"typing": True}),
    ("history", {}),
    ("members", {}),
    ("leave", {}),
])
async def test_non_members_are_forbidden_everything(private_room, make_client, event, extra):
    owner, room = private_room
    await owner.join(room["room"])
    await owner.send(room["room"], "secret")
    stranger = await make_client("Stranger")
    ack = await stranger.call(event, {"room": room["room"], **extra})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "forbidden", ack
    assert "messages" not in ack and stranger.received["message"] == []
    # the refusal let nothing through, either way: a later message still reaches the owner only
    await owner.send(room["room"], "still secret")
    got = await owner.wait_for("message", lambda m: len(m) == 2)
    assert [m["text"] for m in got] == ["secret", "still secret"]
    await asyncio.sleep(0.2)
    assert not any(stranger.received.values()), stranger.received
    assert owner.received["typing"] == [] and owner.received["presence"] == []


async def test_a_full_room_admits_nobody_new_even_with_the_invite(private_room, make_client):
    _, room = private_room
    invite = room["invite"].removeprefix("/invite/")
    first, second = await make_client("First"), await make_client("Second")
    assert (await first.call("join", {"room": room["room"], "invite": invite}))["ok"]
    late = await second.call("join", {"room": room["room"], "invite": invite})
    assert late["ok"] is False and late["error"]["code"] == "forbidden"


async def test_capacity_can_be_raised_up_to_50(server_url, make_client):
    owner = await make_client("Owner")
    status, room = await create_private_room(server_url, owner.token, capacity=3)
    assert status == 201 and room["capacity"] == 3
    invite = room["invite"].removeprefix("/invite/")
    for name in ("G1", "G2"):
        guest = await make_client(name)
        assert (await guest.call("join", {"room": room["room"], "invite": invite}))["ok"]
    third = await make_client("G3")
    assert (await third.call("join", {"room": room["room"], "invite": invite}))["error"]["code"] == "forbidden"


@pytest.mark.parametrize("body", [{"capacity": 1}, {"capacity": 51}, {"capacity": "3"}, {"private": "yes"},
                                  {"private": False}])
async def test_bad_room_requests_are_invalid_payload(server_url, body):
    session = await new_session(server_url, "Ana")
    status, answer = await create_private_room(server_url, session["token"], **body)
    assert status == 400 and answer["error"]["code"] == "invalid_payload"


async def test_creating_a_room_needs_a_user_token(server_url):
    status, answer = await create_private_room(server_url, "nonsense")
    assert status == 401 and answer["error"]["code"] == "unauthorized"


async def test_http_history_of_a_private_room_is_for_members_only(server_url, private_room):
    owner, room = private_room
    await owner.join(room["room"])
    await owner.send(room["room"], "members only")
    stranger = await new_session(server_url, "Stranger")
    async with aiohttp.ClientSession() as http:
        url = f"{server_url}/api/rooms/{room['room']}/messages"
        async with http.get(url, headers={"Authorization": f"Bearer {stranger['token']}"}) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
        async with http.get(url, headers={"Authorization": f"Bearer {owner.token}"}) as resp:
            assert resp.status == 200
            assert [m["text"] for m in (await resp.json())["messages"]] == ["members only"]


async def test_private_rooms_are_not_listed(server_url, private_room):
    owner, room = private_room
    await owner.join(room["room"])
    async with aiohttp.ClientSession() as http, http.get(f"{server_url}/api/rooms") as resp:
        listed = [r["room"] for r in (await resp.json())["rooms"]]
    assert room["room"] not in listed


async def test_the_invite_page_opens_the_room_and_an_unknown_invite_is_404(server_url, private_room):
    _, room = private_room
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server_url}{room['invite']}") as resp:
            assert resp.status == 200 and room["room"] in await resp.text()
        async with http.get(f"{server_url}/invite/not-an-invite") as resp:
            assert resp.status == 404
