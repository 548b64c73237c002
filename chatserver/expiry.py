"""When each connection's token runs out: a notice ahead of time, and the end at `exp`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenExpiry:
    """Per connection, one timer at a time: `expiring(conn, expires_at)` `notice` seconds
    before its token's expiry (at once if that is sooner), then `expired(conn)` at the
    expiry itself. Watching a connection again (a refreshed token) replaces its timer."""

    def __init__(self, notice: float, expiring: Callable[[str, float], None], expired: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._notice = notice
        self._expiring = expiring
        self._expired = expired
        self._clock = clock
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def watch(self, conn: str, expires_at: float) -> None:
        """Time the connection's token, which expires at `expires_at` (Unix seconds)."""
        self.forget(conn)
        left = expires_at - self._clock()
        loop = asyncio.get_running_loop()
        if left <= self._notice:
            self._expiring(conn, expires_at)
            self._timers[conn] = loop.call_later(max(left, 0.0), self._end, conn)
        else:
            self._timers[conn] = loop.call_later(left - self._notice, self._warn, conn, expires_at)

    def forget(self, conn: str) -> None:
        """Stop timing the connection (it closed)."""
        timer = self._timers.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _warn(self, conn: str, expires_at: float) -> None:
        self._expiring(conn, expires_at)
        self._timers[conn] = asyncio.get_running_loop().call_later(
            max(expires_at - self._clock(), 0.0), self._end, conn)

    def _end(self, conn: str) -> None:
        del self._timers[conn]
        self._expired(conn)
