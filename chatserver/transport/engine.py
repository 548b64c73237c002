"""python-engineio's server and WebSocket, with frame checks, bounds, a per-address cap and direct writes."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Iterable
from typing import Any

import engineio
from aiohttp import WSMessage, WSMsgType, web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from ..api import error_response
from ..errors import InvalidPayload, RateLimited, TooLarge
from ..frames import MalformedPacket, check_engine_frame, check_polling_body
from .packet_queue import PacketQueue
from .websocket_session import serve_websocket

log = logging.getLogger(__name__)
RETRY_AFTER_FULL = 10  # seconds a refused handshake is told to wait
# A packet for one client up to this many characters may be written straight to its socket;
# a bigger one (a page of history can be megabytes) takes the queue, whose writer waits for
# the client to take it (aiohttp's flow control) instead of filling the backlog bound at once.
DIRECT_SEND_MAX = 64 * 1024
PING_CHECK_INTERVAL = 1.0  # seconds between looks for pings due and pings unanswered


class GuardedEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """`engineio.AsyncServer` that checks frames before decoding them, bounds what waits
    for each client, and caps connections per address."""

    def __init__(self, *, max_backlog: int, max_backlog_bytes: int, max_connections_per_address: int,
                 **options: Any) -> None:
        super().__init__(**options)
        self.max_backlog = max_backlog
        self.max_backlog_bytes = max_backlog_bytes
        self.deliveries: Counter[str] = Counter({"direct": 0, "queued": 0})  # by path, see `deliver`
        self._cutting_off: set[asyncio.Future[list[None]]] = set()
        self.max_connections_per_address = max_connections_per_address
        self._addresses: dict[str, str] = {}  # sid -> client address
        self._per_address: Counter[str] = Counter()
        self._websockets: dict[str, CheckedWebSocket] = {}
        self._ping_watch: asyncio.Future[None] | None = None
        self._pings_due: dict[str, float] = {}  # sid -> when (monotonic) its next ping is due
        self._async: dict[str, Any] = {**self._async, "websocket": CheckedWebSocket,
                                       "translate_request": _translate_request}

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        """Refuse a handshake past the per-address cap and a malformed or oversized
        polling body with the contract's JSON error; Engine.IO handles the rest.

        A WebSocket's session runs here, once python-engineio's calls that opened it
        have returned: an idle connection holds its handler's coroutine frames as long as
        it lives, and those calls (and the environ and query they hold) would be six of
        them (see `CheckedWebSocket`)."""
        if self._ping_watch is None:
            self._ping_watch = asyncio.ensure_future(self._keep_pings())
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        response: web.StreamResponse | CheckedWebSocket = await super().handle_request(request)
        if not isinstance(response, CheckedWebSocket):
            return response
        socket = response.socket
        self._websockets[socket.sid] = response
        try:
            await serve_websocket(socket, response)
        finally:
            if self._websockets.get(socket.sid) is response:  # not a concurrent upgrade attempt's
                del self._websockets[socket.sid]
            # as python-engineio does once its WebSocket handler returns
            if socket.closed and self.sockets.get(socket.sid) is socket:
                del self.sockets[socket.sid]
        return response.response

    async def _refusal(self, request: web.Request) -> web.StreamResponse | None:
        sid = request.query.get("sid")
        address = _address(request)
        if sid is None and self._per_address[address] >= self.max_connections_per_address:
            log.warning("connection refused", extra={"address": address, "open": self._per_address[address]})
            refusal = error_response(RateLimited(RETRY_AFTER_FULL, "too many connections from your address"))
            refusal.headers["Retry-After"] = str(RETRY_AFTER_FULL)
            return refusal
        if sid is not None and request.method == "POST":
            try:
                check_polling_body(await request.read())
            except web.HTTPRequestEntityTooLarge:
                await self.close_connection(sid, "polling body over the size limit")
                return error_response(TooLarge(f"a request body may hold at most {self.max_http_buffer_size} bytes"))
            except MalformedPacket as error:
                await self.close_connection(sid, f"malformed payload: {error}")
                return error_response(InvalidPayload("not an Engine.IO payload"))
        return None

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
            await super().send(sid, data)

    async def send_packet(self, sid: str, pkt: engineio.packet.Packet) -> None:
        """Queue `pkt` for the client (a ping or a close; messages go through `deliver`), or
        cut off a client with `max_backlog` packets unread."""
        socket = self.sockets.get(sid)
        if socket is not None and socket.queue.qsize() >= self.max_backlog:
            self.cut_off([sid])
            return
        await super().send_packet(sid, pkt)

    async def close_connection(self, sid: str, reason: str, *, abort: bool = False) -> None:
        """Close one client's connection now, logging `reason` once.

        With `abort`, a WebSocket's TCP connection is dropped without a goodbye: for a
        client that does not read, a close frame would only wait behind everything else.
        """
        socket = self.sockets.get(sid)
        if socket is None or socket.closing or socket.closed:
            return
        self.log_closing(sid, reason)
        await self._close(socket, abort=abort)

    def log_closing(self, sid: str, reason: str) -> None:
        """The one warning line for a connection the server closes on the client's account."""
        log.warning("closing connection", extra={"sid": sid, "address": self._addresses.get(sid), "reason": reason})

    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue:
        """Each connection's queue of packets waiting to be sent (see `PacketQueue`)."""
        return PacketQueue()

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """As python-engineio's, except for its ping cycle: there a task per connection
        sleeps `ping_interval` and then sends a ping; here the connection is put down for
        a ping then, and `_keep_pings` sends it."""
        if getattr(target, "__func__", None) is engineio.async_socket.AsyncSocket._send_ping:
            # due up to a check early, never late: clients give up on a ping that is late
            self._pings_due[target.__self__.sid] = time.monotonic() + self.ping_interval - PING_CHECK_INTERVAL
            return None
        return super().start_background_task(target, *args, **kwargs)

    async def _keep_pings(self) -> None:
        """Once a second, for every connection: send the ping that is due (python-engineio's
        `AsyncSocket._send_ping` after its sleep), and close the connection of a client that
        left one unanswered for `ping_timeout`.

        python-engineio notices an unanswered ping only when it next queues something for
        the client, or when its WebSocket reader has heard nothing for `ping_interval +
        ping_timeout`. Direct writes skip the queue, and `serve_websocket` reads without a
        timer per frame, so this one task looks after every connection instead (a task or
        a timer per connection cost about 0.6 KiB each)."""
        while True:
            await asyncio.sleep(PING_CHECK_INTERVAL)
            try:
                await self._ping_and_close_unanswered()
            except Exception:  # one bad round must not stop every connection's pings
                log.exception("ping upkeep failed")

    async def _ping_and_close_unanswered(self) -> None:
        """One round of `_keep_pings`."""
        now, wall = time.monotonic(), time.time()
        for sid, due in list(self._pings_due.items()):
            socket = self.sockets.get(sid)
            if socket is None or socket.closing or socket.closed:
                del self._pings_due[sid]
            elif due <= now:
                del self._pings_due[sid]
                socket.last_ping = wall
                self._ping(socket)
        deadline = wall - self.ping_timeout
        gone = [socket for socket in self.sockets.values()
                if socket.last_ping and socket.last_ping < deadline and not (socket.closing or socket.closed)]
        for socket in gone:
            log.info("client gone: ping unanswered", extra={"sid": socket.sid,
                                                             "address": self._addresses.get(socket.sid)})
        outcomes = await asyncio.gather(*(self._close(socket, abort=True, reason=self.reason.PING_TIMEOUT)
                                          for socket in gone), return_exceptions=True)
        for socket, outcome in zip(gone, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.warning("closing a silent client failed", extra={"sid": socket.sid, "error": repr(outcome)})

    def _ping(self, socket: Any) -> None:
        """Send a ping: straight to an idle WebSocket, as `deliver` does, else queued."""
        websocket = self._websockets.get(socket.sid)
        if websocket is not None and socket.upgraded and websocket.writer_idle(socket.queue):
            websocket.write(PING_FRAME)
        else:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.PING))

    async def close_all(self) -> int:
        """Close every connection (clients reconnect elsewhere); the number closed."""
        sockets = [socket for socket in self.sockets.values() if not (socket.closing or socket.closed)]
        # Together: each close says goodbye to the store (presence), a round trip in Redis.
        await asyncio.gather(*(self._close(socket, abort=False) for socket in sockets))
        return len(sockets)

    async def _close(self, socket: Any, *, abort: bool, reason: str | None = None) -> None:
        websocket = self._websockets.get(socket.sid)
        if abort and websocket is not None:
            websocket.abort()
        # Not `disconnect()`: it waits for the queue to drain, forever for a client that
        # has stopped reading.
        await socket.close(wait=False, reason=reason or self.reason.SERVER_DISCONNECT)
        # python-engineio sends a close packet but keeps a WebSocket open until the client
        # speaks, and the JS client only acts on the socket closing: an empty queue entry
        # makes the socket's writer close the WebSocket now.
        socket.queue.put_nowait(None)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            sid, environ = args[0], args[1]
            self._addresses[sid] = _address(environ["aiohttp.request"])
            self._per_address[self._addresses[sid]] += 1
        elif event == "disconnect":
            address = self._addresses.pop(args[0], None)
            if address is not None:
                self._per_address[address] -= 1
                if self._per_address[address] <= 0:
                    del self._per_address[address]
        return await super()._trigger_event(event, *args, **kwargs)


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
            return self.response  # aiohttp drops a response to a closed connection quietly
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


async def _translate_request(request: web.Request) -> dict[str, Any]:
    """Engine.IO's environ for `request`, reading the body from aiohttp's cache, since
    `handle_request` has already read it to check it."""
    environ: dict[str, Any] = engineio_aiohttp.translate_request(request)
    environ["wsgi.input"] = _ReadBody(request)
    return environ


class _ReadBody:
    """The `wsgi.input` Engine.IO reads a polling body from."""

    def __init__(self, request: web.Request) -> None:
        self._request = request

    async def read(self, length: int = -1) -> bytes:
        return await self._request.read()


def _address(request: web.BaseRequest) -> str:
    return request.remote or "unknown"


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
