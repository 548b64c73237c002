"""Webhooks (contract v2): a real server posting to a real receiver on a loopback port,
embedded and on a Redis of the test's own. What the app's backend sees: signed events, in
order per room, retried with the same id, never in the chat's way, and bounded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from tests.backend import call, signed_in
from tests.chat_client import new_room
from tests.conftest import ROOT, RedisProcess, ServerProcess, eventually, free_port, server_env
from tests.webhook_receiver import WEBHOOK_SECRET, Receiver, Request, receiver_fixture, serving  # noqa: F401

StartServer = Callable[..., ServerProcess]
StartHooked = Callable[..., ServerProcess]


@pytest.fixture(params=["embedded", "redis"])
def mode(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The server's environment for each mode: embedded, or on a fresh Redis (the webhook
    queue lives there, and must not hold another test's events)."""
    if request.param == "embedded":
        yield {}
        return
    redis = RedisProcess().start()
    yield {"REDIS_URL": redis.url}
    redis.stop()


@pytest.fixture
def hooked(mode: dict[str, str], receiver: Receiver, start_server: StartServer) -> StartHooked:
    """Start a server that posts its webhook events to `receiver` (servers stop first, then
    the receiver, then Redis)."""
    def start(**env: str) -> ServerProcess:
        return start_server(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=WEBHOOK_SECRET, RATE_LIMIT="1000",
                            **mode, **env)
    return start


