"""The webhook queue in Redis (`RedisHookQueue` with `RedisStore`), on one server: events
written by the store's own scripts, one round trip per message as without webhooks; one
instance at a time delivers a room's events, in order; a dead instance's room is taken over
from the event it held; the bound drops the oldest."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from chatserver.backplane.clients import connect
from chatserver.backplane.topology import topology_of
from chatserver.models import Member, User
from chatserver.stores.base import Change, Draft, PrivateRoom
from chatserver.stores.redis import RedisStore
from chatserver.stores.redis_hooks import RedisHookQueue
from chatserver.stores.redis_keys import Keys
from chatserver.webhooks.events import HookEvent
from tests.contract.test_redis_store import script_calls

ANA, BEN = User("u-ana", "Ana"), User("u-ben", "Ben")
EXPIRY = 2.0  # seconds of silence after which an instance is dead


class Instance:
    """One instance's store and queue, sharing a prefix with the others."""

    def __init__(self, url: str, prefix: str, name: str, *, max_events: int = 1000) -> None:
        topology = topology_of(url)
        redis = connect(topology)
        self.name = name
        self.hooks = RedisHookQueue(redis, Keys(prefix), name, max_events=max_events, lease=1.0, expiry=EXPIRY)
        self.store = RedisStore(redis, topology, instance=name, prefix=prefix, hooks=self.hooks)
        self.recorded: list[str] = []
        self.dropped: list[tuple[HookEvent, str]] = []
        self.hooks.listen(self.recorded.append, lambda event, reason: self.dropped.append((event, reason)))

    async def send(self, room: str, n: int, user: User = ANA) -> int:
        draft = Draft(id=f"m{n}", room=room, user=user.as_dict(), text=f"t{n}", ts=int(time.time() * 1000),
                      client_id=None)
        return int((await self.store.append(draft, history_size=100, dedupe_ttl=600, rate=None)).message["seq"])


@pytest.fixture
async def instances(redis_url: str) -> AsyncIterator[Callable[..., Instance]]:
    prefix = f"test:{secrets.token_hex(6)}:"
    made: list[Instance] = []

    def make(name: str, **options: int) -> Instance:
        made.append(Instance(redis_url, prefix, name, **options))
        return made[-1]

    yield make
    for instance in made:
        await instance.store.close()


async def waiting(instance: Instance, room: str) -> list[HookEvent]:
    """The room's waiting events, in order, each settled once read."""
    events = []
    event = await instance.hooks.claim(room)
    while event is not None:
        events.append(event)
        event = await instance.hooks.settle(room, event)
    return events


def texts(events: list[HookEvent]) -> list[str]:
    return [json.loads(event.body)["data"]["message"]["text"] for event in events]


async def test_a_message_records_its_event_in_the_same_round_trip(request, redis_url, instances) -> None:
    a = instances("a")
    await a.store.put_private_room("deal", "Deal", [Member(ANA, "owner"), Member(BEN, "member")])
    await a.store.add_presence("deal", ANA, "conn-1")
    await a.send("deal", 0)  # the scripts are loaded
    before = await script_calls(request, redis_url)
    await a.send("deal", 1)
    assert await script_calls(request, redis_url) - before == 1
    assert a.recorded == ["deal", "deal", "deal"]  # the roster's two members (one step), two messages
    events = await waiting(a, "deal")
    assert [event.type for event in events] == ["member.added", "member.added", "message.created", "message.created"]
    first = events[2]
    body = json.loads(first.body)
    assert body["id"] == first.id and body["type"] == "message.created" and body["data"]["offline"] == [BEN.id]
    assert body["data"]["message"]["text"] == "t0" and body["ts"] == body["data"]["message"]["ts"]


