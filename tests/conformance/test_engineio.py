"""Engine.IO v4, as its specification and the maintainers' test suite (socketio/engine.io-protocol,
test-suite/) state it: handshake, messages, heartbeat, close and upgrade, over both transports.

Written from the specification, not copied from the suite. The suite's server echoes messages;
ours speaks Socket.IO above Engine.IO, so the messages here are Socket.IO packets of `/chat`.
Each test runs against ours and against Node's server (see conftest)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.conformance.conftest import CONNECT_TIMEOUT, PING_INTERVAL, PING_TIMEOUT, Target
from tests.conformance.engine_client import (
    SEPARATOR,
    chat_session,
    connect_packet,
    frame,
    frames_until_closed,
    next_packet,
    open_polling,
    open_websocket,
    poll,
    push,
    query,
    request,
)

HANDSHAKE_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
LATE = 0.5  # seconds past a deadline that still count as on time on a busy machine




# --- handshake ---------------------------------------------------------------------------

async def test_polling_handshake_announces_the_session(http: aiohttp.ClientSession, target: Target) -> None:
    sid, opened = await open_polling(http, target)
    assert set(opened) == HANDSHAKE_KEYS
    assert isinstance(sid, str) and sid
    assert opened["upgrades"] == ["websocket"]
    assert opened["pingInterval"] == PING_INTERVAL * 1000
    assert opened["pingTimeout"] == PING_TIMEOUT * 1000
    assert opened["maxPayload"] == 1_000_000


async def test_websocket_handshake_announces_no_upgrade(http: aiohttp.ClientSession, target: Target) -> None:
    ws = await open_websocket(http, target)
    data = await frame(ws)
    assert isinstance(data, str) and data.startswith("0")
    opened = json.loads(data[1:])
    assert set(opened) == HANDSHAKE_KEYS
    assert opened["upgrades"] == []
    assert (opened["pingInterval"], opened["pingTimeout"]) == (PING_INTERVAL * 1000, PING_TIMEOUT * 1000)
    await ws.close()


@pytest.mark.parametrize("params", ["transport=polling", "EIO=abc&transport=polling", "EIO=3&transport=polling"])
async def test_a_handshake_without_engineio_4_is_refused(http: aiohttp.ClientSession, target: Target,
                                                          params: str) -> None:
    assert (await request(http, target, "GET", f"/socket.io/?{params}")).status == 400


@pytest.mark.parametrize("params", ["EIO=4", "EIO=4&transport=abc", "EIO=4&transport="])
async def test_a_handshake_without_a_known_transport_is_refused(http: aiohttp.ClientSession, target: Target,
                                                                 params: str) -> None:
    assert (await request(http, target, "GET", f"/socket.io/?{params}")).status == 400


@pytest.mark.parametrize("params", ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4",
                                    "EIO=4&transport=abc"])
async def test_a_websocket_without_engineio_4_or_transport_is_refused(http: aiohttp.ClientSession,
                                                                       target: Target, params: str) -> None:
    """Refused: ours answers the upgrade `400`; Node's server takes the upgrade and then
    answers garbage, which ends the WebSocket. Either way, no session opens."""
    try:
        ws = await http.ws_connect(target.ws_url + f"/socket.io/?{params}")
    except aiohttp.WSServerHandshakeError as refused:
        assert refused.status == 400
    else:
        assert await frame(ws, 3) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_a_handshake_by_another_method_than_get_is_refused(http: aiohttp.ClientSession, target: Target,
                                                                 method: str) -> None:
    assert (await request(http, target, method, query(EIO="4", transport="polling"))).status == 400


async def test_a_request_of_an_unknown_session_is_refused(http: aiohttp.ClientSession, target: Target) -> None:
    assert (await poll(http, target, "no-such-session")).status == 400
    assert (await push(http, target, "no-such-session", "3")).status == 400


# --- messages ----------------------------------------------------------------------------

async def test_polling_carries_several_packets_each_way(http: aiohttp.ClientSession, target: Target) -> None:
    sid, _ = await open_polling(http, target)
    connected = await push(http, target, sid, connect_packet(target))
    assert (connected.status, connected.body) == (200, "ok")
    assert (await poll(http, target, sid)).body.startswith("40/chat,")
    sent = await push(http, target, sid, '42/chat,7["join",{"room":"lobby"}]', '42/chat,8["join",{"room":"hall"}]')
    assert (sent.status, sent.body) == (200, "ok")
    packets: list[str] = []
    while len(packets) < 2:
        answer = await poll(http, target, sid)
        assert answer.status == 200
        packets += [packet for packet in answer.body.split(SEPARATOR) if packet not in ("2", "6")]  # ping, noop
    assert [packet[:len("43/chat,7[")] for packet in packets] == ["43/chat,7[", "43/chat,8["]
    assert all(json.loads(packet[len("43/chat,7"):])[0]["ok"] is True for packet in packets)


async def test_a_malformed_polling_payload_closes_the_session(http: aiohttp.ClientSession, target: Target) -> None:
    sid, _ = await open_polling(http, target)
    refused = await push(http, target, sid, "abc")
    assert refused.status in (200, 400)  # the suite leaves it open: Node says 200, ours 400
    assert (await poll(http, target, sid)).status == 400


async def test_a_malformed_websocket_packet_closes_the_session(http: aiohttp.ClientSession, target: Target) -> None:
    ws = await open_websocket(http, target)
    await frame(ws)
    await ws.send_str("abc")
    await frames_until_closed(ws, 3)


# --- heartbeat ---------------------------------------------------------------------------

async def test_polling_pings_every_interval_while_answered(http: aiohttp.ClientSession, target: Target) -> None:
    sid, _ = await open_polling(http, target)
    last = time.monotonic()
    for _ in range(3):
        answer = await poll(http, target, sid)
        assert (answer.status, answer.body) == (200, "2")
        now = time.monotonic()
        assert PING_INTERVAL - 0.05 <= now - last <= PING_INTERVAL + LATE
        assert (await push(http, target, sid, "3")).status == 200
        last = time.monotonic()


async def test_polling_session_ends_when_a_ping_goes_unanswered(http: aiohttp.ClientSession, target: Target) -> None:
    sid, _ = await open_polling(http, target)
    await asyncio.sleep(PING_INTERVAL + PING_TIMEOUT + 0.1)
    assert (await poll(http, target, sid)).status == 400


async def test_websocket_pings_every_interval_while_answered(http: aiohttp.ClientSession, target: Target) -> None:
    ws = await open_websocket(http, target)
    await frame(ws)
    last = time.monotonic()
    for _ in range(3):
        assert await frame(ws) == "2"
        now = time.monotonic()
        assert PING_INTERVAL - 0.05 <= now - last <= PING_INTERVAL + LATE
        await ws.send_str("3")
        last = time.monotonic()
    await ws.close()


async def test_websocket_is_closed_on_time_when_a_ping_goes_unanswered(http: aiohttp.ClientSession,
                                                                        target: Target) -> None:
    ws = await open_websocket(http, target)
    await frame(ws)
    await ws.send_str(connect_packet(target))  # a namespace, so that only the heartbeat can close it
    started = time.monotonic()
    seen = await frames_until_closed(ws, PING_INTERVAL + PING_TIMEOUT + 3)
    elapsed = time.monotonic() - started
    assert "2" in seen
    assert PING_INTERVAL + PING_TIMEOUT - 0.05 <= elapsed <= PING_INTERVAL + PING_TIMEOUT + LATE


# --- close -------------------------------------------------------------------------------

async def test_a_close_packet_answers_the_pending_poll_and_ends_the_session(http: aiohttp.ClientSession,
                                                                             target: Target) -> None:
    sid, _ = await open_polling(http, target)
    pending = asyncio.ensure_future(poll(http, target, sid))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert (await push(http, target, sid, "1")).status == 200
    answer = await pending
    assert (answer.status, answer.body) == (200, "6")
    assert time.monotonic() - started < 0.5
    assert (await poll(http, target, sid)).status == 400


async def test_a_close_packet_without_a_pending_poll_ends_the_session(http: aiohttp.ClientSession,
                                                                       target: Target) -> None:
    sid, _ = await open_polling(http, target)
    assert (await push(http, target, sid, "1")).status == 200
    assert (await poll(http, target, sid)).status == 400


async def test_a_close_packet_closes_the_websocket(http: aiohttp.ClientSession, target: Target) -> None:
    """The suite's rule: the WebSocket closes (Node's does so only at the ping timeout)."""
    ws = await open_websocket(http, target)
    await frame(ws)
    await ws.send_str("1")
    await frames_until_closed(ws, PING_INTERVAL + PING_TIMEOUT + LATE)


async def test_a_close_packet_closes_the_websocket_at_once(http: aiohttp.ClientSession, ours: Target) -> None:
    """The contract's stronger rule, which Node's server does not keep (it reads on until
    the heartbeat ends the session): the WebSocket closes as soon as the close packet is read."""
    ws = await chat_session(http, ours)
    await ws.send_str("1")
    await frames_until_closed(ws, 0.5)


async def test_a_second_poll_while_one_is_pending_closes_the_session(http: aiohttp.ClientSession,
                                                                      target: Target) -> None:
    sid, _ = await open_polling(http, target)
    first = asyncio.ensure_future(poll(http, target, sid))
    await asyncio.sleep(0.1)
    second = await poll(http, target, sid)
    assert second.status in (400, 500)  # the suite allows Node's 500; ours answers 400
    answer = await first
    assert (answer.status, answer.body) == (200, "1")
    assert (await poll(http, target, sid)).status == 400


# --- upgrade -----------------------------------------------------------------------------

async def upgraded(http: aiohttp.ClientSession, target: Target) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    """A polling session upgraded to a WebSocket with no poll pending: its sid and the WebSocket."""
    sid, _ = await open_polling(http, target)
    ws = await open_websocket(http, target, sid=sid)
    await ws.send_str("2probe")
    assert await frame(ws) == "3probe"
    await ws.send_str("5")
    await asyncio.sleep(0.1)
    return sid, ws


async def test_upgrade_from_polling_to_websocket(http: aiohttp.ClientSession, target: Target) -> None:
    sid, _ = await open_polling(http, target)
    assert (await push(http, target, sid, connect_packet(target))).status == 200
    assert (await poll(http, target, sid)).body.startswith("40/chat,")
    pending = asyncio.ensure_future(poll(http, target, sid))
    await asyncio.sleep(0.05)
    ws = await open_websocket(http, target, sid=sid)
    await ws.send_str("2probe")
    assert await frame(ws) == "3probe"
    answer = await pending
    assert (answer.status, answer.body) == (200, "6")  # the noop that ends the pending poll
    await ws.send_str("5")
    await ws.send_str('42/chat,9["join",{"room":"lobby"}]')
    assert str(await next_packet(ws)).startswith("43/chat,9[")
    await ws.close()


async def test_after_an_upgrade_polling_requests_are_refused(http: aiohttp.ClientSession, target: Target) -> None:
    sid, ws = await upgraded(http, target)
    assert (await poll(http, target, sid)).status == 400
    await ws.send_str(connect_packet(target))
    assert str(await next_packet(ws)).startswith("40/chat,")
    await ws.close()


async def test_after_an_upgrade_a_second_websocket_is_refused(http: aiohttp.ClientSession, target: Target) -> None:
    sid, ws = await upgraded(http, target)
    try:
        second = await open_websocket(http, target, sid=sid)
    except aiohttp.WSServerHandshakeError:
        pass  # refused before the upgrade: as good as closed
    else:
        await frames_until_closed(second, 3)
    await ws.send_str(connect_packet(target))
    assert str(await next_packet(ws)).startswith("40/chat,")
    await ws.close()


# --- the namespace connect deadline --------------------------------------------------------

async def test_a_session_that_connects_to_no_namespace_is_closed_after_the_connect_timeout(
        http: aiohttp.ClientSession, target: Target) -> None:
    ws = await open_websocket(http, target)
    await frame(ws)
    started = time.monotonic()
    while (data := await frame(ws, CONNECT_TIMEOUT + 3)) is not None:
        if data == "1":  # ours says goodbye with a close packet; Node's just closes
            continue
        assert data == "2"
        await ws.send_str("3")  # alive, just never connecting
    assert CONNECT_TIMEOUT - 0.05 <= time.monotonic() - started <= CONNECT_TIMEOUT + LATE
