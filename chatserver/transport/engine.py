"""python-engineio's server and WebSocket, with frame checks, bounds, a per-address cap and direct writes."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections import Counter
from collections.abc import Awaitable, Iterable
from typing import Any

import engineio
from aiohttp import WSMessage, WSMsgType, web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from ..errors import InvalidPayload, RateLimited, TooLarge
from ..http_errors import error_response
from .frames import MalformedPacket, check_engine_frame, check_polling_body
from .heartbeat import Heartbeat
from .packet_queue import PacketQueue
from .websocket_session import serve_websocket

log = logging.getLogger(__name__)
RETRY_AFTER_FULL = 10  # seconds a refused handshake is told to wait
# A packet for one client up to this many characters may be written straight to its socket;
# a bigger one (a page of history can be megabytes) takes the queue, whose writer waits for
# the client to take it (aiohttp's flow control) instead of filling the backlog bound at once.
DIRECT_SEND_MAX = 64 * 1024
# The Engine.IO endpoint's methods: GET and POST carry sessions, OPTIONS answers CORS preflights.
ENGINE_METHODS = frozenset({"GET", "POST", "OPTIONS"})


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
        self.heartbeat = Heartbeat(self.ping_interval, self.ping_timeout, socket_of=lambda sid: self.sockets.get(sid),
                                   ping=self._ping, close_silent=self._close_silent)
        self._async: dict[str, Any] = {**self._async, "websocket": CheckedWebSocket,
                                       "translate_request": _translate_request}

    def attach(self, app: web.Application, engineio_path: str = "engine.io") -> None:
        """As python-engineio's, and every other method on the same path comes here too,
        to be answered `400` as the specification says (aiohttp would answer `405`)."""
        super().attach(app, engineio_path)
        app.router.add_route("*", f"/{engineio_path.strip('/')}/", self.handle_request)

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        """Refuse a handshake past the per-address cap and a malformed or oversized
        polling body with the contract's JSON error; Engine.IO handles the rest.

        A WebSocket's session runs here, once python-engineio's calls that opened it
        have returned: an idle connection holds its handler's coroutine frames as long as
        it lives, and those calls (and the environ and query they hold) would be six of
        them (see `CheckedWebSocket`)."""
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        response: web.StreamResponse | CheckedWebSocket = await super().handle_request(request)
        if not isinstance(response, CheckedWebSocket):
            self._forget_if_closed(request.query.get("sid"))
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
        if request.method not in ENGINE_METHODS:
            return _bad_request(f"method {request.method} is not used by Engine.IO")
        if request.method != "OPTIONS" and request.query.get("transport") not in self.transports:
            return _bad_request("Transport unknown")
        if sid is not None and request.method == "GET" and await self._second_poll(sid, request):
            return _bad_request("a poll is already pending for this session")
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

    async def _second_poll(self, sid: str, request: web.Request) -> bool:
        """Whether this GET is a poll while another one of the session waits; if so, the
        session is closed (the pending poll is answered with a close packet), as the
        specification says: a client that polls twice has lost track of its session."""
        socket = self.sockets.get(sid)
        if socket is None or socket.upgraded or "upgrade" in request.headers.get("Connection", "").lower():
            return False
        if not socket.queue.getter_waiting:
            return False
        await self.close_connection(sid, "a second poll while one was pending")
        return True

    def _forget_if_closed(self, sid: str | None) -> None:
        """A session that the request closed (a client's close packet in a POST, say) is
        gone at once: its next request gets `400`, as the specification says, and nothing
        keeps it until the next sweep. A poll it had pending keeps its own reference and is
        answered from its queue."""
        if sid is not None:
            socket = self.sockets.get(sid)
            if socket is not None and socket.closed:
                del self.sockets[sid]

    def _ok(self, packets: Any = None, headers: Any = None, jsonp_index: Any = None) -> dict[str, Any]:
        """python-engineio's answer to a request; to a POST, `ok` as the specification has it
        (python-engineio says `OK`)."""
        if packets is not None:
            answer: dict[str, Any] = super()._ok(packets, headers, jsonp_index)
            return answer
        return {"status": "200 OK", "headers": [("Content-Type", "text/plain")], "response": b"ok"}

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
        sleeps `ping_interval` and then sends a ping; here `heartbeat` does it for all."""
        if getattr(target, "__func__", None) is engineio.async_socket.AsyncSocket._send_ping:
            self.heartbeat.schedule_ping(target.__self__.sid)
            return None
        return super().start_background_task(target, *args, **kwargs)

    async def _close_silent(self, sockets: list[Any]) -> None:
        """Close the connections of clients that left a ping unanswered (see `Heartbeat`)."""
        for socket in sockets:
            log.info("client gone: ping unanswered", extra={"sid": socket.sid,
                                                             "address": self._addresses.get(socket.sid)})
        outcomes = await asyncio.gather(*(self._close(socket, abort=True, reason=self.reason.PING_TIMEOUT)
                                          for socket in sockets), return_exceptions=True)
        for socket, outcome in zip(sockets, outcomes, strict=True):
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
        """End a session: its disconnect handlers run, a pending poll is answered with a
        close packet, and a WebSocket is closed after one (with `abort`, dropped at once)."""
        websocket = self._websockets.get(socket.sid)
        if abort and websocket is not None:
            websocket.abort()
        # Not `disconnect()`: it waits for the queue to drain, forever for a client that
        # has stopped reading. And the close packet is queued here, not by `close`, whose
        # `send` drops it for a client past its ping timeout.
        await socket.close(wait=False, abort=True, reason=reason or self.reason.SERVER_DISCONNECT)
        if not abort or websocket is None:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.CLOSE))
        # python-engineio keeps a WebSocket open until the client speaks, and the JS client
        # only acts on the socket closing: an empty queue entry makes the socket's writer
        # close the WebSocket now, and ends a poll with what is queued.
        socket.queue.put_nowait(None)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            sid, environ = args[0], args[1]
            self._addresses[sid] = _address(environ["aiohttp.request"])
            self._per_address[self._addresses[sid]] += 1
            self._announce_exact_ping_interval(self.sockets[sid])
        elif event == "disconnect":
            sid, reason = args[0], args[1]
            address = self._addresses.pop(sid, None)
            if address is not None:
                self._per_address[address] -= 1
                if self._per_address[address] <= 0:
                    del self._per_address[address]
            if reason == self.reason.CLIENT_DISCONNECT and sid not in self._websockets:
                self._end_poll(self.sockets.get(sid))
        return await super()._trigger_event(event, *args, **kwargs)

    def _announce_exact_ping_interval(self, socket: Any) -> None:
        """python-engineio announces `pingInterval` in whole seconds (2.5 s as 2000 ms); the
        handshake, the one packet queued when the session's connect handler runs, is
        corrected to the interval `heartbeat` keeps."""
        opened = socket.queue.first()
        if opened is not None and opened.packet_type == engineio.packet.OPEN:
            opened.data["pingInterval"] = round(self.ping_interval * 1000)

    @staticmethod
    def _end_poll(socket: Any) -> None:
        """A polling client sent its close packet: python-engineio ends the session without
        a word, so a poll it has pending would wait out the ping timeout. It is answered
        with a noop, as the specification says (the client is leaving; nothing more is sent)."""
        if socket is not None:
            socket.queue.put_nowait(engineio.packet.Packet(engineio.packet.NOOP))
            socket.queue.put_nowait(None)


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


def _bad_request(message: str) -> web.Response:
    """`400`, with the message as python-engineio words its own."""
    return web.Response(status=400, text=json.dumps(message), content_type="text/plain")


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
