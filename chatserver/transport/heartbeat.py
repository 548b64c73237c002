"""Engine.IO's heartbeat for every connection of a server, kept to the announced times."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .deadlines import Deadlines

log = logging.getLogger(__name__)


class Heartbeat:
    """A ping `interval` seconds after the handshake and after each pong; a connection
    whose ping is unanswered for `timeout` seconds is handed to `close_silent`.

    python-engineio runs a task per connection that sleeps `interval` and then pings,
    and notices an unanswered ping only when it next queues something for the client.
    Direct writes skip that queue, and the WebSocket session reads without a timer per
    frame, so this does it for all connections, on two `Deadlines`: the times the
    handshake announced, to the millisecond, at the cost of one timer.

    `socket_of` finds python-engineio's `AsyncSocket` of a sid; `ping` sends one a ping.
    `socket.last_ping` keeps python-engineio's meaning (wall time of the ping awaiting
    its pong, None while none is), so its own check on queued sends agrees with this one.
    """

    def __init__(self, interval: float, timeout: float, *, socket_of: Callable[[str], Any],
                 ping: Callable[[Any], None], close_silent: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._socket_of = socket_of
        self._ping = ping
        self._close_silent = close_silent
        self._pings_due: Deadlines[str] = Deadlines(interval, self._send_pings)
        self._pongs_due: Deadlines[tuple[str, float]] = Deadlines(timeout, self._close_unanswered)
        self._closing: set[asyncio.Task[None]] = set()

    def schedule_ping(self, sid: str) -> None:
        """The connection `sid` has just opened, or answered its ping: ping it again in `interval`."""
        self._pings_due.set(sid)

    def _send_pings(self, sids: list[str]) -> None:
        wall = time.time()
        for sid in sids:
            socket = self._live(sid)
            if socket is not None and socket.last_ping is None:
                socket.last_ping = wall
                self._ping(socket)
                self._pongs_due.set((sid, wall))

    def _close_unanswered(self, pings: list[tuple[str, float]]) -> None:
        silent = []
        for sid, sent in pings:
            socket = self._live(sid)
            if socket is not None and socket.last_ping == sent:  # no pong since that ping
                silent.append(socket)
        if silent:
            task = asyncio.ensure_future(self._close_silent(silent))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _live(self, sid: str) -> Any:
        socket = self._socket_of(sid)
        return None if socket is None or socket.closing or socket.closed else socket
