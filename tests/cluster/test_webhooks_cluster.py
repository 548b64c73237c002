"""Webhooks across two instances sharing Redis (a server of the test's own, or the master a
Sentinel names): one room's events reach the receiver once each and in order whichever
instance stored them, and what an instance SIGKILLed while the receiver was down had
acknowledged arrives afterwards, through the other one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.chat_client import new_room
from tests.conftest import RedisProcess, ServerProcess, eventually
from tests.functional.test_user_events import connected
from tests.webhook_receiver import WEBHOOK_SECRET, Receiver, receiver_fixture  # noqa: F401

StartServer = Callable[..., ServerProcess]


@pytest.fixture(params=["redis", "sentinel"])
def fresh_redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis no other test wrote webhook events to."""
    if request.param == "sentinel":
        yield request.getfixturevalue("sentinel_set").url
        return
    redis = RedisProcess().start()
    yield redis.url
    redis.stop()


@pytest.fixture
def pair(fresh_redis_url: str, receiver: Receiver, start_server: StartServer) -> list[ServerProcess]:
    """Two instances on that Redis, posting to `receiver`; a dead instance counts as dead after 2 s."""
    env = {"REDIS_URL": fresh_redis_url, "RATE_LIMIT": "100000", "WEBHOOK_URL": receiver.url,
           "WEBHOOK_SECRET": WEBHOOK_SECRET, "WEBHOOK_TIMEOUT": "1", "PRESENCE_HEARTBEAT": "0.5",
           "PRESENCE_EXPIRY": "2"}
    return [start_server(**env) for _ in range(2)]


def first_arrivals(receiver: Receiver, room: str) -> list[int]:
    """The `seq` of each `message.created` of `room` delivered, repeats (by id) left out."""
    seen: set[str] = set()
    seqs = []
    for event in receiver.delivered("message.created"):
        if event["data"]["message"]["room"] == room and event["id"] not in seen:
            seen.add(event["id"])
            seqs.append(event["data"]["message"]["seq"])
    return seqs


async def test_one_rooms_events_from_both_instances_arrive_once_each_in_order(
        pair: list[ServerProcess], receiver: Receiver) -> None:
    a, b = pair
    room = new_room("both")
    on_a, on_b = await connected(a.url, f"ana-{room}"), await connected(b.url, f"ben-{room}")
    for client in (on_a, on_b):
        await client.join(room)
    sent = await asyncio.gather(*(client.send(room, f"{n}") for n in range(10) for client in (on_a, on_b)))
    seqs = sorted(message["seq"] for message in sent)
    await eventually(lambda: first_arrivals(receiver, room), lambda got: len(got) >= 20, 15,
                     what="20 events delivered")
    assert first_arrivals(receiver, room) == seqs
    assert len(receiver.delivered("message.created")) == 20  # none twice: nothing failed
    assert all(request.signed_with(WEBHOOK_SECRET) for request in receiver.requests)
    for client in (on_a, on_b):
        await client.close()


async def test_what_a_killed_instance_acknowledged_arrives_through_the_other(
        pair: list[ServerProcess], receiver: Receiver) -> None:
    a, b = pair
    down = True
    receiver.answer = lambda request: 503 if down else 200
    rooms = [new_room("kill"), new_room("kill")]
    sender = await connected(a.url, f"ana-{rooms[0]}")
    acked: dict[str, list[Any]] = {}
    for room in rooms:
        await sender.join(room)
        acked[room] = [(await sender.send(room, f"m{n}"))["seq"] for n in range(5)]
    await eventually(lambda: {r.event["data"]["message"]["room"] for r in receiver.requests}, lambda got: len(got) == 2,
                     5, what="both rooms tried (and refused)")
    assert a.proc is not None
    a.proc.kill()  # SIGKILL: no goodbye, its claims on both rooms left behind
    a.proc.wait()
    down = False
    for room in rooms:
        await eventually(lambda room=room: first_arrivals(receiver, room), lambda got: len(got) >= 5, 30,
                         what=f"{room}'s events through the other instance")
        assert first_arrivals(receiver, room) == acked[room]
    assert b.healthy()
