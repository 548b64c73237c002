"""What only the Redis store must do: survive lost keys and dead instances."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterPubSub

from chatserver.backplane.channels import room_tag
from chatserver.backplane.clients import connect
from chatserver.backplane.publish import PublishFrame
from chatserver.backplane.topology import topology_of
from chatserver.models import Member, Position, User
from chatserver.stores.base import Draft, RateLimit
from chatserver.stores.redis import RedisStore
from tests.conftest import RedisProcess, eventually, free_port
from tests.contract.conftest import redis_store

ANA = User("u-ana", "Ana")
BEN = User("u-ben", "Ben")


@pytest.fixture(params=["redis", "cluster"])
def store_url(request):
    """One Redis server, or the test session's Redis Cluster."""
    return (request.getfixturevalue("redis_url") if request.param == "redis"
            else request.getfixturevalue("redis_cluster").url)


@pytest.fixture
async def make_store(store_url):
    """Stores of distinct instances sharing one key prefix, as a cluster's instances do."""
    prefix = f"test:{secrets.token_hex(6)}:"
    stores: list[RedisStore] = []

    def make(instance: str) -> RedisStore:
        stores.append(redis_store(store_url, instance=instance, prefix=prefix))
        return stores[-1]

    yield make
    for store in stores:
        await store.close()


class FixedPublisher:
    """A `RoomPublisher` that frames every event alike, and remembers what it was asked."""

    def __init__(self, frame: PublishFrame) -> None:
        self._frame = frame
        self.asked: list[tuple[str, str]] = []

    def frame(self, room: str, event: str) -> PublishFrame:
        self.asked.append((room, event))
        return self._frame


def draft(n: int) -> Draft:
    return Draft(id=f"m{n}", room="lobby", user=ANA.as_dict(), text=f"t{n}", ts=n, client_id=None)


async def test_lost_history_starts_a_new_epoch(make_store):
    store = make_store("a")
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    for n in range(3):
        await store.append(draft(n), history_size=100, dedupe_ttl=60, rate=None)
    await store._redis.delete(store._keys.room("lobby").log)  # the stream is gone (eviction, say)
    recovery = await store.recover("lobby", Position(3, epoch), latest=50)
    assert recovery.epoch != epoch and not recovery.recovered and recovery.seq == 0
    assert (await store.append(draft(9), history_size=100, dedupe_ttl=60, rate=None)).message["seq"] == 1


async def test_lost_meta_starts_a_new_epoch_and_drops_stale_history(make_store):
    store = make_store("a")
    epoch = (await store.recover("lobby", None, latest=50)).epoch
    await store.append(draft(1), history_size=100, dedupe_ttl=60, rate=None)
    await store._redis.delete(store._keys.room("lobby").meta)
    recovery = await store.recover("lobby", Position(1, epoch), latest=50)
    assert recovery.epoch != epoch and recovery.messages == [] and recovery.seq == 0


async def test_a_dead_instance_is_reaped_and_its_users_reported_left(make_store):
    alive, dead = make_store("alive"), make_store("dead")
    await dead.heartbeat()
    await dead.add_presence("lobby", ANA, "dead-c1")
    await dead.add_presence("lobby", BEN, "dead-c2")
    await dead.add_presence("kitchen", ANA, "dead-c4")  # a room in another slot, likely on another node
    await dead.add_presence("kitchen", ANA, "dead-c5")
    await dead.add_presence("gone", BEN, "dead-c6")
    await dead.remove_presence("gone", BEN, "dead-c6")
    await alive.add_presence("lobby", BEN, "alive-c3")  # Ben is also on a live instance
    await alive.heartbeat()
    assert await alive.reap(expiry=5) == []  # nobody is silent for 5 s yet
    await asyncio.sleep(0.3)
    await alive.heartbeat()
    assert sorted(await alive.reap(expiry=0.2)) == [("kitchen", ANA), ("lobby", ANA)]
    assert await alive.members("lobby") == [BEN]
    assert await alive.members("kitchen") == []
    assert await alive.online_rooms(10) == [("lobby", 1)]
    assert await alive.reap(expiry=0.2) == []  # reaped once, by whoever came first


async def test_online_counts_come_from_the_rooms_even_when_the_index_drifted(make_store):
    store = make_store("a")
    await store.add_presence("lobby", ANA, "c1")
    await store.add_presence("lobby", BEN, "c2")
    # as if an instance died between a room's script and the index update beside it
    await store._redis.zincrby(store._keys.online, 5, "lobby")
    await store._redis.zincrby(store._keys.online, 1, "ghost")
    assert await store.online_rooms(10) == [("lobby", 2)]


