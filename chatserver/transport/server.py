"""python-socketio's server, with the checks a public server needs at the Socket.IO level."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import engineio
import socketio

from .deadlines import Deadlines
from .engine import GuardedEngineServer
from .frames import MalformedPacket, StrictPacket

# The versions these hooks were written and tested against; see `check_library_versions`.
TESTED_VERSIONS = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}
log = logging.getLogger(__name__)
# Events of one connection that may be in flight at once (see `pipelined_events`); past it,
# the next one waits, as every event does without pipelining.
MAX_IN_FLIGHT = 64
# Names the Socket.IO libraries use for their own events; a client may not send them.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "disconnecting",
                             "newListener", "removeListener"})


class UntestedLibrary(RuntimeError):
    """An installed python-socketio or python-engineio is not the version this package's
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
    `max_backlog` and `max_connections_per_address` besides the usual options.

    Only the namespaces registered are served: python-socketio serves `/` as well, where
    nothing would answer. A CONNECT to any other is refused with the Socket.IO v5
    `{"message": "Invalid namespace"}`, and a session that has connected to none within
    `connect_timeout` seconds is closed, as Node's server does.

    With `async_handlers=False` one connection's events are handled one after another.
    `pipelined_events` may overlap instead: the handler of such an event starts, and the
    connection's next event is read once the handler first waits (up to `MAX_IN_FLIGHT`
    at once). That keeps their order only where a handler takes its place in line before
    it first waits: for `message`, the Redis store's append script is called, and its
    calls go out in call order, before anything is awaited (`stores/batching.py`). A
    sender with many messages in flight then shares Redis round trips like many senders.
    """

    def __init__(self, *, connect_timeout: float, pipelined_events: Collection[str] = (), **options: Any) -> None:
        super().__init__(serializer=StrictPacket, **options)
        self._pipelined = frozenset(pipelined_events)
        self._in_flight: Counter[str] = Counter()  # eio sid -> pipelined events not yet done
        self._pipelined_tasks: set[asyncio.Task[None]] = set()
        self._connect_due: Deadlines[str] = Deadlines(connect_timeout, self._close_unconnected)
        self._closing: set[asyncio.Future[Any]] = set()

    def start_manager(self) -> None:
        """Start the client manager now, not at the first connection as python-socketio
        does: an HTTP route may emit (to a user, on Redis) before anyone connected here."""
        if not self.manager_initialized:  # type: ignore[has-type]  # python-socketio's, untyped
            self.manager_initialized = True
            self.manager.initialize()

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return GuardedEngineServer

    async def _handle_event_internal(self, server: socketio.AsyncServer, sid: str, eio_sid: str,
                                     data: list[Any], namespace: str, id: int | None) -> None:
        # python-socketio dispatches a client's event by its name, through the same path as
        # its own connect and disconnect: an event *named* "disconnect" would end the session.
        if data[0] in RESERVED_EVENTS:
            data = [ReservedEvent(data[0]), *data[1:]]
        elif data[0] in self._pipelined and self._in_flight[eio_sid] < MAX_IN_FLIGHT:
            self._in_flight[eio_sid] += 1
            task = asyncio.ensure_future(super()._handle_event_internal(server, sid, eio_sid, data, namespace, id))
            self._pipelined_tasks.add(task)
            task.add_done_callback(lambda done: self._pipelined_done(eio_sid, done))
            await asyncio.sleep(0)  # the handler runs first, to its first wait: its place in line is taken
            return
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)

    def _pipelined_done(self, eio_sid: str, task: asyncio.Task[None]) -> None:
        self._pipelined_tasks.discard(task)
        self._in_flight[eio_sid] -= 1
        if self._in_flight[eio_sid] <= 0:
            del self._in_flight[eio_sid]
        if not task.cancelled() and task.exception() is not None:
            log.error("event failed", exc_info=task.exception())

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        # python-socketio keeps each connection's WSGI-style environ, a copy of every request
        # header, for the namespaces' connect handlers; ours reads `auth` only. Keeping
        # nothing saves about a kilobyte per connection.
        self._connect_due.set(eio_sid)
        return await super()._handle_eio_connect(eio_sid, {})

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or "/"
        if namespace not in self.namespace_handlers:
            await self._send_packet(eio_sid, self.packet_class(
                socketio.packet.CONNECT_ERROR, data={"message": "Invalid namespace"}, namespace=namespace))
            return
        await super()._handle_connect(eio_sid, namespace, data)

    def _close_unconnected(self, eio_sids: list[str]) -> None:
        """Close the sessions among `eio_sids` that connected to no namespace in time."""
        unconnected = [eio_sid for eio_sid in eio_sids if eio_sid in self.eio.sockets and not any(
            self.manager.sid_from_eio_sid(eio_sid, namespace) for namespace in self.namespace_handlers)]
        if unconnected:
            closing = asyncio.ensure_future(asyncio.gather(*(
                self.eio.close_connection(eio_sid, "connected to no namespace within the connect timeout")
                for eio_sid in unconnected)))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MalformedPacket as error:
            await self.eio.close_connection(eio_sid, f"malformed packet: {error}")
