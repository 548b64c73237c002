"""Several instances sharing one Redis behave as one server."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from tests.chat_client import ChatClient, new_room
from tests.conftest import RedisProcess, eventually


def shared_redis_url(request: pytest.FixtureRequest, kind: str) -> str:
    """REDIS_URL of one Redis server, the master a Sentinel names, or a Redis Cluster."""
    fixture = {"redis": "redis_url", "sentinel": "sentinel_set", "cluster": "redis_cluster"}[kind]
    found = request.getfixturevalue(fixture)
    return found if isinstance(found, str) else found.url


@pytest.fixture(params=["redis", "sentinel", "cluster"])
def cluster(request):
    """Three instances on one Redis server, on the master a Sentinel names, or on a Redis Cluster.
    Redis is set up before `start_server`, so the instances stop before it does."""
    url = shared_redis_url(request, request.param)
    start_server = request.getfixturevalue("start_server")
    return [start_server(REDIS_URL=url, RATE_LIMIT="100000") for _ in range(3)]


async def test_events_cross_instances(cluster, make_client):
    a, b, c = cluster
    ana = await make_client("Ana", url=a.url)
    ben = await make_client("Ben", url=b.url)
    room = new_room("cluster")
    await ana.join(room)
    ack = await ben.join(room)
    assert [u["name"] for u in ack["members"]] == ["Ana", "Ben"]
    await ana.wait_for("presence", lambda p: p == [{"room": room, "user": ben.user, "status": "joined"}])
    await ben.call("typing", {"room": room, "typing": True})
    await ana.wait_for("typing", lambda t: len(t) == 1)
    sent = await ben.send(room, "from instance b")
    assert await ana.wait_for("message", lambda m: len(m) == 1) == [sent]
    cara = await make_client("Cara", url=c.url)
    ack = await cara.join(room)
    assert [m["text"] for m in ack["messages"]] == ["from instance b"]
    for client in (ana, ben, cara):  # one answer whichever instance is asked
        members = await client.call("members", {"room": room})
        assert [u["name"] for u in members["members"]] == ["Ana", "Ben", "Cara"]
    await cara.close()
    await ana.wait_for("presence", lambda p: p[-1] == {"room": room, "user": cara.user, "status": "left"})


async def test_private_rooms_are_shared(cluster, make_client):
    a, b, _ = cluster
    owner = await make_client("Owner", url=a.url)
    async with aiohttp.ClientSession() as http, http.post(
            f"{a.url}/api/rooms", json={"private": True}, headers={"Authorization": f"Bearer {owner.token}"}) as resp:
        room = await resp.json()
    guest = await make_client("Guest", url=b.url)
    stranger = await make_client("Stranger", url=b.url)
    invite = room["invite"].removeprefix("/invite/")
    assert (await guest.call("join", {"room": room["room"], "invite": invite}))["ok"]
    refused = await stranger.call("join", {"room": room["room"], "invite": invite})
    assert refused["error"]["code"] == "forbidden"


async def test_concurrent_sends_on_all_instances_get_gapless_seq(cluster, make_client):
    room = new_room("cluster")
    clients = [await make_client(f"U{n}", url=server.url) for n, server in enumerate(cluster * 2)]
    for client in clients:
        await client.join(room)
    acks = await asyncio.gather(*(c.call("message", {"room": room, "text": f"{i}.{k}"})
                                  for i, c in enumerate(clients) for k in range(10)))
    assert sorted(ack["message"]["seq"] for ack in acks) == list(range(1, 61))
    for client in clients:  # every connection, on every instance, sees each message once, in seq order
        got = await client.wait_for("message", lambda m: len(m) >= 60)
        assert [m["seq"] for m in got] == list(range(1, 61))


async def test_a_client_id_retried_through_another_instance_is_stored_once(cluster, make_client):
    a, b, _ = cluster
    ana_a = await make_client("Ana", url=a.url)
    ana_b = await make_client(url=b.url, session=ana_a.session)
    watcher = await make_client("Watcher", url=b.url)
    room = new_room("cluster")
    for client in (ana_a, ana_b, watcher):
        await client.join(room)
    first = await ana_a.send(room, "only once", client_id="mobile-retry-1")
    retried = await ana_b.send(room, "only once", client_id="mobile-retry-1")
    assert retried == first
    await ana_b.send(room, "next")
    got = await watcher.wait_for("message", lambda m: any(x["text"] == "next" for x in m))
    assert [m["text"] for m in got] == ["only once", "next"]


class Participant:
    """A user who keeps every message seen, by `seq`, across reconnects (what a client app does)."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.epoch = ""
        self.from_joins: list[dict] = []

    async def join(self, room: str) -> None:
        since = {"since": {"seq": self.last_seq, "epoch": self.epoch}} if self.epoch else {}
        ack = await self.client.join(room, **since)
        if self.epoch:
            assert ack["recovered"], ack
        self.epoch = ack["epoch"]
        self.from_joins.extend(ack["messages"])

    async def fill_gaps(self, room: str) -> None:
        """Fetch from history any seq skipped by live delivery, as the web page does on a jump.
        (A message stored by an instance killed before it could broadcast reaches nobody live.)"""
        for seq in sorted(set(range(1, self.last_seq + 1)) - set(self.seen)):
            page = await self.client.call("history", {"room": room, "before_seq": seq + 1, "limit": 1})
            self.from_joins.extend(page["messages"])

    @property
    def seen(self) -> dict[int, dict]:
        return {m["seq"]: m for m in self.from_joins + self.client.received["message"]}

    @property
    def last_seq(self) -> int:
        return max(self.seen, default=0)