async def test_a_failed_update_beside_a_removal_still_reports_who_left(make_store, monkeypatch):
    store = make_store("a")
    await store.add_presence("lobby", ANA, "c1")

    async def unavailable(**_):
        raise ConnectionError("Redis went away after the room's script")

    monkeypatch.setattr(store, "_decrement", unavailable)
    assert await store.remove_presence("lobby", ANA, "c1") is True  # announced once, here
    assert await store.members("lobby") == [] and await store.online_rooms(10) == []
    assert await store.remove_presence("lobby", ANA, "c1") is False


async def test_two_reapers_at_once_report_each_user_once(make_store):
    dead = make_store("dead")
    await dead.heartbeat()
    for n in range(20):
        await dead.add_presence(f"room-{n}", ANA, f"c{n}")
    await asyncio.sleep(0.3)
    reapers = [make_store(f"reaper-{n}") for n in range(3)]
    reaped = await asyncio.gather(*(reaper.reap(expiry=0.2) for reaper in reapers))
    assert sorted(room for found in reaped for room, _ in found) == sorted(f"room-{n}" for n in range(20))
    assert await reapers[0].online_rooms(100) == []


async def test_a_message_costs_one_round_trip_on_one_server_and_two_on_a_cluster(request, make_store, store_url):
    """One EVALSHA stores, dedupes and rate-limits on one server; on a Cluster the user's
    rate window is counted first, in its own slot (`RedisStore._count_rate_apart`)."""
    store = make_store("a")
    rate = RateLimit(key=ANA.id, limit=100, window=10)
    await store.append(draft(0), history_size=100, dedupe_ttl=60, rate=rate)  # the scripts are loaded
    before = await script_calls(request, store_url)
    retried = Draft(id="m1", room="lobby", user=ANA.as_dict(), text="t", ts=1, client_id="c1")
    await store.append(retried, history_size=100, dedupe_ttl=60, rate=rate)
    on_cluster = store_url.startswith("redis+cluster://")
    assert await script_calls(request, store_url) - before == (2 if on_cluster else 1)


async def script_calls(request, store_url: str) -> int:
    """The EVALSHA calls the servers behind `store_url` have answered so far."""
    urls = ([master.url for master in request.getfixturevalue("redis_cluster").masters]
            if store_url.startswith("redis+cluster://") else [store_url])
    total = 0
    for url in urls:
        client = Redis.from_url(url)
        stats = await client.info("commandstats")
        await client.aclose()
        total += stats.get("cmdstat_evalsha", {}).get("calls", 0)
    return total


@pytest.mark.parametrize("command", ["PUBLISH", "SPUBLISH"])
async def test_append_publishes_the_stored_message_in_the_same_step_and_a_retry_does_not(
        store_url, command):
    channel = f"test-announce-{room_tag('lobby')}-{secrets.token_hex(4)}"  # in the room's slot, as SPUBLISH wants
    publisher = FixedPublisher(PublishFrame(channel=channel, command=command, prefix='{"event":"message","data":[',
                                            suffix="]}"))
    store = redis_store(store_url, instance="a", prefix=f"test:{secrets.token_hex(6)}:", publisher=publisher)
    listener = connect(topology_of(store_url))  # on a Cluster, redis-py's cluster pub/sub finds the channel's shard
    await listener.ping()  # (once the client has learnt the slot map)
    pubsub = listener.pubsub()
    await (pubsub.ssubscribe(channel) if command == "SPUBLISH" else pubsub.subscribe(channel))
    try:
        first = Draft(id="m1", room="lobby", user=ANA.as_dict(), text="hi", ts=1, client_id="c1")
        stored = await store.append(first, history_size=10, dedupe_ttl=60, rate=None)
        retried = await store.append(first, history_size=10, dedupe_ttl=60, rate=None)
        assert retried.duplicate and not stored.duplicate
        published = []
        deadline = asyncio.get_running_loop().time() + 1
        while asyncio.get_running_loop().time() < deadline:
            sharded_on_a_cluster = command == "SPUBLISH" and isinstance(pubsub, ClusterPubSub)
            receive = pubsub.get_sharded_message if sharded_on_a_cluster else pubsub.get_message
            item = await receive(ignore_subscribe_messages=True, timeout=0.1)
            if item is not None:
                published.append(item["data"])
        assert len(published) == 1
        assert json.loads(published[0]) == {"event": "message", "data": [stored.message]}
        assert publisher.asked == [("lobby", "message")] * 2
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await store.close()


