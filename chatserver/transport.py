"""The Socket.IO server at the edge, hardened against clients that misbehave.

python-socketio's `AsyncServer` with python-engineio underneath, plus what a public
server needs and the libraries leave out:
- a frame or packet no client could have sent closes that connection with one warning
  line (the libraries log a traceback and carry on, or leave the socket half-open);
- a client that stops reading is cut off once `max_backlog` packets wait for it, so it
  can neither slow anyone down nor grow the server's memory; it catches up with `since`;
- an address may hold at most `max_connections_per_address` connections; a handshake
  past that is answered `429 rate_limited`.
These hooks override private methods of the pinned python-socketio 5.18 and
python-engineio 4.15; tests/functional/test_hostile.py fails if an upgrade moves them.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import engineio
import redis.asyncio
import socketio
from aiohttp import WSMsgType, web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from .api import error_response
from .errors import InvalidPayload, RateLimited, TooLarge
from .frames import MalformedPacket, StrictPacket, check_engine_frame, check_polling_body
from .ordering import SeqOrder
from .stores.base import Announcement

log = logging.getLogger(__name__)
PUBLISH_CONNECTIONS = 32  # Redis connections for the pub/sub manager's publishes (one more listens)
PUBLISH_WAIT = 2.0  # seconds a publish may wait for one of them
# The versions these hooks were written and tested against; see `check_library_versions`.
TESTED_VERSIONS = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}
# Names the Socket.IO libraries use for their own events; a client may not send them.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "disconnecting",
                             "newListener", "removeListener"})
RETRY_AFTER_FULL = 10  # seconds a refused handshake is told to wait


class UntestedLibrary(RuntimeError):
    """An installed python-socketio or python-engineio is not the version this module's
    hooks were tested with; the message is one line."""


def check_library_versions(installed: Callable[[str], str] = importlib.metadata.version) -> None:
    """Refuse to run on versions other than `TESTED_VERSIONS`.

    The hooks here override private methods; on another version they could fail
    silently (a frame check skipped, a direct write out of order), so the server does
    not start rather than fall back to a path that was never tested either.
    """
    for package, tested in TESTED_VERSIONS.items():
        version = installed(package)
        if version != tested:
            raise UntestedLibrary(f"{package} {version} is installed, but chatserver's transport hooks are "
                                  f"tested with {tested} only: install the versions in requirements.txt")


@dataclass(frozen=True)
class ReservedEvent:
    """A client event that used a reserved name; handlers see this instead of the name,
    so it can never be taken for the server's own connect or disconnect."""

    name: str


class ChatSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """`socketio.AsyncServer` that refuses malformed packets; takes the engine's
    `max_backlog` and `max_connections_per_address` besides the usual options."""

    def __init__(self, **options: Any) -> None:
        super().__init__(serializer=StrictPacket, **options)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return GuardedEngineServer

    async def _handle_event_internal(self, server: socketio.AsyncServer, sid: str, eio_sid: str,
                                     data: list[Any], namespace: str, id: int | None) -> None:
        # python-socketio dispatches a client's event by its name, through the same path as
        # its own connect and disconnect: an event *named* "disconnect" would end the session.
        if data[0] in RESERVED_EVENTS:
            data = [ReservedEvent(data[0]), *data[1:]]
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MalformedPacket as error:
            await self.eio.close_connection(eio_sid, f"malformed packet: {error}")


class _DirectEmit:
    """Emits without an acknowledgement, to a room or one connection, go through
    `GuardedEngineServer.deliver`: one encode, no task or queue hop per recipient."""

    server: ChatSocketServer
    get_participants: Any

    async def _deliver(self, event: str, args: list[Any], namespace: str, room: str | None,
                       skip_sid: str | list[str] | None) -> None:
        over = self._deliver_now(event, args, namespace, room, skip_sid)
        if over:
            await self.server.eio.cut_off(over)

    def _deliver_now(self, event: str, args: list[Any], namespace: str, room: str | None,
                     skip_sid: str | list[str] | None = None) -> list[str]:
        """Deliver in this step; the recipients to cut off afterwards."""
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        eio_sids = [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip]
        if not eio_sids:
            return []
        encoded = self.server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        over: list[str] = self.server.eio.deliver(eio_sids, encoded)
        return over


class _IndexedRooms:
    """Keeps each connection's rooms at hand.

    python-socketio's manager finds them by scanning every room of the namespace, after
    copying the whole mapping, and every connection has a room of its own: a disconnect
    cost O(connections), so 10,000 clients dropping at once (a network blip, a balancer
    restart) cost O(n^2) and stalled the instance (py-spy, bench/ connections scenario).
    """

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio 5.18.1's, with the scan replaced by the index.
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]