async def test_roster_changes_and_moderation_record_their_events_in_their_own_step(request, redis_url,
                                                                                   instances) -> None:
    a = instances("a")
    await a.store.put_private_room("club", "Club", [Member(ANA, "owner"), Member(BEN, "member")])
    await a.store.put_private_room("club", None, [Member(BEN, "moderator")])  # not new: no event
    assert (await a.store.put_member("club", "u-cy", "Cy", None))[1] is True
    before = await script_calls(request, redis_url)
    assert (await a.store.put_member("club", "u-dee", None, None))[1] is True
    assert await script_calls(request, redis_url) - before == 1  # the roster's script recorded it
    await a.store.put_member("club", "u-cy", None, "moderator")  # a change, not an addition: no event
    mute = {"room": "club", "action": "mute", "user": {"id": "u-cy", "name": "Cy"}, "until": None}
    await a.store.sanction("club", "mute", "u-cy", 0, mute)
    assert await a.store.lift("club", "mute", "u-cy", {**mute, "action": "unmute"}) is True
    assert await a.store.remove_member("club", "u-cy", "kicked") is not None
    assert await a.store.remove_member("club", "u-cy", "kicked") is None  # nobody removed: no event
    await a.store.create_private_room(PrivateRoom("den", "inv-1", capacity=3), Member(BEN, "owner"))
    assert await a.store.admit("den", Member(ANA, "member"), "inv-1") is True
    assert await a.store.admit("den", Member(ANA, "member"), "inv-1") is True  # already in: no event

    club = [json.loads(event.body) for event in await waiting(a, "club")]
    cy, dee = {"id": "u-cy", "name": "Cy"}, {"id": "u-dee", "name": "u-dee"}
    assert [(body["type"], body["data"]["user"]) for body in club] == [
        ("member.added", ANA.as_dict()), ("member.added", BEN.as_dict()), ("member.added", cy), ("member.added", dee),
        ("moderation", cy), ("moderation", cy), ("member.removed", cy)]
    assert [body["data"].get("action") or body["data"].get("role") for body in club] == [
        "owner", "member", "member", "member", "mute", "unmute", None]
    assert club[-1]["data"] == {"room": "club", "user": {"id": "u-cy", "name": "Cy"}, "reason": "kicked"}
    den = [json.loads(event.body)["data"] for event in await waiting(a, "den")]
    assert den == [{"room": "den", "user": BEN.as_dict(), "role": "owner"},
                   {"room": "den", "user": ANA.as_dict(), "role": "member"}]
    assert await a.hooks.size() == (0, None)


async def test_edits_and_deletes_are_events_and_reactions_are_not(instances) -> None:
    a = instances("a")
    seq = await a.send("lobby", 1)
    now = int(time.time() * 1000)
    for change in (Change("lobby", seq, "react", ANA.id, now, emoji="👍"),
                   Change("lobby", seq, "edit", ANA.id, now, text="t1!"), Change("lobby", seq, "delete", None, now)):
        await a.store.change(change, rate=None, max_reactions=20)
    events = await waiting(a, "lobby")
    assert [event.type for event in events] == ["message.created", "message.updated", "message.updated"]
    assert [json.loads(e.body)["data"]["message"]["rev"] for e in events] == [seq, seq + 2, seq + 3]
    assert await a.hooks.size() == (0, None)
    assert await a.hooks.waiting_rooms() == []


async def test_one_instance_holds_a_room_and_a_dead_ones_room_is_taken_over(instances) -> None:
    a, b = instances("a"), instances("b")
    for instance in (a, b):
        await instance.store.heartbeat()
    for n in range(3):
        await (a if n % 2 else b).send("room", n)
    held = await a.hooks.claim("room")
    assert held is not None and texts([held]) == ["t0"]
    assert await b.hooks.claim("room") is None  # a holds it, and a is alive
    await b.store.heartbeat()
    await asyncio.sleep(EXPIRY + 0.1)  # a falls silent
    await b.store.heartbeat()
    taken = await b.hooks.claim("room")
    assert taken is not None and taken.id == held.id  # the very event a held, not the next
    rest = [taken]
    while (event := await b.hooks.settle("room", rest[-1])) is not None:
        rest.append(event)
    assert texts(rest) == ["t0", "t1", "t2"]


async def test_past_the_bound_the_oldest_events_of_all_are_dropped(instances) -> None:
    a = instances("a", max_events=3)
    for n in range(3):
        await a.send("older", n)
    for n in range(3, 5):
        await a.send("newer", n)
    length, oldest = await a.hooks.size()
    assert length == 5 and oldest is not None
    await a.hooks.trim()
    assert [(event.room, event.type, reason) for event, reason in a.dropped] == [
        ("older", "message.created", "queue_full")] * 2
    assert (await a.hooks.size())[0] == 3
    left = []
    for room in ("older", "newer"):
        event = await a.hooks.claim(room)
        while event is not None:
            left.append(event)
            event = await a.hooks.settle(room, event)
    assert texts(left) == ["t2", "t3", "t4"]


async def test_an_empty_queue_leaves_no_keys(redis_url, instances) -> None:
    a = instances("a")
    await a.send("tidy", 1)
    event = await a.hooks.claim("tidy")
    assert event is not None and await a.hooks.settle("tidy", event) is None
    client = Redis.from_url(redis_url)
    prefix = a.hooks.keys_of("tidy")[0].split("room:")[0]
    left = sorted(key.decode() for key in await client.keys(prefix + "*hooks*"))
    await client.aclose()
    assert left == [prefix + "hooks:length", prefix + "hooks:serial"]  # two counters: none per room