async def test_appends_in_flight_when_scripts_were_flushed_are_each_stored_once(make_store, store_url):
    store = make_store("a")
    await store.append(draft(0), history_size=100, dedupe_ttl=60, rate=None)  # the script is loaded
    admin = connect(topology_of(store_url))
    await admin.script_flush()  # as a restarted Redis: every EVALSHA gets NOSCRIPT
    await admin.aclose()
    appended = await asyncio.gather(*(store.append(draft(n), history_size=100, dedupe_ttl=60, rate=None)
                                      for n in range(1, 31)))
    assert sorted(a.message["seq"] for a in appended) == list(range(2, 32))
    page = await store.history("lobby", None, 100)
    assert [m["seq"] for m in page.messages] == list(range(1, 32))


async def test_the_pubsub_client_of_a_cluster_uses_the_first_seed_that_answers(redis_cluster):
    """python-socketio's manager gets a plain client; Redis forwards a PUBLISH on any
    node to subscribers on every node."""
    unreachable = free_port()
    listener = connect(topology_of(redis_cluster.url.replace("://", f"://127.0.0.1:{unreachable},")), for_pubsub=True)
    publisher = Redis(port=redis_cluster.masters[-1].port)
    pubsub = listener.pubsub()
    try:
        await pubsub.subscribe("test-seeds")
        assert (await listener.connection_pool.get_connection()).port == redis_cluster.masters[0].port
        await publisher.publish("test-seeds", "hello")
        message = await eventually(lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1),
                                   lambda item: item is not None, 5, what="the message from another node")
        assert message["data"] == b"hello"
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await publisher.aclose()


async def test_a_burst_of_joins_waits_for_connections_instead_of_failing(make_store):
    """A reconnect storm: far more operations at once than the client has connections
    (on a Cluster its pools refuse rather than wait, so the store bounds what is in flight)."""
    store = make_store("a")
    users = [User(f"u{n}", f"User {n}") for n in range(1000)]
    first = await asyncio.gather(*(store.add_presence(f"room-{n % 300}", user, f"c{n}")
                                   for n, user in enumerate(users)))
    assert all(first)
    assert sum(count for _, count in await store.online_rooms(1000)) == 1000


async def test_the_first_append_after_redis_restarted_succeeds():
    """The append script keeps a connection of its own; Redis restarting drops it while it
    is idle, and the next message must still be stored, not refused with `internal`."""
    redis = RedisProcess().start()
    store = redis_store(redis.url, instance="a", prefix="test:")
    try:
        draft = Draft(id="m1", room="lobby", user=ANA.as_dict(), text="before", ts=1, client_id=None)
        assert not (await store.append(draft, history_size=10, dedupe_ttl=60, rate=None)).duplicate
        redis.stop()
        redis.start()  # same port, empty
        after = Draft(id="m2", room="lobby", user=ANA.as_dict(), text="after", ts=2, client_id=None)
        stored = await store.append(after, history_size=10, dedupe_ttl=60, rate=None)
        assert stored.message["text"] == "after" and stored.message["seq"] == 1  # a new epoch begins
    finally:
        await store.close()
        redis.stop()


async def test_a_private_room_made_before_rosters_keeps_its_members(make_store):
    """Version 1 kept a private room's members in a set: they stay members, read as `member`,
    count against the capacity, and move to the roster when changed."""
    store = make_store("i-upgrade")
    keys = store._keys.room("old-room")
    await store._redis.hset(keys.private, mapping={"invite": "old-invite", "capacity": 2})
    await store._redis.sadd(keys.members, ANA.id)
    access = await store.access("old-room", ANA.id, 0)
    assert access.private and access.member == Member(User(ANA.id, ANA.id), "member")
    assert await store.admit("old-room", Member(BEN, "member"), "old-invite") is True
    assert await store.admit("old-room", Member(User("u-carl", "Carl"), "member"), "old-invite") is False  # full
    member, new = await store.put_member("old-room", ANA.id, "Ana", "owner")
    assert not new and member == Member(ANA, "owner")
    assert await store.roster("old-room") == [Member(ANA, "owner"), Member(BEN, "member")]
    assert await store._redis.scard(keys.members) == 0