class ChatManager(_DirectEmit, _IndexedRooms, socketio.AsyncManager):  # type: ignore[misc]
    """The in-process client manager (embedded mode), delivering through `deliver`."""

    def announcement(self, event: str, namespace: str, room: str) -> Announcement | None:
        """None: there are no other instances to tell."""
        return None

    def follow(self, namespace: str, room: str, seq: int) -> None:
        """Nothing to do: one instance delivers in the order it stores."""

    async def emit(self, event: str, data: Any, namespace: str, room: str | None = None,
                   skip_sid: str | list[str] | None = None, callback: Any = None, to: str | None = None,
                   **kwargs: Any) -> None:
        room = to or room
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
        elif namespace in self.rooms:
            await self._deliver(event, _arguments(data), namespace, room, skip_sid)


class ChatRedisManager(_DirectEmit, _IndexedRooms, socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis pub/sub manager, delivering its local share through `deliver`.

    Events named `ordered_event` carry one object with a `seq`; they go out to this
    instance's connections in `seq` order per room (see `SeqOrder`), whether they come
    from this instance's own appends or from other instances.
    """

    def __init__(self, url: str, *, ordered_event: str, gap_wait: float = 1.0, **options: Any) -> None:
        super().__init__(url, **options)
        self._ordered_event = ordered_event
        self._order: SeqOrder[tuple[str, str], list[Any]] = SeqOrder(self._release_late, gap_wait=gap_wait)
        self._late_cut_offs: set[asyncio.Task[None]] = set()

    def announcement(self, event: str, namespace: str, room: str) -> Announcement:
        """The pub/sub message python-socketio's managers on the other instances act on,
        with the event's one argument left out, for a store to publish in the same step
        as storing it. This instance delivers its own share with `ignore_queue=True`."""
        envelope = json.dumps({"method": "emit", "event": event, "binary": False, "namespace": namespace,
                               "room": room, "skip_sid": None, "callback": None, "host_id": self.host_id},
                              separators=(",", ":"))
        return Announcement(channel=self.channel, prefix=envelope[:-1] + ',"data":[', suffix="]}")

    def follow(self, namespace: str, room: str, seq: int) -> None:
        """A join read that `room` is at `seq`: its next ordered event is `seq` + 1."""
        self._order.follow((namespace, room), seq)

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: str | None = None,
                   skip_sid: str | list[str] | None = None, callback: Any = None, to: str | None = None,
                   **kwargs: Any) -> None:
        namespace = namespace or "/"
        if kwargs.get("ignore_queue") and callback is None:
            await self._deliver_local(event, _arguments(data), namespace, to or room, skip_sid)
        else:
            await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback,
                               to=to, **kwargs)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        namespace = message.get("namespace") or "/"
        if message.get("callback") is not None or message.get("binary") or not isinstance(message["data"], list):
            await super()._handle_emit(message)
        else:
            await self._deliver_local(message["event"], message["data"], namespace, message.get("room"),
                                      message.get("skip_sid"))

    def _redis_connect(self) -> None:
        """As python-socketio's, but on a bounded pool that waits for a free connection
        (default: a new connection per concurrent publish, an error past 100)."""
        if urlsplit(self.redis_url).scheme.endswith("+sentinel"):
            super()._redis_connect()
            return
        pool = redis.asyncio.BlockingConnectionPool.from_url(self.redis_url, max_connections=PUBLISH_CONNECTIONS,
                                                             timeout=PUBLISH_WAIT, **self.redis_options)
        self.redis = redis.asyncio.Redis(connection_pool=pool)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def _deliver_local(self, event: str, args: list[Any], namespace: str, room: str | None,
                             skip_sid: str | list[str] | None) -> None:
        seq = _seq_of(args) if event == self._ordered_event else None
        ready = [args] if seq is None or room is None else self._order.arrive((namespace, room), seq, args)
        over = [sid for each in ready for sid in self._deliver_now(event, each, namespace, room, skip_sid)]
        if over:
            await self.server.eio.cut_off(over)

    def _release_late(self, key: tuple[str, str], ready: list[list[Any]]) -> None:
        namespace, room = key
        over = [sid for each in ready for sid in self._deliver_now(self._ordered_event, each, namespace, room)]
        if over:
            task = asyncio.ensure_future(self.server.eio.cut_off(over))
            self._late_cut_offs.add(task)
            task.add_done_callback(self._late_cut_offs.discard)


def _seq_of(args: list[Any]) -> int | None:
    """The `seq` of an event whose one argument is an object holding an integer `seq`."""
    if len(args) == 1 and isinstance(args[0], dict) and type(args[0].get("seq")) is int:
        seq: int = args[0]["seq"]
        return seq
    return None


def _arguments(data: Any) -> list[Any]:
    """An emit's `data` as the event's argument list, as python-socketio reads it."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]


class GuardedEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """`engineio.AsyncServer` that checks frames before decoding them, bounds what waits
    for each client, and caps connections per address."""

    def __init__(self, *, max_backlog: int, max_backlog_bytes: int, max_connections_per_address: int,
                 **options: Any) -> None:
        super().__init__(**options)
        self.max_backlog = max_backlog
        self.max_backlog_bytes = max_backlog_bytes
        self.deliveries: Counter[str] = Counter({"direct": 0, "queued": 0})  # by path, see `deliver`
        self.max_connections_per_address = max_connections_per_address
        self._addresses: dict[str, str] = {}  # sid -> client address
        self._per_address: Counter[str] = Counter()
        self._websockets: dict[str, CheckedWebSocket] = {}
        self._async: dict[str, Any] = {**self._async, "websocket": CheckedWebSocket,
                                       "translate_request": _translate_request}

    async def handle_request(self, request: web.Request) -> web.StreamResponse:
        """Refuse a handshake past the per-address cap and a malformed or oversized
        polling body with the contract's JSON error; Engine.IO handles the rest."""
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
        response: web.StreamResponse = await super().handle_request(request)
        return response

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
        queued = engineio.packet.Packet(engineio.packet.MESSAGE, encoded)
        over: list[str] = []
        direct = 0
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
                socket.queue.put_nowait(queued)
                self.deliveries["queued"] += 1
        self.deliveries["direct"] += direct
        return over

    async def cut_off(self, sids: Iterable[str]) -> None:
        """Close the connections of clients that stopped reading (see `deliver`)."""
        for sid in sids:
            await self.close_connection(sid, "not reading (backlog bound reached)", abort=True)

    async def send_packet(self, sid: str, pkt: engineio.packet.Packet) -> None:
        """Queue `pkt` for the client, or cut off a client with `max_backlog` packets unread."""
        socket = self.sockets.get(sid)
        if socket is not None and socket.queue.qsize() >= self.max_backlog:
            await self.close_connection(sid, f"not reading ({self.max_backlog} packets waiting)", abort=True)
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

    async def close_all(self) -> int:
        """Close every connection (clients reconnect elsewhere); the number closed."""
        sockets = [socket for socket in self.sockets.values() if not (socket.closing or socket.closed)]
        # Together: each close says goodbye to the store (presence), a round trip in Redis.
        await asyncio.gather(*(self._close(socket, abort=False) for socket in sockets))
        return len(sockets)

    async def _close(self, socket: Any, *, abort: bool) -> None:
        websocket = self._websockets.get(socket.sid)
        if abort and websocket is not None:
            websocket.abort()
        # Not `disconnect()`: it waits for the queue to drain, forever for a client that
        # has stopped reading.
        await socket.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
        # python-engineio sends a close packet but keeps a WebSocket open until the client
        # speaks, and the JS client only acts on the socket closing: an empty queue entry
        # makes the socket's writer task close the WebSocket now.
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


class CheckedWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """Engine.IO's aiohttp WebSocket that refuses frames no client could have sent, and
    reads every frame of up to `max_http_buffer_size` bytes, uncompressed."""

    async def __call__(self, environ: dict[str, Any]) -> web.StreamResponse:
        self.environ = environ
        # aiohttp refuses a message of exactly `max_msg_size` bytes; the limit is inclusive.
        # No permessage-deflate, which aiohttp would accept from every browser: one frame is
        # built per broadcast for all recipients, and per-connection zlib state cost about
        # 90 KiB per idle connection (bench/). Node's `ws` has it off by default too.
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size + 1, compress=False)
        request = environ["aiohttp.request"]
        try:
            await self._sock.prepare(request)
        except ConnectionResetError:  # the client left before its upgrade was answered
            return self._sock  # aiohttp drops a response to a closed connection quietly
        self._transport: asyncio.Transport = request.transport
        sid = self.handler.__self__.sid
        open_websockets: dict[str, CheckedWebSocket] = self.server._websockets
        open_websockets[sid] = self
        try:
            await self.handler(self)
        finally:
            open_websockets.pop(sid, None)
        return self._sock

    async def wait(self) -> str | bytes:
        """The next frame; `OSError` (which Engine.IO takes as the end) if there is none
        or it is malformed."""
        message = await self._sock.receive()
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

    def writer_idle(self, queue: asyncio.Queue[Any]) -> bool:
        """Whether Engine.IO's writer task for this socket holds nothing unsent: it waits
        on an empty queue. (Between taking packets off the queue and writing them, the
        queue is empty but the writer is not waiting.)"""
        return (queue.empty() and bool(queue._getters)  # type: ignore[attr-defined]
                and not self._transport.is_closing())

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
        self.server.log_closing(self.handler.__self__.sid, reason)
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
