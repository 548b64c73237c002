"""A hand-driven Engine.IO/Socket.IO WebSocket client: it sends any frame, well-formed or
not, and reads (or does not read) exactly when the test says."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp

from tests.chat_client import NAMESPACE


async def polling_sid(http: aiohttp.ClientSession, base_url: str) -> str:
    """Open an Engine.IO session over HTTP long-polling and return its sid."""
    async with http.get(base_url + "/socket.io/?EIO=4&transport=polling") as response:
        body = await response.text()
        assert response.status == 200 and body.startswith("0"), (response.status, body)
    return str(json.loads(body[1:])["sid"])


class RawSocket:
    """One WebSocket to /socket.io/, connected to the /chat namespace."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws

    @classmethod
    async def connect(cls, base_url: str, token: str, *, receive_buffer: int | None = None) -> RawSocket:
        """Open the WebSocket and join /chat with `token`. `receive_buffer` shrinks the
        socket's receive buffer, so that a client that stops reading stalls quickly."""
        connector = aiohttp.TCPConnector(socket_factory=_small_buffer_factory(receive_buffer)) \
            if receive_buffer else aiohttp.TCPConnector()
        http = aiohttp.ClientSession(connector=connector)
        try:
            ws = await http.ws_connect(base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                       max_msg_size=0)
            raw = cls(http, ws)
            opened = await raw.receive()
            assert opened.startswith("0"), opened
            await raw.send(f"40{NAMESPACE}," + json.dumps({"token": token}))
            connected = await raw.receive()
            assert connected.startswith(f"40{NAMESPACE},"), connected
        except BaseException:
            await http.close()
            raise
        return raw

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def receive(self, timeout: float = 5) -> str:
        """The next text frame, answering the server's pings on the way."""
        while True:
            message = await self.ws.receive(timeout)
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket ended: {message.type.name} {message.data!r}")
            if message.data == "2":
                await self.ws.send_str("3")
                continue
            return str(message.data)

    async def call(self, event: str, payload: Any, ack_id: int = 1) -> Any:
        """Emit `event` with an ack id and return the ack's first argument."""
        await self.send(f"42{NAMESPACE},{ack_id}" + json.dumps([event, payload]))
        prefix = f"43{NAMESPACE},{ack_id}"
        while not (frame := await self.receive()).startswith(prefix):
            pass
        return json.loads(frame[len(prefix):])[0]

    async def closed_by_server(self, timeout: float = 5) -> bool:
        """Whether the server ends the connection within `timeout` (frames read on the way)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.ws.receive()
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                        aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                        return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


def _small_buffer_factory(size: int | None) -> Any:
    def factory(addr_info: Any) -> socket.socket:
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size or 4096)
        return sock
    return factory