@pytest.fixture(params=["redis", "sentinel", "cluster"])
def quickly_reaped_cluster(request):
    """As `cluster`, with a dead instance's users reaped within seconds (heartbeat 1 s, expiry 6 s)."""
    url = shared_redis_url(request, request.param)
    start_server = request.getfixturevalue("start_server")
    return [start_server(REDIS_URL=url, RATE_LIMIT="100000", PRESENCE_HEARTBEAT="1", PRESENCE_EXPIRY="6")
            for _ in range(3)]


async def test_an_instance_killed_mid_conversation_loses_nothing(quickly_reaped_cluster, make_client):
    a, b, c = quickly_reaped_cluster
    room = new_room("cluster")
    ana = Participant(await make_client("Ana", url=a.url))
    ben = Participant(await make_client("Ben", url=b.url))
    cara = Participant(await make_client("Cara", url=c.url))
    dave = await make_client("Dave", url=b.url)  # only on b: must drop out of presence
    for person in (ana, ben, cara):
        await person.join(room)
    await dave.join(room)

    acked: dict[str, int] = {}

    async def talk(person: Participant, tag: str, count: int) -> None:
        for n in range(count):
            text = f"{tag}-{n}"
            for _ in range(50):  # a phone: retry with the same client_id until acked
                try:
                    ack = await person.client.call("message", {"room": room, "text": text, "client_id": text},
                                                   timeout=2)
                    if ack["ok"]:
                        acked[text] = ack["message"]["seq"]
                        break
                except Exception:
                    pass
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.01)

    talkers = [asyncio.create_task(talk(p, p.client.user["name"], 40)) for p in (ana, ben, cara)]
    await asyncio.sleep(0.3)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    # Ben's app notices the lost connection and reconnects through the balancer to another instance
    await eventually(lambda: ben.client.sio.connected, lambda connected: not connected, 10,
                     what="Ben's client noticing its instance died")
    old = ben.client
    ben.client = await make_client(url=a.url, session=old.session)
    ben.client.received["message"] = list(old.received["message"])
    await ben.join(room)
    await asyncio.gather(*talkers)

    assert len(acked) == 120 and sorted(acked.values()) == list(range(1, 121))  # none stored twice
    for person in (ana, ben, cara):
        await person.client.wait_for("message", lambda _, p=person: p.last_seq >= 120, timeout=10)
        await person.fill_gaps(room)
        seen = person.seen
        assert sorted(seen) == list(range(1, 121)), person.client.user["name"]
        assert {m["text"]: s for s, m in seen.items()} == acked

    # heartbeat 1 s, expiry 6 s, reaped on the next beat
    names = await eventually(lambda: member_names(ana.client, room), lambda names: "Dave" not in names, 20,
                             interval=1, what="Dave reaped from the members")
    assert names == ["Ana", "Ben", "Cara"]
    await ana.client.wait_for("presence", lambda p: {"room": room, "user": dave.user, "status": "left"} in p)


async def member_names(client: ChatClient, room: str) -> list[str] | None:
    """The names online in `room`; None while the store answers `internal` (a client retries that)."""
    ack = await client.call("members", {"room": room})
    return [u["name"] for u in ack["members"]] if ack["ok"] else None


