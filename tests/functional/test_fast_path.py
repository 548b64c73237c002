"""Room broadcasts written straight to each WebSocket (`GuardedEngineServer.deliver`):
every recipient gets every message once and in `seq` order, whichever path each
delivery takes (direct write, or the library's queue behind a backlog or on polling)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_client import NAMESPACE, ChatClient, new_room, new_session
from tests.conftest import ServerProcess
from tests.raw_socket import UnreadSocket


def seqs(client: ChatClient) -> list[int]:
    return [message["seq"] for message in client.received["message"]]


async def test_concurrent_senders_reach_everyone_in_seq_order(make_client: Callable[..., Any]) -> None:
    room = new_room("order")
    senders = [await make_client(f"S{n}") for n in range(4)]
    readers = [await make_client(f"R{n}") for n in range(6)]
    for client in senders + readers:
        await client.join(room)
    per_sender = 60

    async def talk(sender: ChatClient) -> None:
        for n in range(per_sender):
            await sender.send(room, f"{sender.user['name']} {n}")

    await asyncio.gather(*(talk(sender) for sender in senders))
    total = per_sender * len(senders)
    for client in senders + readers:
        await client.wait_for("message", lambda got: len(got) >= total)
        assert seqs(client) == list(range(1, total + 1)), client.user["name"]


async def test_a_socket_with_a_backlog_gets_the_rest_behind_it_in_order(
        start_server: Callable[..., ServerProcess], make_client: Callable[..., Any]) -> None:
    """A big ack the client is slow to read keeps Engine.IO's writer busy: broadcasts
    meanwhile must queue behind it, not overtake it."""
    server = start_server(RATE_LIMIT="100000", MAX_MESSAGE_LENGTH="4000")
    room = new_room("backlog")
    sender = await make_client("Ana", url=server.url)
    await sender.join(room)
    for n in range(100):  # each goes out as 48 kB of JSON (\ud83d\ude00 per emoji)
        await sender.send(room, f"{n} " + "\U0001F600" * 3990)
    session = await new_session(server.url, "Slow")
    slow = await UnreadSocket.connect(server.url, session["token"])
    await slow.send(f"42{NAMESPACE},1" + json.dumps(["join", {"room": room}]))
    assert (await slow.receive()).startswith(f"43{NAMESPACE},1")
    # Ask for 4.8 MB of history, more than the kernel's socket buffers hold, and do not
    # read while the room keeps talking.
    queued_before = await queued_deliveries(server)
    await slow.send(f"42{NAMESPACE},2" + json.dumps(["history", {"room": room, "limit": 100}]))
    await asyncio.sleep(0.5)  # the server writes the ack, and waits for the client to take it
    for n in range(100, 160):
        await sender.send(room, f"{n} short")
    frames: list[str] = []
    while True:
        frame = await slow.receive(timeout=5)
        frames.append(frame)
        if frame.startswith(f"42{NAMESPACE},") and '"seq":160' in frame:
            break
    await slow.close()
    history_at = next(i for i, frame in enumerate(frames) if frame.startswith(f"43{NAMESPACE},2"))
    live = [json.loads(frame[len(f"42{NAMESPACE},"):])[1]["seq"] for frame in frames
            if frame.startswith(f"42{NAMESPACE},[\"message\"")]
    assert live == list(range(101, 161))
    assert len(frames[history_at]) > 4_000_000 and history_at < len(frames) - 60
    assert await queued_deliveries(server) - queued_before >= 60  # the slow socket's share took the queue


async def queued_deliveries(server: ServerProcess) -> float:
    return await deliveries(server.url, "queued")


async def deliveries(url: str, path: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        text = await response.text()
    return next(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                if sample.name == "chat_deliveries_total" and sample.labels == {"path": path})


async def test_acks_are_written_directly_and_keep_their_order(server_url: str,
                                                             make_client: Callable[..., Any]) -> None:
    """An ack is written straight to an idle WebSocket like a broadcast, so it neither waits
    for the writer task nor overtakes what was delivered before it."""
    room = new_room("acks")
    ana = await make_client("Ana")
    await ana.join(room)
    direct_before = await deliveries(server_url, "direct")
    for n in range(50):
        sent = await ana.send(room, f"{n}")
        assert ana.received["message"][-1] == sent  # her own copy came before the ack that names it
    # 50 broadcasts to Ana and 50 acks, each direct (other tests on the shared server may add more)
    assert await deliveries(server_url, "direct") - direct_before >= 100


async def test_a_socket_that_upgrades_from_polling_misses_nothing(make_client: Callable[..., Any]) -> None:
    room = new_room("upgrade")
    sender = await make_client("Ana")
    await sender.join(room)
    sending = True

    async def keep_talking() -> int:
        sent = 0
        while sending or sent < 20:
            sent += 1
            await sender.send(room, f"m{sent}")
            await asyncio.sleep(0.005)
        return sent

    talker = asyncio.create_task(keep_talking())
    await asyncio.sleep(0.05)
    upgrader = await make_client("Bo", transports=["polling", "websocket"])
    ack = await upgrader.join(room)
    for _ in range(100):
        if upgrader.sio.transport() == "websocket":
            break
        await asyncio.sleep(0.02)
    assert upgrader.sio.transport() == "websocket"
    await asyncio.sleep(0.2)
    sending = False
    sent = await talker
    await upgrader.wait_for("message", lambda got: bool(got) and got[-1]["seq"] == sent)
    first = ack["seq"] + 1
    assert seqs(upgrader) == list(range(first, sent + 1))