async def metric(server: ServerProcess, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def delivered(receiver: Receiver, count: int, type_: str | None = None, seconds: float = 10) -> list[Any]:
    return await eventually(lambda: receiver.delivered(type_), lambda got: len(got) >= count, seconds,
                            what=f"{count} {type_ or 'events'} delivered")


async def test_each_event_is_signed_over_its_raw_body_and_names_the_offline_members(
        hooked: StartHooked, receiver: Receiver) -> None:
    server = hooked()
    room = new_room("order")
    status, _ = await call(server.url, "PUT", f"/api/rooms/{room}", {"private": True, "members": [
        {"id": "buyer", "name": "Buyer", "role": "owner"}, {"id": "seller", "name": "Seller"},
        {"id": "courier", "name": "Courier"}]})
    assert status == 201
    buyer, seller = await signed_in(server.url, "buyer", "Buyer"), await signed_in(server.url, "seller", "Seller")
    await buyer.join(room)
    await seller.join(room)
    sent = await buyer.send(room, "is it still available? é ✓")

    created = (await delivered(receiver, 1, "message.created"))[0]
    assert created["data"] == {"message": sent, "offline": ["courier"]}
    assert [event["data"]["user"]["id"] for event in receiver.delivered("member.added")] == [
        "buyer", "seller", "courier"]
    for request in receiver.requests:
        assert request.signed_with(WEBHOOK_SECRET), request.headers
        assert not request.signed_with(WEBHOOK_SECRET + "x")
        assert abs(int(request.headers["X-Chat-Timestamp"]) - time.time()) < 30
        assert request.headers["X-Chat-Delivery"] == request.event["id"]
        assert request.headers["X-Chat-Event"] == request.event["type"]
        assert request.headers["Content-Type"] == "application/json"
    assert len({event["id"] for event in receiver.delivered()}) == len(receiver.delivered())
    assert abs(created["ts"] - sent["ts"]) < 1000

    edited = (await buyer.call("edit", {"room": room, "seq": sent["seq"], "text": "still available?"}))["message"]
    await buyer.call("react", {"room": room, "seq": sent["seq"], "emoji": "👍", "on": True})
    deleted = (await buyer.call("delete", {"room": room, "seq": sent["seq"]}))["message"]
    updates = await delivered(receiver, 2, "message.updated")
    assert [update["data"] for update in updates] == [{"message": edited}, {"message": deleted}]  # no reaction

    assert (await buyer.call("mute", {"room": room, "user_id": "seller", "seconds": 60}))["ok"]
    moderation = (await delivered(receiver, 1, "moderation"))[0]["data"]
    assert (moderation["action"], moderation["user"]["id"], moderation["by"]["id"]) == ("mute", "seller", "buyer")
    assert (await buyer.call("kick", {"room": room, "user_id": "seller"}))["ok"]
    removed = (await delivered(receiver, 1, "member.removed"))[0]["data"]
    assert removed == {"room": room, "user": {"id": "seller", "name": "Seller"}, "reason": "kicked"}
    status, _ = await call(server.url, "DELETE", f"/api/rooms/{room}/members/courier")
    assert status == 204
    await delivered(receiver, 2, "member.removed")
    assert [event["type"] for event in receiver.delivered()] == [
        "member.added", "member.added", "member.added", "message.created", "message.updated", "message.updated",
        "moderation", "moderation", "member.removed", "member.removed"]  # the room's order: a kick, then its removal
    for client in (buyer, seller):
        await client.close()


async def test_a_public_room_names_only_the_users_holding_a_role_there(
        hooked: StartHooked, receiver: Receiver) -> None:
    server = hooked()
    room = new_room("lobby")
    assert (await call(server.url, "PUT", f"/api/rooms/{room}/members/mod", {"name": "Mod", "role": "moderator"}))[
        0] in (200, 201)
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(room)
    await ana.send(room, "hello")
    created = (await delivered(receiver, 1, "message.created"))[0]
    assert created["data"]["offline"] == ["mod"]  # Ana holds no role there, and is online anyway
    await ana.close()


async def test_a_failed_attempt_is_retried_with_the_same_id_and_body_and_order_holds(
        hooked: StartHooked, receiver: Receiver) -> None:
    tries: dict[str, int] = {}

    def flaky(request: Request) -> int:  # the first attempt of every other event fails
        event_id = request.event["id"]
        tries[event_id] = tries.get(event_id, 0) + 1
        return 500 if tries[event_id] == 1 and len(tries) % 2 == 1 else 200
    receiver.answer = flaky
    server = hooked()
    room = new_room("flaky")
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(room)
    for n in range(4):
        await ana.send(room, f"private words {n}")
    events = await delivered(receiver, 4, "message.created", seconds=15)
    assert [event["data"]["message"]["text"] for event in events] == [f"private words {n}" for n in range(4)]
    first = [request for request in receiver.requests if request.event["id"] == events[0]["id"]]
    assert [request.answered for request in first] == [500, 200]
    assert first[0].body == first[1].body and first[0].headers["X-Chat-Delivery"] == first[1].headers[
        "X-Chat-Delivery"]
    assert first[1].at - first[0].at >= 1.0  # backoff starts at one second
    assert all(request.signed_with(WEBHOOK_SECRET) for request in first)
    assert await metric(server, "chat_webhook_retries_total") == 2
    assert await metric(server, 'chat_webhook_attempts_total{result="refused"}') == 2
    assert "webhook attempt failed" in server.log() and "private words" not in server.log()  # never the body
    await ana.close()


async def test_a_room_whose_events_fail_does_not_hold_up_another(
        hooked: StartHooked, receiver: Receiver) -> None:
    stuck, other = new_room("stuck"), new_room("other")
    receiver.answer = lambda request: 503 if request.event["data"]["message"]["room"] == stuck else 200
    server = hooked()
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(stuck)
    await ana.join(other)
    await ana.send(stuck, "never taken")
    for n in range(3):
        await ana.send(other, f"o{n}")
    events = await delivered(receiver, 3, "message.created")
    assert [event["data"]["message"]["text"] for event in events] == ["o0", "o1", "o2"]
    assert any(request.event["data"]["message"]["room"] == stuck for request in receiver.requests)
    await ana.close()


async def test_while_the_receiver_is_down_one_attempt_at_a_time_probes_it(
        mode: dict[str, str], start_server: StartServer) -> None:
    later = Receiver()  # its port, with nothing listening yet
    server = start_server(WEBHOOK_URL=later.url, WEBHOOK_SECRET=WEBHOOK_SECRET, RATE_LIMIT="1000", **mode)
    rooms = [new_room("down") for _ in range(20)]
    ana = await signed_in(server.url, "ana", "Ana")
    for room in rooms:
        await ana.join(room)
        await ana.send(room, "first")
        await ana.send(room, "second")
    await asyncio.sleep(3.5)  # the first probes fail: 1 s, then 2 s apart at least
    tried = await metric(server, 'chat_webhook_attempts_total{result="unreachable"}')
    assert 1 <= tried <= 8, tried  # not 20 rooms trying each on their own, twice or more by now
    assert "webhook receiver does not answer" in server.log()
    async with serving(later):
        events = await delivered(later, 40, "message.created", seconds=15)
    for room in rooms:  # every room's events, in order, once the receiver answers
        assert [e["data"]["message"]["text"] for e in events if e["data"]["message"]["room"] == room] == [
            "first", "second"]
    assert "webhook receiver answers again" in server.log()
    await ana.close()


async def test_a_receiver_that_hangs_neither_delays_acks_nor_readiness(
        hooked: StartHooked, receiver: Receiver) -> None:
    receiver.answer = lambda request: None  # takes the request and never answers
    server = hooked(WEBHOOK_TIMEOUT="30")
    room = new_room("hang")
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(room)
    await ana.send(room, "m0")
    await eventually(lambda: len(receiver.requests), lambda n: n == 1, 5, what="the first request")
    sent = await asyncio.gather(*(ana.send(room, f"m{n}") for n in range(1, 51)))
    assert [message["text"] for message in sent] == [f"m{n}" for n in range(1, 51)]
    assert len(receiver.requests) == 1 and receiver.requests[0].answered is None  # still hanging
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/readyz") as response:
        assert response.status == 200
    await ana.close()


async def test_past_the_bound_the_oldest_events_are_dropped_and_counted(
        hooked: StartHooked, receiver: Receiver) -> None:
    accepting = False
    receiver.answer = lambda request: 200 if accepting else 503
    server = hooked(WEBHOOK_MAX_QUEUE="3")
    room = new_room("bounded")
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(room)
    for n in range(1, 7):
        await ana.send(room, f"m{n}")
    await eventually(lambda: metric(server, "chat_webhook_queue_length"), lambda n: n == 3, 5,
                     what="three events waiting")
    assert await metric(server, 'chat_webhook_dropped_total{reason="queue_full"}') == 3
    accepting = True
    events = await delivered(receiver, 3, "message.created")
    assert [event["data"]["message"]["text"] for event in events] == ["m4", "m5", "m6"]
    assert "webhook events dropped" in server.log() and "dropped_queue_full=" in server.log()
    await ana.close()


async def test_an_event_retried_for_its_whole_time_is_dropped(hooked: StartHooked,
                                                              receiver: Receiver) -> None:
    receiver.answer = lambda request: 503
    server = hooked(WEBHOOK_RETRY_HOURS="0.0005")  # 1.8 s
    room = new_room("expired")
    ana = await signed_in(server.url, "ana", "Ana")
    await ana.join(room)
    await ana.send(room, "nobody takes this")
    await eventually(lambda: metric(server, 'chat_webhook_dropped_total{reason="expired"}'), lambda n: n == 1, 10,
                     what="the event dropped")
    assert len(receiver.requests) >= 2 and receiver.delivered() == []
    assert await metric(server, "chat_webhook_queue_length") in (0, 1)  # read by the sweep, once a second
    await ana.close()


@pytest.mark.parametrize(("env", "named"), [
    ({"WEBHOOK_URL": "http://127.0.0.1:9/hooks"}, "WEBHOOK_SECRET"),
    ({"WEBHOOK_URL": "http://127.0.0.1:9/hooks", "WEBHOOK_SECRET": "short"}, "WEBHOOK_SECRET"),
    ({"WEBHOOK_URL": "ftp://127.0.0.1/hooks", "WEBHOOK_SECRET": WEBHOOK_SECRET}, "WEBHOOK_URL"),
    ({"WEBHOOK_URL": "http://127.0.0.1:9/hooks", "WEBHOOK_SECRET": WEBHOOK_SECRET, "WEBHOOK_TIMEOUT": "0"},
     "WEBHOOK_TIMEOUT"),
])
def test_start_up_stops_with_one_line(env: dict[str, str], named: str) -> None:
    result = subprocess.run([sys.executable, "-m", "chatserver", "--port", str(free_port())], cwd=ROOT,
                            env=server_env(**env), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"chatserver: configuration error: {named} "), lines
