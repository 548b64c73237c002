"""Delivery: packets to clients in the order they were made, written straight to each idle
WebSocket, and clients that stop reading cut off."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import engineio

from .packet_queue import PacketQueue
from .websocket import PING_FRAME, CheckedWebSocket, websocket_text_frame

# A packet for one client up to this many characters may be written straight to its socket;
# a bigger one (a page of history can be megabytes) takes the queue, whose writer waits for
# the client to take it (aiohttp's flow control) instead of filling the backlog bound at once.
DIRECT_SEND_MAX = 64 * 1024


class Delivery:
    """`GuardedEngineServer`'s delivery (a mixin over python-engineio's `AsyncServer`): a
    client may have at most `max_backlog` packets queued and `max_backlog_bytes` bytes
    unread before it is cut off."""

    sockets: dict[str, Any]

    def __init__(self, *, max_backlog: int, max_backlog_bytes: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_backlog = max_backlog
        self.max_backlog_bytes = max_backlog_bytes
        self.deliveries: Counter[str] = Counter({"direct": 0, "queued": 0})  # by path, see `deliver`
        self._cutting_off: set[asyncio.Future[list[None]]] = set()
        self._websockets: dict[str, CheckedWebSocket] = {}  # sid -> the WebSocket serving it

    if TYPE_CHECKING:  # the server's (`GuardedEngineServer`)
        async def close_connection(self, sid: str, reason: str, *, abort: bool = False) -> None: ...

    def deliver(self, sids: Iterable[str], encoded: str) -> list[str]:
        """Hand one encoded Socket.IO packet to each of `sids` in this very step (no await),
        so that deliveries keep the order in which they were made; return the sids that
        are past their backlog bound, for the caller to cut off with `cut_off`.

        The Engine.IO message and its WebSocket frame are built once. A recipient on a
        WebSocket with nothing queued or being sent gets the frame written straight to its
        transport; any other (long-polling, upgrading, or with a backlog) gets the packet
        on its queue, behind what waits there.
        """
        frame = websocket_text_frame(("4" + encoded).encode())
        queued: engineio.packet.Packet | None = None  # built for the first recipient that needs it
        over: list[str] = []
        direct = queued_count = 0
        for sid in sids:
            socket = self.sockets.get(sid)
            if socket is None or socket.closing or socket.closed:
                continue
            websocket = self._websockets.get(sid)
            if websocket is not None and socket.upgraded and websocket.writer_idle(socket.queue):
                if websocket.buffered() > self.max_backlog_bytes:
                    over.append(sid)
                else:
                    websocket.write(frame)
                    direct += 1
            elif socket.queue.qsize() >= self.max_backlog:
                over.append(sid)
            else:
                queued = queued or engineio.packet.Packet(engineio.packet.MESSAGE, encoded)
                socket.queue.put_nowait(queued)
                queued_count += 1
        self.deliveries["direct"] += direct
        self.deliveries["queued"] += queued_count
        return over

    def cut_off(self, sids: list[str]) -> None:
        """Close the connections of clients that stopped reading (see `deliver`), together
        and in the background: each close says goodbye to the store, and whoever
        delivered (a sender awaiting its ack, the pub/sub listener) must not wait for it."""
        if not sids:
            return
        closing = asyncio.gather(*(self.close_connection(sid, "not reading (backlog bound reached)", abort=True)
                                   for sid in sids))
        self._cutting_off.add(closing)
        closing.add_done_callback(self._cutting_off.discard)

    async def send(self, sid: str, data: Any) -> None:
        """A Socket.IO packet for one client (an ack, say) goes through `deliver` too: written
        straight to an idle WebSocket instead of starting the connection's writer task,
        unless it is bigger than `DIRECT_SEND_MAX`."""
        if isinstance(data, str) and len(data) <= DIRECT_SEND_MAX:
            self.cut_off(self.deliver([sid], data))
        else:
            await super().send(sid, data)  # type: ignore[misc]  # python-engineio's, after this mixin

    async def send_packet(self, sid: str, pkt: engineio.packet.Packet) -> None:
        """Queue `pkt` for the client (a ping or a close; messages go through `deliver`), or
        cut off a client with `max_backlog` packets unread."""
        socket = self.sockets.get(sid)
        if socket is not None and socket.queue.qsize() >= self.max_backlog:
            self.cut_off([sid])
            return
        await super().send_packet(sid, pkt)  # type: ignore[misc]

    def _ping(self, socket: Any) -> None:
        """Send a ping: straight to an idle WebSocket, as `deliver` does, else queued."""
        websocket = self._websockets.get(socket.sid)
        if websocket is not None and socket.upgraded and websocket.writer_idle(socket.queue):
            websocket.write(PING_FRAME)
        else:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.PING))

    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue:
        """Each connection's queue of packets waiting to be sent (see `PacketQueue`)."""
        return PacketQueue()
