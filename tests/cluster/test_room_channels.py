"""Each room has a pub/sub channel of its own, heard only by instances with someone in it."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tests.chat_client import new_room
from tests.conftest import eventually


def events_channel(room: str) -> str:
    return f"chat:{{{room}}}:events"


async def subscribers(redis: Redis, room: str, *, sharded: bool) -> int:
    """How many connections (one per listening instance) hear the room's channel."""
    reply = await redis.execute_command("PUBSUB", "SHARDNUMSUB" if sharded else "NUMSUB", events_channel(room))
    return int(reply[1])


@pytest.fixture(params=["sharded", "classic", "cluster"])
def kind(request):
    """Sharded or classic room channels on one Redis; on a Redis Cluster, classic ones
    (the instances' pub/sub connection reaches one node) although SHARDED_PUBSUB is auto."""
    return request.param


@pytest.fixture
def redis_for(kind, request):
    """REDIS_URL, and where to count subscribers: the one server, or the Cluster's first
    seed, which the instances' pub/sub connections reach."""
    if kind != "cluster":
        url = request.getfixturevalue("redis_url")
        return url, url
    cluster = request.getfixturevalue("redis_cluster")
    return cluster.url, cluster.masters[0].url


@pytest.fixture
async def redis(redis_for):
    client = Redis.from_url(redis_for[1])
    yield client
    await client.aclose()


async def test_an_instance_hears_a_room_only_while_someone_there_is_in_it(start_server, redis_for, redis,
                                                                         make_client, kind):
    sharded = kind == "sharded"
    settings = {"REDIS_URL": redis_for[0], "CHANNEL_LINGER": "0.3",
                "SHARDED_PUBSUB": "off" if kind == "classic" else "auto"}
    a, b = start_server(**settings), start_server(**settings)
    room, elsewhere = new_room("busy"), new_room("quiet")
    ana = await make_client("Ana", url=a.url)
    ben = await make_client("Ben", url=b.url)
    await ana.join(room)
    await ben.join(elsewhere)
    assert await subscribers(redis, room, sharded=sharded) == 1  # only A: B has nobody in the room
    assert await subscribers(redis, elsewhere, sharded=sharded) == 1
    await ana.send(room, "before Ben came")

    joined = await ben.join(room)  # subscribed before the join read history: nothing falls between
    assert [m["text"] for m in joined["messages"]] == ["before Ben came"]
    assert await subscribers(redis, room, sharded=sharded) == 2
    sent = await ana.send(room, "live, across instances")
    assert await ben.wait_for("message", lambda m: len(m) == 1) == [sent]

    await ben.call("leave", {"room": room})
    await eventually(lambda: subscribers(redis, room, sharded=sharded), lambda n: n == 1, 5,
                     what="B stops hearing the room once its last member left")
    missed = await ana.send(room, "while Ben was away")
    back = await ben.join(room, since={"seq": sent["seq"], "epoch": joined["epoch"]})
    assert back["messages"] == [missed]
    assert [m["text"] for m in ben.received["message"]] == ["live, across instances"]  # nothing live while away
    if sharded:
        assert await subscribers(redis, room, sharded=False) == 0  # not on the classic channel too