async def readyz(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as resp:
        return resp.status


async def wait_ready(url: str, status: int, timeout: float = 20) -> None:
    await eventually(lambda: readyz(url), lambda got: got == status, timeout, interval=0.2,
                     what=f"/readyz of {url} answering {status}")


async def test_redis_going_away_and_coming_back(start_server, make_client):
    redis = RedisProcess().start()
    try:
        a = start_server(REDIS_URL=redis.url)
        b = start_server(REDIS_URL=redis.url)
        ana, ben = await make_client("Ana", url=a.url), await make_client("Ben", url=b.url)
        room = new_room("cluster")
        await ana.join(room)
        await ben.join(room)
        await ana.send(room, "before the outage")
        await ben.wait_for("message", lambda m: len(m) == 1)

        redis.stop()
        await wait_ready(a.url, 503)
        started = time.monotonic()
        refused = await ana.call("message", {"room": room, "text": "during the outage"}, timeout=10)
        assert refused["ok"] is False and refused["error"]["code"] == "internal"
        assert time.monotonic() - started < 5
        assert (await ben.call("history", {"room": room}, timeout=10))["error"]["code"] == "internal"
        assert ana.sio.connected and ben.sio.connected

        redis.start()  # same port, empty: a new epoch begins
        await wait_ready(a.url, 200)
        await wait_ready(b.url, 200)

        async def send_then_look() -> list[dict]:
            await ana.send(room, f"after the outage {time.monotonic()}")
            return ben.received["message"]

        # the pub/sub listener resubscribes with backoff
        await eventually(send_then_look, lambda got: any(m["text"].startswith("after") for m in got), 30,
                         interval=0.5, what="Ben hearing Ana again after the outage")
        # each instance records its presence again on its next heartbeat
        await eventually(lambda: member_names(ben, room), lambda names: names == ["Ana", "Ben"], 10,
                         interval=0.5, what="both users back in the members")
    finally:
        redis.stop()


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_the_rate_limit_holds_across_instances(request, kind, start_server, make_client):
    url = shared_redis_url(request, kind)
    a, b = (start_server(REDIS_URL=url, RATE_LIMIT="4") for _ in range(2))
    ana_a = await make_client("Ana", url=a.url)
    ana_b = await make_client(url=b.url, session=ana_a.session)
    room = new_room("cluster")
    await ana_a.join(room)
    await ana_b.join(room)
    for n in range(2):
        await ana_a.send(room, f"a{n}")
        await ana_b.send(room, f"b{n}")
    refused = await ana_b.call("message", {"room": room, "text": "fifth"})
    assert refused["error"]["code"] == "rate_limited" and 0 < refused["error"]["retry_after"] <= 10
    assert (await ana_a.call("message", {"room": room, "text": "fifth"}))["error"]["code"] == "rate_limited"


async def test_a_cluster_node_going_away_and_coming_back(redis_cluster, start_server, make_client):
    """The master holding a room's slot, which is also the first seed (where the pub/sub
    client connects), is shut down and restarted with its append-only file."""
    seed = redis_cluster.masters[0]
    room = next(r for r in iter(lambda: new_room("cluster"), None) if redis_cluster.master_for(r) is seed)
    a = start_server(REDIS_URL=redis_cluster.url, RATE_LIMIT="100000")
    b = start_server(REDIS_URL=redis_cluster.url)
    ana, ben = await make_client("Ana", url=a.url), await make_client("Ben", url=b.url)
    await ana.join(room)
    await ben.join(room)
    acked = [await ana.send(room, f"before {n}") for n in range(3)]
    await ben.wait_for("message", lambda m: len(m) == 3)

    seed.shut_down()
    try:
        await wait_ready(a.url, 503)
        started = time.monotonic()
        refused = await ana.call("message", {"room": room, "text": "during the outage"}, timeout=10)
        assert refused["ok"] is False and refused["error"]["code"] == "internal"
        assert time.monotonic() - started < 5
        assert ana.sio.connected and ben.sio.connected
    finally:
        seed.start()
    restarted = time.monotonic()
    await wait_ready(a.url, 200)
    await wait_ready(b.url, 200)

    async def send_after() -> dict:
        return await ana.call("message", {"room": room, "text": "after", "client_id": "after-restart"}, timeout=10)

    ack = await eventually(send_after, lambda ack: ack["ok"], 30, interval=0.5,
                           what="a message accepted after the node came back")
    acked.append(ack["message"])
    print(f"cluster node restart: a message accepted {time.monotonic() - restarted:.1f} s after the restart")
    assert [m["seq"] for m in acked] == [1, 2, 3, 4]  # same epoch: nothing acknowledged was lost

    async def live_again() -> bool:
        acked.append(await ana.send(room, f"probe {len(acked)}"))
        return any(m["text"] == acked[-1]["text"] for m in ben.received["message"])

    # the pub/sub client of each instance reconnects to the next seed that answers
    await eventually(live_again, bool, 30, interval=0.5, what="Ben hearing Ana again")
    print(f"live across instances again {time.monotonic() - restarted:.1f} s after the restart")
    history = await ben.call("history", {"room": room, "limit": 100})
    assert [m["id"] for m in history["messages"]] == [m["id"] for m in acked]
    await eventually(lambda: member_names(ben, room), lambda names: names == ["Ana", "Ben"], 10,
                     interval=0.5, what="both users in the members")


async def test_one_senders_messages_in_flight_together_keep_their_order(start_server, redis_url, make_client):
    """A client may send without waiting for each ack (the official client's outbox does
    after a reconnect). On Redis those messages share round trips, and must still be
    stored, acknowledged and delivered in the order they were sent."""
    a, b = (start_server(REDIS_URL=redis_url, RATE_LIMIT="100000") for _ in range(2))
    ana = await make_client("Ana", url=a.url)
    ben = await make_client("Ben", url=b.url)
    room = new_room("inflight")
    await ana.join(room)
    await ben.join(room)
    texts = [f"m{n}" for n in range(300)]
    acks = await asyncio.gather(*(ana.call("message", {"room": room, "text": text}) for text in texts))
    assert [ack["message"]["text"] for ack in acks] == texts
    seqs = [ack["message"]["seq"] for ack in acks]
    assert seqs == list(range(seqs[0], seqs[0] + len(texts)))
    got = await ben.wait_for("message", lambda m: len(m) >= len(texts))
    assert [m["text"] for m in got] == texts
    history = await ben.call("history", {"room": room, "limit": 100})
    assert [m["text"] for m in history["messages"]] == texts[-100:]
