"""Socket.IO v5, as its specification and the maintainers' test suite (socketio/socket.io-protocol,
test-suite/) state it, for a server whose one namespace is `/chat` and that wants a token:
connect and its refusals, disconnect, events and acks, malformed packets.

Written from the specification, not copied from the suite (whose server echoes events and
serves `/` and `/custom`). Tests of rules both servers follow run against ours and Node's."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.conformance.conftest import Target
from tests.conformance.engine_client import (
    chat_session,
    connect_packet,
    engine_session,
    frame,
    frames_until_closed,
    next_packet,
)


async def test_connect_to_chat_with_a_token_answers_a_sid(http: aiohttp.ClientSession, target: Target) -> None:
    ws = await engine_session(http, target)
    await ws.send_str(connect_packet(target))
    answer = str(await next_packet(ws))
    assert answer.startswith("40/chat,")
    handshake = json.loads(answer[len("40/chat,"):])
    assert set(handshake) == {"sid"} and isinstance(handshake["sid"], str)
    await ws.close()


@pytest.mark.parametrize("auth", ["", "{}", '{"token":17}'])
async def test_connect_to_chat_without_a_token_is_refused_with_a_reason(http: aiohttp.ClientSession,
                                                                        target: Target, auth: str) -> None:
    ws = await engine_session(http, target)
    await ws.send_str("40/chat," + auth)
    answer = str(await next_packet(ws))
    assert answer.startswith("44/chat,")
    refusal = json.loads(answer[len("44/chat,"):])
    assert isinstance(refusal["message"], str) and refusal["message"]
    assert refusal["data"]["code"] == "unauthorized"
    await ws.close()


@pytest.mark.parametrize("namespace", ["/random", "/chat2", "/Chat"])
async def test_connect_to_an_unknown_namespace_is_refused(http: aiohttp.ClientSession, target: Target,
                                                          namespace: str) -> None:
    ws = await engine_session(http, target)
    await ws.send_str(f"40{namespace},")
    assert await next_packet(ws) == f'44{namespace},{{"message":"Invalid namespace"}}'
    await ws.send_str(connect_packet(target))  # the session itself goes on
    assert str(await next_packet(ws)).startswith("40/chat,")
    await ws.close()


@pytest.mark.parametrize("connect", ["40", '40{"token":"x"}', "40/,"])
async def test_connect_to_the_default_namespace_is_refused(http: aiohttp.ClientSession, ours: Target,
                                                           connect: str) -> None:
    """The contract's rule, not Node's: there `/` always exists. Here nothing would answer
    in `/`, so a client that forgot `/chat` learns it at once instead of waiting on acks."""
    ws = await engine_session(http, ours)
    await ws.send_str(connect)
    assert await next_packet(ws) == '44{"message":"Invalid namespace"}'
    await ws.close()


async def test_an_invalid_handshake_closes_the_connection(http: aiohttp.ClientSession, target: Target) -> None:
    ws = await engine_session(http, target)
    await ws.send_str("4abc")
    await frames_until_closed(ws, 3)


async def test_disconnect_from_chat_leaves_the_session_open(http: aiohttp.ClientSession, target: Target) -> None:
    ws = await chat_session(http, target)
    await ws.send_str("41/chat,")
    assert await frame(ws) == "2"  # nothing but the next ping: the Engine.IO session lives on
    await ws.send_str("3")
    await ws.send_str(connect_packet(target))
    assert str(await next_packet(ws)).startswith("40/chat,")
    await ws.close()


async def test_an_event_with_an_ack_id_is_acknowledged_with_that_id(http: aiohttp.ClientSession,
                                                                    target: Target) -> None:
    ws = await chat_session(http, target)
    await ws.send_str('42/chat,456["join",{"room":"lobby"}]')
    answer = str(await next_packet(ws))
    assert answer.startswith("43/chat,456[")
    assert json.loads(answer[len("43/chat,456"):])[0]["ok"] is True
    await ws.close()


async def test_an_event_to_a_namespace_not_connected_gets_no_answer_from_it(http: aiohttp.ClientSession,
                                                                           ours: Target) -> None:
    ws = await chat_session(http, ours)
    await ws.send_str('42/other,1["join",{"room":"lobby"}]')
    await ws.send_str('42/chat,2["join",{"room":"lobby"}]')
    assert str(await next_packet(ws)).startswith("43/chat,2[")
    await ws.close()


@pytest.mark.parametrize("packet", ["4abc", '42/chat,{}', '42/chat,abc["join",{"room":"lobby"}]',
                                    '42/chat,[]', '42/chat,"join"'])
async def test_a_malformed_packet_closes_the_connection(http: aiohttp.ClientSession, target: Target,
                                                        packet: str) -> None:
    ws = await chat_session(http, target)
    await ws.send_str(packet)
    await frames_until_closed(ws, 3)


async def test_binary_attachments_close_the_connection(http: aiohttp.ClientSession, ours: Target) -> None:
    """The contract's payloads are JSON: a binary event (which the specification allows, and
    Node's server would decode) is a packet no client of the contract sends."""
    ws = await chat_session(http, ours)
    await ws.send_str('452-/chat,7["join",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await frames_until_closed(ws, 3)
