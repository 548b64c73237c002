"""The WebSocket of an Engine.IO session: aiohttp's, with frames checked, and the frames
the server writes itself."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import engineio
from aiohttp import WSMessage, WSMsgType, web

from .frames import MalformedPacket, check_engine_frame
from .packet_queue import PacketQueue

if TYPE_CHECKING:
    from .engine import GuardedEngineServer


class CheckedWebSocket:
    """Engine.IO's aiohttp WebSocket (python-engineio's `async_drivers.aiohttp.WebSocket`)
    that refuses frames no client could have sent, and reads every frame of up to
    `max_http_buffer_size` bytes, uncompressed.

    Calling it answers the upgrade and returns the WebSocket itself, unserved: python-engineio
    hands it back up to `GuardedEngineServer.handle_request`, which runs the session."""

    __slots__ = ("_transport", "response", "server", "socket")
    _transport: asyncio.Transport  # set once the upgrade is answered

    def __init__(self, handler: Any, server: GuardedEngineServer) -> None:
        self.socket = handler.__self__  # python-engineio's AsyncSocket, whose handler `serve_websocket` replaces
        self.server = server
        # aiohttp refuses a message of exactly `max_msg_size` bytes; the limit is inclusive.
        # No permessage-deflate, which aiohttp would accept from every browser: one frame is
        # built per broadcast for all recipients, and per-connection zlib state cost about
        # 90 KiB per idle connection (bench/). Node's `ws` has it off by default too.
        self.response = web.WebSocketResponse(max_msg_size=server.max_http_buffer_size + 1, compress=False)

    async def __call__(self, environ: dict[str, Any]) -> CheckedWebSocket | web.StreamResponse:
        request = environ["aiohttp.request"]
        try:
            await self.response.prepare(request)
        except ConnectionResetError:  # the client left before its upgrade was answered
            # A plain response, which aiohttp drops quietly on a closed connection: it cannot
            # finish the WebSocket response whose upgrade failed, and logged an unhandled
            # exception for each (1,573 in one reconnect storm of 10,000 clients, bench/).
            return web.Response(status=400)
        self._transport = request.transport
        return self

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self.response.send_bytes(message)
        else:
            await self.response.send_str(message)

    async def close(self) -> None:
        await self.response.close()

    def receive(self) -> Awaitable[WSMessage]:
        """The next message (see `frame`)."""
        return self.response.receive()

    def frame(self, message: WSMessage) -> str | bytes:
        """The message's frame; `OSError` (which Engine.IO takes as the end) if there is
        none or it is malformed."""
        if message.type is WSMsgType.ERROR:
            self._refuse(f"bad frame: {message.data}")
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            raise OSError("websocket closed")
        try:
            check_engine_frame(message.data)
        except MalformedPacket as error:
            self._refuse(f"malformed frame: {error}")
        frame: str | bytes = message.data
        return frame

    def writer_idle(self, queue: PacketQueue) -> bool:
        """Whether the session's writer holds nothing unsent: nothing is queued, and
        nothing taken off the queue is still being written."""
        return queue.idle and not self.response.closed and not self._transport.is_closing()

    def buffered(self) -> int:
        """Bytes written to this connection that the client has not taken yet."""
        return self._transport.get_write_buffer_size()

    def write(self, frame: bytes) -> None:
        """Write a whole WebSocket frame now (see `GuardedEngineServer.deliver`)."""
        self._transport.write(frame)

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        self._transport.abort()

    def _refuse(self, reason: str) -> None:
        self.server.log_closing(self.socket.sid, reason)
        raise OSError(reason)


def websocket_text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455 section 5.2), as a server sends."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


PING_FRAME = websocket_text_frame(engineio.packet.Packet(engineio.packet.PING).encode().encode())
