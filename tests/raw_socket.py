"""A hand-driven Engine.IO/Socket.IO WebSocket client: it sends any frame, well-formed or
not, and reads (or does not read) exactly when the test says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import aiohttp
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request, TextMessage

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


class UnreadSocket:
    """A WebSocket to /socket.io/ over a plain asyncio stream (framing by wsproto), joined
    to /chat. Unlike `RawSocket`, nothing reads from the network until `receive` is
    called: a client that truly stops reading, down to a 4 KiB kernel buffer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: WSConnection) -> None:
        self.reader = reader
        self.writer = writer
        self.ws = ws
        self._pending: list[str] = []
        self._partial = ""

    @classmethod
    async def connect(cls, base_url: str, token: str) -> UnreadSocket:
        host, port = base_url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        ws = WSConnection(ConnectionType.CLIENT)
        raw = cls(reader, writer, ws)
        writer.write(ws.send(Request(host=f"{host}:{port}", target="/socket.io/?EIO=4&transport=websocket")))
        assert (await raw.receive()).startswith("0")
        await raw.send(f"40{NAMESPACE}," + json.dumps({"token": token}))
        assert (await raw.receive()).startswith(f"40{NAMESPACE},")
        return raw

    async def send(self, frame: str) -> None:
        self.writer.write(self.ws.send(TextMessage(data=frame)))
        await self.writer.drain()

    async def receive(self, timeout: float = 5) -> str:
        """The next text frame."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("socket ended")
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, TextMessage):
                        self._partial += event.data
                        if event.message_finished:
                            self._pending.append(self._partial)
                            self._partial = ""
        return self._pending.pop(0)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
