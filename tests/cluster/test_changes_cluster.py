"""Messages that change and read state across two instances sharing Redis (one server, the
master a Sentinel names, a Cluster): concurrent changes take distinct, gapless `rev`s; a
client recovers every change on the other instance; read state is the same on both."""

from __future__ import annotations

import asyncio

import pytest

from tests.chat_client import new_room
from tests.cluster.test_cluster import shared_redis_url
from tests.functional.test_user_events import connected


@pytest.fixture(params=["redis", "sentinel", "cluster"])
def pair(request, start_server):
    url = shared_redis_url(request, request.param)
    return [start_server(REDIS_URL=url, RATE_LIMIT="100000") for _ in range(2)]


async def test_changes_from_both_instances_take_gapless_revs_and_recover_on_either(pair):
    a, b = pair
    room = new_room("changes")
    on_a = await connected(a.url, f"ana-{room}")
    on_b = await connected(b.url, f"ben-{room}")
    watcher = await connected(b.url, f"watcher-{room}")
    for client in (on_a, on_b, watcher):
        await client.join(room)
    first = await on_a.send(room, "one")
    second = await on_b.send(room, "two")
    seen = await watcher.join(room)
    assert seen["rev"] == second["rev"]
    await watcher.close()
    changes = [client.call("react", {"room": room, "seq": first["seq"], "emoji": f"{name}{n}", "on": True})
               for n in range(10) for client, name in ((on_a, "a"), (on_b, "b"))]
    changes += [on_a.call("edit", {"room": room, "seq": first["seq"], "text": "one!"}),
                on_b.call("delete", {"room": room, "seq": second["seq"]})]
    acks = await asyncio.gather(*changes)
    assert all(ack["ok"] for ack in acks), [ack for ack in acks if not ack["ok"]]
    revs = sorted(ack["message"]["rev"] for ack in acks)
    assert revs == list(range(second["rev"] + 1, second["rev"] + 23))  # distinct and gapless
    third = await on_a.send(room, "three")
    assert third["rev"] == second["rev"] + 23
    for client in (on_a, on_b):  # everyone saw every change once, in rev order
        await client.wait_for("message_updated", lambda got: len(got) >= 22)
        assert [m["rev"] for m in client.received["message_updated"]] == revs

    for server in (a, b):  # the watcher comes back on either instance
        back = await connected(server.url, f"watcher-{room}")
        since = {"seq": seen["seq"], "epoch": seen["epoch"], "rev": seen["rev"]}
        ack = await back.join(room, since=since)
        assert ack["recovered"] and ack["messages"] == [third] and ack["rev"] == third["rev"]
        assert sorted(m["seq"] for m in ack["updated"]) == [first["seq"], second["seq"]]
        assert [m["rev"] for m in ack["updated"]] == sorted(m["rev"] for m in ack["updated"])
        current = {m["seq"]: m for m in (await back.call("history", {"room": room}))["messages"]}
        assert {m["seq"]: m for m in ack["updated"]} == {seq: current[seq] for seq in (first["seq"], second["seq"])}
        assert current[first["seq"]]["text"] == "one!" and len(current[first["seq"]]["reactions"]) == 20
        assert current[second["seq"]]["deleted"] and current[second["seq"]]["reactions"] == {}
        await back.close()
    for client in (on_a, on_b):
        await client.close()


async def test_read_state_is_the_same_on_both_instances(pair):
    a, b = pair
    room = new_room("reads")
    user = f"reader-{room}"
    laptop, phone = await connected(a.url, user), await connected(b.url, user)
    writer = await connected(a.url, f"writer-{room}")
    await writer.join(room)
    for n in range(6):
        await writer.send(room, f"w{n}")
    assert (await laptop.join(room))["unread"] == 6
    assert (await laptop.call("read", {"room": room, "seq": 4}))["last_read"] == 4
    await phone.wait_for("read", lambda got: got == [{"room": room, "last_read": 4}])
    ack = await phone.join(room)
    assert (ack["last_read"], ack["unread"]) == (4, 2)
    sent = await laptop.send(room, "read it all")  # sending marks read: the other device hears it, once
    await phone.wait_for("read", lambda got: {"room": room, "last_read": sent["seq"]} in got)
    assert phone.received["read"].count({"room": room, "last_read": sent["seq"]}) == 1
    assert {"room": room, "last_read": sent["seq"]} not in laptop.received["read"]  # it has its ack
    for client in (laptop, phone, writer):
        await client.close()
