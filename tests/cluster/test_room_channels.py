"""Each room has a pub/sub channel of its own, heard only by instances with someone in it."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.asyncio import Redis

from tests.chat_client import new_room
from tests.conftest import eventually


def events_channel(room: str) -> str:
    return f"chat:{{{room}}}:events"


@pytest.fixture(params=["sharded", "classic", "cluster"])
def kind(request):
    """Sharded or classic room channels on one Redis, or sharded ones on a Redis Cluster."""
    return request.param


@pytest.fixture
def redis_url_for(kind, request) -> str:
    if kind == "cluster":
        return request.getfixturevalue("redis_cluster").url
    return request.getfixturevalue("redis_url")


@pytest.fixture
async def subscribers(kind, request):
    """How many connections (one per listening instance) hear a room's channel. On a
    Cluster they are counted on the master that owns the channel's slot, where a shard
    channel lives."""
    clients: dict[str, Redis] = {}

    async def count(room: str, *, sharded: bool = kind != "classic") -> int:
        if kind == "cluster":
            url = request.getfixturevalue("redis_cluster").master_for(room).url
        else:
            url = request.getfixturevalue("redis_url")
        client = clients.setdefault(url, Redis.from_url(url))
        reply = await client.execute_command("PUBSUB", "SHARDNUMSUB" if sharded else "NUMSUB", events_channel(room))
        return int(reply[1])

    yield count
    for client in clients.values():
        await client.aclose()


async def test_an_instance_hears_a_room_only_while_someone_there_is_in_it(start_server, redis_url_for, subscribers,
                                                                         make_client, kind):
    settings = {"REDIS_URL": redis_url_for, "CHANNEL_LINGER": "0.3",
                "SHARDED_PUBSUB": "off" if kind == "classic" else "auto"}
    a, b = start_server(**settings), start_server(**settings)
    room, elsewhere = new_room("busy"), new_room("quiet")
    ana = await make_client("Ana", url=a.url)
    ben = await make_client("Ben", url=b.url)
    await ana.join(room)
    await ben.join(elsewhere)
    assert await subscribers(room) == 1  # only A: B has nobody in the room
    assert await subscribers(elsewhere) == 1
    await ana.send(room, "before Ben came")

    joined = await ben.join(room)  # subscribed before the join read history: nothing falls between
    assert [m["text"] for m in joined["messages"]] == ["before Ben came"]
    assert await subscribers(room) == 2
    sent = await ana.send(room, "live, across instances")
    assert await ben.wait_for("message", lambda m: len(m) == 1) == [sent]

    await ben.call("leave", {"room": room})
    await eventually(lambda: subscribers(room), lambda n: n == 1, 5,
                     what="B stops hearing the room once its last member left")
    missed = await ana.send(room, "while Ben was away")
    back = await ben.join(room, since={"seq": sent["seq"], "epoch": joined["epoch"]})
    assert back["messages"] == [missed]
    assert [m["text"] for m in ben.received["message"]] == ["live, across instances"]  # nothing live while away
    if kind != "classic":
        assert await subscribers(room, sharded=False) == 0  # not on the classic channel too


async def test_rooms_on_every_master_of_a_cluster_are_heard_where_they_live(redis_cluster, start_server,
                                                                           make_client):
    """One instance holds a connection per master that owns a room it hears."""
    a, b = (start_server(REDIS_URL=redis_cluster.url) for _ in range(2))
    ana, ben = await make_client("Ana", url=a.url), await make_client("Ben", url=b.url)
    rooms = {}
    while len(rooms) < len(redis_cluster.masters):  # one room on each master
        room = new_room("shard")
        rooms.setdefault(redis_cluster.master_for(room).port, room)
    for room in rooms.values():
        await ana.join(room)
        await ben.join(room)
    sent = [await ana.send(room, f"to {port}") for port, room in rooms.items()]
    await ben.wait_for("message", lambda got: len(got) == len(sent))
    assert sorted(m["text"] for m in ben.received["message"]) == sorted(m["text"] for m in sent)


@pytest.mark.parametrize("kind", ["cluster"])
async def test_a_room_whose_slot_moves_to_another_master_is_followed(redis_cluster, start_server, subscribers,
                                                                     make_client):
    """Moving a slot (as a resharding does) unsubscribes its shard channels on the old
    master; every instance subscribes again on the new one, and the room stays live."""
    a, b = (start_server(REDIS_URL=redis_cluster.url) for _ in range(2))
    ana, ben = await make_client("Ana", url=a.url), await make_client("Ben", url=b.url)
    room = new_room("moving")
    await ana.join(room)
    await ben.join(room)
    before = await ana.send(room, "before the move")
    await ben.wait_for("message", lambda got: len(got) == 1)

    old = redis_cluster.master_for(room)
    new = next(master for master in redis_cluster.masters if master is not old)
    redis_cluster.move_slot(room, to=new)
    assert redis_cluster.master_for(room) is new
    await eventually(lambda: subscribers(room), lambda n: n == 2, 10,
                     what="both instances hearing the room on its new master")

    after = await ana.send(room, "after the move")
    assert after["seq"] == before["seq"] + 1  # the room's keys moved with the slot
    await ben.wait_for("message", lambda got: len(got) == 2)
    assert ben.received["message"] == [before, after]
    history = await ben.call("history", {"room": room})
    assert [m["id"] for m in history["messages"]] == [before["id"], after["id"]]



@pytest.mark.parametrize("kind", ["cluster"])
async def test_a_subscription_a_master_refused_is_made_again(redis_cluster, start_server, subscribers, make_client):
    """A master refuses SSUBSCRIBE while its ACL denies the channels (NOPERM; likewise BUSY
    during a long script, or MOVED on a stale slot map): once it accepts them again, every
    instance subscribes again and the room is live."""
    a, b = (start_server(REDIS_URL=redis_cluster.url) for _ in range(2))
    ana, ben = await make_client("Ana", url=a.url), await make_client("Ben", url=b.url)
    room = new_room("refused")
    master = redis_cluster.master_for(room)
    neighbour = next(r for r in iter(lambda: new_room("next"), None) if redis_cluster.master_for(r) is master)
    await ana.join(room)
    await ben.join(neighbour)  # B already has a connection to that master
    with redis.Redis(port=master.port) as node:
        node.execute_command("ACL", "SETUSER", "default", "resetchannels")  # drops both subscriptions too
        try:
            await ben.join(room)  # its SSUBSCRIBE is refused; the join goes on without it
            await asyncio.sleep(1)
            assert await subscribers(room) == 0
        finally:
            node.execute_command("ACL", "SETUSER", "default", "allchannels")
    await eventually(lambda: subscribers(room), lambda n: n == 2, 10, what="both instances hearing the room again")
    sent = await ana.send(room, "after the refusal")
    assert await ben.wait_for("message", lambda got: len(got) == 1) == [sent]
