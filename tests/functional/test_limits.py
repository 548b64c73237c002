"""Limits a public server needs: oversized frames, clients that stop reading,
connection floods from one address, and rooms per connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import socketio

from bench.servers import rss_kib
from tests.chat_client import NAMESPACE, new_room, new_session
from tests.conftest import ServerProcess, eventually
from tests.raw_socket import RawSocket, UnreadSocket, polling_sid

KiB = 1024
MiB = 1024 * KiB


def rss_bytes(server: ServerProcess) -> int:
    assert server.proc is not None
    return rss_kib(server.proc.pid) * KiB


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_long_paste_is_answered_too_large_and_the_user_stays(
        shared_server: ServerProcess, make_client: Callable[..., Any], transport: str) -> None:
    ana = await make_client("Ana", transports=[transport])
    room = new_room()
    await ana.join(room)
    for length in (100_000, 900_000):
        ack = await ana.call("message", {"room": room, "text": "x" * length, "client_id": f"paste-{length}"})
        assert ack["ok"] is False and ack["error"]["code"] == "too_large", ack
    assert ana.sio.connected
    assert (await ana.send(room, "shorter now"))["seq"] == 1


async def test_frames_up_to_the_limit_are_read_and_past_it_close_the_connection(
        start_server: Callable[..., ServerProcess]) -> None:
    limit = 200_000
    server = start_server(MAX_FRAME_BYTES=str(limit))
    session = await new_session(server.url, "Mallory")
    raw = await RawSocket.connect(server.url, session["token"])
    assert (await raw.call("join", {"room": "lobby"}))["ok"]
    frame = f'42{NAMESPACE},5["message",{{"room":"lobby","text":"' + "x" * limit + '"}]'
    at_limit = frame[:limit - 3] + '"}]'
    assert len(at_limit.encode()) == limit
    await raw.send(at_limit)
    prefix = f"43{NAMESPACE},5"
    while not (answer := await raw.receive()).startswith(prefix):
        pass
    assert json.loads(answer[len(prefix):])[0]["error"]["code"] == "too_large"
    await raw.send(frame[:limit - 2] + '"}]')  # one byte past the limit
    assert await raw.closed_by_server()
    await raw.close()
    await eventually(lambda: server.log().count("closing connection"), lambda count: count == 1, 5,
                     what="one warning line")


async def test_many_frames_near_the_limit_at_once_cost_bounded_memory(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    session = await new_session(server.url, "Mallory")
    sockets = [await RawSocket.connect(server.url, session["token"]) for _ in range(20)]
    frame = f'42{NAMESPACE},1["message",{{"room":"lobby","text":"' + "x" * 990_000 + '"}]'
    before = rss_bytes(server)
    for _ in range(3):
        await asyncio.gather(*(raw.send(frame) for raw in sockets))
        answers = await asyncio.gather(*(raw.receive(timeout=20) for raw in sockets))
        assert all(answer.startswith(f"43{NAMESPACE},1") for answer in answers)
    grown = rss_bytes(server) - before
    print(f"60 frames of 1 MB, 20 at once: server RSS grew {grown / MiB:.1f} MiB")
    assert grown < 100 * MiB
    for raw in sockets:
        await raw.close()


async def test_oversized_websocket_frame_closes_that_connection_only(
        start_server: Callable[..., ServerProcess], make_client: Callable[..., Any]) -> None:
    server = start_server()
    bystander = await make_client("Bo", url=server.url)
    await bystander.join("lobby")
    session = await new_session(server.url, "Mallory")
    before = rss_bytes(server)
    for _ in range(3):
        raw = await RawSocket.connect(server.url, session["token"])
        try:
            await raw.send(f'42{NAMESPACE},["message",{{"room":"lobby","text":"' + "x" * (64 * MiB) + '"}]')
        except ConnectionError:
            pass  # the server hung up before the frame was through: as it should
        else:
            assert await raw.closed_by_server(timeout=20)
        await raw.close()
    # aiohttp stops reading a frame at the limit: 3 x 64 MiB never sat in memory.
    grown = rss_bytes(server) - before
    print(f"3 frames of 64 MiB refused; server RSS grew {grown / MiB:.1f} MiB")
    assert grown < 32 * MiB
    assert (await bystander.send("lobby", "still here"))["seq"] == 1
    assert server.log().count("closing connection") == 3


async def test_oversized_polling_body_is_refused_with_413(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    async with aiohttp.ClientSession() as http:
        sid = await polling_sid(http, server.url)
        body = f'42{NAMESPACE},["message",{{"room":"lobby","text":"'.encode() + b"x" * (2 * MiB) + b'"}]'
        async with http.post(server.url + f"/socket.io/?EIO=4&transport=polling&sid={sid}", data=body) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "too_large"


async def test_stalled_client_is_cut_off_without_slowing_others_and_recovers(
        start_server: Callable[..., ServerProcess], make_client: Callable[..., Any]) -> None:
    server = start_server(MAX_BACKLOG="50", RATE_LIMIT="100000")
    sender = await make_client("Ana", url=server.url)
    reader = await make_client("Bo", url=server.url)
    await sender.join("busy")
    await reader.join("busy")
    stalled_session = await new_session(server.url, "Cy")
    stalled = await RawSocket.connect(server.url, stalled_session["token"], receive_buffer=4096)
    joined = await stalled.call("join", {"room": "busy"})
    epoch = joined["epoch"]
    # Cy stops reading. Ana keeps talking; Bo must hear every message promptly.
    text = "y" * 2000
    sent = 0
    before = rss_bytes(server)
    while "not reading" not in server.log():
        for _ in range(50):
            sent += 1
            await sender.send("busy", f"{sent} {text}")
        await reader.wait_for("message", lambda got, n=sent: len(got) == n, timeout=5)
        assert sent < 20_000, "the stalled client was never cut off"
    grown = rss_bytes(server) - before
    print(f"stalled client cut off after {sent} messages of 2 kB; server RSS grew {grown / MiB:.1f} MiB")
    assert grown < 32 * MiB
    assert [message["seq"] for message in reader.received["message"]] == list(range(1, sent + 1))

    seen = await _seqs_until_closed(stalled)
    await stalled.close()
    assert len(seen) < sent
    # Cy comes back and catches up with `since`: every message exactly once.
    cy = await make_client(url=server.url, session=stalled_session)
    last = max(seen, default=0)
    ack = await cy.join("busy", since={"seq": last, "epoch": epoch})
    assert ack["recovered"] is True
    assert seen + [message["seq"] for message in ack["messages"]] == list(range(1, sent + 1))
    await cy.close()
    assert server.log().count("not reading") == 1


async def _seqs_until_closed(raw: RawSocket) -> list[int]:
    """The `seq` of every message the server managed to hand the socket before cutting it off."""
    seqs: list[int] = []
    event_prefix = f"42{NAMESPACE},"
    with_prefix = event_prefix + '["message",'
    while True:
        try:
            frame = await raw.receive(timeout=5)
        except (ConnectionError, TimeoutError, aiohttp.ClientError):
            return seqs
        if frame.startswith(with_prefix):
            seqs.append(json.loads(frame[len(event_prefix):])[1]["seq"])


async def test_connections_per_address_are_capped_and_others_still_served(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(MAX_CONNECTIONS_PER_ADDRESS="20")
    handshake = server.url + "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as flood, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as other:
        async def attempt() -> int:
            async with flood.get(handshake) as response:
                if response.status == 429:
                    error = (await response.json())["error"]
                    assert error["code"] == "rate_limited" and error["retry_after"] > 0
                return response.status

        statuses = await asyncio.gather(*(attempt() for _ in range(200)))
        assert statuses.count(200) == 20 and statuses.count(429) == 180

        # Someone at another address connects and chats during the flood.
        session = await new_session(server.url, "Di")
        client = socketio.AsyncClient(reconnection=False, http_session=other)
        got: list[Any] = []
        client.on("message", got.append, namespace=NAMESPACE)
        await client.connect(server.url, namespaces=[NAMESPACE], auth={"token": session["token"]},
                             transports=["websocket"], wait_timeout=5)
        await client.call("join", {"room": "calm"}, namespace=NAMESPACE)
        more = asyncio.gather(*(attempt() for _ in range(100)))
        ack = await client.call("message", {"room": "calm", "text": "hi"}, namespace=NAMESPACE, timeout=2)
        assert ack["ok"] and (await more).count(429) == 100
        await client.disconnect()


async def test_rooms_per_connection_are_capped(start_server: Callable[..., ServerProcess],
                                               make_client: Callable[..., Any]) -> None:
    server = start_server(MAX_ROOMS_PER_CONNECTION="3")
    ana = await make_client("Ana", url=server.url)
    for room in ("a", "b", "c"):
        await ana.join(room)
    await ana.join("a")  # joining again is no new room
    refused = await ana.call("join", {"room": "d"})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    assert "at most 3 rooms" in refused["error"]["message"]
    assert (await ana.call("leave", {"room": "b"}))["ok"]
    await ana.join("d")


async def _handshake_status(http: aiohttp.ClientSession, url: str, forwarded_for: str) -> int:
    async with http.get(url + "/socket.io/?EIO=4&transport=polling",
                        headers={"X-Forwarded-For": forwarded_for}) as response:
        return response.status


async def test_the_cap_counts_forwarded_addresses_only_from_trusted_proxies(
        start_server: Callable[..., ServerProcess]) -> None:
    behind_proxy = start_server(MAX_CONNECTIONS_PER_ADDRESS="2", TRUSTED_PROXIES="127.0.0.1")
    exposed = start_server(MAX_CONNECTIONS_PER_ADDRESS="2")
    async with aiohttp.ClientSession() as http:
        # 127.0.0.1 is the trusted proxy: each client behind it has its own allowance,
        # and an address the client itself put in front of the list changes nothing.
        statuses = [await _handshake_status(http, behind_proxy.url, address)
                    for address in ["10.0.0.1", "10.0.0.1", "10.0.0.1", "1.2.3.4, 10.0.0.1", "10.0.0.2"]]
        assert statuses == [200, 200, 429, 429, 200]
        # Without TRUSTED_PROXIES the header is ignored: a client cannot forge new addresses.
        statuses = [await _handshake_status(http, exposed.url, f"10.0.0.{n}") for n in range(3)]
        assert statuses == [200, 200, 429]


async def test_a_client_that_stops_answering_pings_is_closed_and_leaves(
        start_server: Callable[..., ServerProcess], make_client: Callable[..., Any]) -> None:
    """A phone that lost its network sends no close: the server notices the unanswered
    ping within PING_TIMEOUT (plus a second), and its user leaves the room for everyone else.
    A client that answers pings stays."""
    server = start_server(PING_INTERVAL="1", PING_TIMEOUT="1")
    room = new_room("pings")
    ana = await make_client("Ana", url=server.url)
    await ana.join(room)
    session = await new_session(server.url, "Ghost")
    ghost = await UnreadSocket.connect(server.url, session["token"])  # never answers a ping
    await ghost.send(f"42{NAMESPACE},1" + json.dumps(["join", {"room": room}]))
    await ana.wait_for("presence", lambda seen: [p["status"] for p in seen] == ["joined"])
    await ana.wait_for("presence", lambda seen: [p["status"] for p in seen] == ["joined", "left"], timeout=6)
    assert ana.received["presence"][-1]["user"] == session["user"]
    await asyncio.sleep(2)  # Ana, who answers, is still here after more pings
    assert ana.sio.connected
    assert [u["name"] for u in (await ana.call("members", {"room": room}))["members"]] == ["Ana"]
    await ana.send(room, "the ghost is gone")
    frames = []
    with contextlib.suppress(ConnectionError, TimeoutError):
        while True:
            frames.append(await ghost.receive(timeout=1))
    assert not any("the ghost is gone" in frame for frame in frames), frames


async def test_clients_that_leave_during_their_upgrade_leave_no_error(
        start_server: Callable[..., ServerProcess]) -> None:
    """A reconnect storm has clients that give up mid-handshake: the server drops their
    upgrade quietly (it logged an unhandled exception per client: aiohttp cannot finish a
    WebSocket response that was never prepared)."""
    server = start_server()
    port = int(server.url.rsplit(":", 1)[1])
    request = (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
    for _ in range(200):  # each sends the upgrade and resets the connection at once
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        writer.transport.abort()
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200  # still serving
    await asyncio.sleep(0.5)
    server.stop()
    assert "Unhandled exception" not in server.log() and "Traceback" not in server.log(), server.log()[-3000:]
