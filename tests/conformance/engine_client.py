"""A client of Engine.IO v4 written from its specification: each request and frame is the
test's to choose, and every answer is returned as it came."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.conformance.conftest import Target

ENDPOINT = "/socket.io/"
SEPARATOR = "\x1e"  # between packets of one long-polling payload


def query(**params: str) -> str:
    return ENDPOINT + "?" + "&".join(f"{name}={value}" for name, value in params.items())


@dataclass
class Answer:
    status: int
    body: str


async def request(http: aiohttp.ClientSession, target: Target, method: str, path: str,
                  body: str | None = None) -> Answer:
    async with http.request(method, target.url + path, data=body) as response:
        return Answer(response.status, await response.text())


async def open_polling(http: aiohttp.ClientSession, target: Target) -> tuple[str, dict[str, Any]]:
    """A long-polling session: its sid and the handshake's values."""
    answer = await request(http, target, "GET", query(EIO="4", transport="polling"))
    assert answer.status == 200 and answer.body.startswith("0"), answer
    opened = json.loads(answer.body[1:])
    return opened["sid"], opened


async def poll(http: aiohttp.ClientSession, target: Target, sid: str) -> Answer:
    return await request(http, target, "GET", query(EIO="4", transport="polling", sid=sid))


async def push(http: aiohttp.ClientSession, target: Target, sid: str, *packets: str) -> Answer:
    return await request(http, target, "POST", query(EIO="4", transport="polling", sid=sid), SEPARATOR.join(packets))


async def open_websocket(http: aiohttp.ClientSession, target: Target, **params: str) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket to the endpoint (by default a new session: `EIO=4&transport=websocket`)."""
    params = {"EIO": "4", "transport": "websocket", **params}
    return await http.ws_connect(target.ws_url + query(**params), autoping=True, max_msg_size=0)


async def frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> str | bytes | None:
    """The next frame; None once the server has closed the WebSocket."""
    message = await ws.receive(timeout)
    if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        data: str | bytes = message.data
        return data
    return None


async def frames_until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> list[str | bytes]:
    """Every frame up to the server's close (pings unanswered), failing after `timeout` seconds."""
    seen: list[str | bytes] = []
    async with asyncio.timeout(timeout):
        while (data := await frame(ws, timeout)) is not None:
            seen.append(data)
    return seen


async def next_packet(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> str | bytes | None:
    """The next frame other than a ping, which is answered on the way."""
    while True:
        data = await frame(ws, timeout)
        if data != "2":
            return data
        await ws.send_str("3")


def connect_packet(target: Target) -> str:
    """The Socket.IO CONNECT to `/chat` with the target's token."""
    return "40/chat," + json.dumps({"token": target.token})


async def engine_session(http: aiohttp.ClientSession, target: Target) -> aiohttp.ClientWebSocketResponse:
    """An Engine.IO session over a WebSocket, its handshake read, no namespace yet."""
    ws = await open_websocket(http, target)
    assert str(await frame(ws)).startswith("0")
    return ws


async def chat_session(http: aiohttp.ClientSession, target: Target) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket connected to `/chat` with the target's token."""
    ws = await engine_session(http, target)
    await ws.send_str(connect_packet(target))
    assert str(await next_packet(ws)).startswith("40/chat,")
    return ws
