"""What only the Redis store must do: survive lost keys and dead instances."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest

from chatserver.models import Position, User
from chatserver.stores.base import Announcement, Draft
from chatserver.stores.redis import RedisStore, connect

ANA = User("u-ana", "Ana")
BEN = User("u-ben", "Ben")


@pytest.fixture
async def make_store(redis_url):
    """Stores of distinct instances sharing one key prefix, as a cluster's instances do."""
    prefix = f"test:{secrets.token_hex(6)}:"
    stores: list[RedisStore] = []

    def make(instance: str) -> RedisStore:
        stores.append(RedisStore(connect(redis_url), instance=instance, prefix=prefix))
        return stores[-1]

    yield make
    for store in stores:
        await store.close()


def draft(n: int) -> Draft:
    return Draft(id=f"m{n}", room="lobby", user=ANA.as_dict(), text=f"t{n}", ts=n, client_id=None)


async def test_lost_history_starts_a_new_epoch(make_store):
    store = make_store("a")
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for n in range(3):
        await store.append(draft(n), history_size=100, dedupe_ttl=60, rate=None)
    await store._redis.delete(store._room_keys("lobby")[1])  # the stream is gone (eviction, say)
    recovery = await store.recover("lobby", Position(3, epoch), latest=50)
    assert recovery.epoch != epoch and not recovery.recovered and recovery.seq == 0
    assert (await store.append(draft(9), history_size=100, dedupe_ttl=60, rate=None)).message["seq"] == 1


async def test_lost_meta_starts_a_new_epoch_and_drops_stale_history(make_store):
    store = make_store("a")
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    await store.append(draft(1), history_size=100, dedupe_ttl=60, rate=None)
    await store._redis.delete(store._room_keys("lobby")[0])
    recovery = await store.recover("lobby", Position(1, epoch), latest=50)
    assert recovery.epoch != epoch and recovery.messages == [] and recovery.seq == 0


async def test_a_dead_instance_is_reaped_and_its_users_reported_left(make_store):
    alive, dead = make_store("alive"), make_store("dead")
    await dead.heartbeat()
    await dead.add_presence("lobby", ANA, "dead-c1")
    await dead.add_presence("lobby", BEN, "dead-c2")
    await alive.add_presence("lobby", BEN, "alive-c3")  # Ben is also on a live instance
    await alive.heartbeat()
    assert await alive.reap(expiry=5) == []  # nobody is silent for 5 s yet
    await asyncio.sleep(0.3)
    await alive.heartbeat()
    assert await alive.reap(expiry=0.2) == [("lobby", ANA)]
    assert await alive.members("lobby") == [BEN]
    assert await alive.online_rooms(10) == [("lobby", 1)]
    assert await alive.reap(expiry=0.2) == []  # reaped once, by whoever came first


@pytest.mark.parametrize("command", ["PUBLISH", "SPUBLISH"])
async def test_append_publishes_the_stored_message_in_the_same_step_and_a_retry_does_not(
        make_store, redis_url, command):
    store = make_store("a")
    channel = f"test-announce-{{{secrets.token_hex(4)}}}"
    announce = Announcement(channel=channel, command=command, prefix='{"event":"message","data":[', suffix="]}")
    listener = connect(redis_url)
    pubsub = listener.pubsub()
    await (pubsub.ssubscribe(channel) if command == "SPUBLISH" else pubsub.subscribe(channel))
    try:
        first = Draft(id="m1", room="lobby", user=ANA.as_dict(), text="hi", ts=1, client_id="c1")
        stored = await store.append(first, history_size=10, dedupe_ttl=60, rate=None, announce=announce)
        retried = await store.append(first, history_size=10, dedupe_ttl=60, rate=None, announce=announce)
        assert retried.duplicate and not stored.duplicate
        published = []
        deadline = asyncio.get_running_loop().time() + 1
        while asyncio.get_running_loop().time() < deadline:
            item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if item is not None:
                published.append(item["data"])
        assert len(published) == 1
        assert json.loads(published[0]) == {"event": "message", "data": [stored.message]}
    finally:
        await pubsub.aclose()
        await listener.aclose()


async def test_appends_in_flight_when_scripts_were_flushed_are_each_stored_once(make_store, redis_url):
    store = make_store("a")
    await store.append(draft(0), history_size=100, dedupe_ttl=60, rate=None)  # the script is loaded
    admin = connect(redis_url)
    await admin.script_flush()  # as a restarted Redis: every EVALSHA gets NOSCRIPT
    await admin.aclose()
    appended = await asyncio.gather(*(store.append(draft(n), history_size=100, dedupe_ttl=60, rate=None)
                                      for n in range(1, 31)))
    assert sorted(a.message["seq"] for a in appended) == list(range(2, 32))
    page = await store.history("lobby", None, 100)
    assert [m["seq"] for m in page.messages] == list(range(1, 32))
