"""When each connection's token runs out: a notice ahead of time, and the end at `exp`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenExpiry:
    """Per connection, one timer at a time: `expiring(conn, expires_at)` `notice` seconds
    before its token's expiry, then `expired(conn)` at the expiry itself."""

    def __init__(self, notice: float, expiring: Callable[[str, float], None], expired: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._notice = notice
        self._expiring = expiring
        self._expired = expired
        self._clock = clock
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def watch(self, conn: str, expires_at: float) -> None:
        """Time a new connection's token, which expires at `expires_at` (Unix seconds);
        one that expires within the notice is told so at once."""
        self.forget(conn)
        left = expires_at - self._clock()
        if left <= self._notice:
            self._expiring(conn, expires_at)
            self._timers[conn] = asyncio.get_running_loop().call_later(max(left, 0.0), self._end, conn)
        else:
            self._warn_at(conn, expires_at, left - self._notice)

    def renew(self, conn: str, expires_at: float) -> bool:
        """Time the refreshed token of a watched connection; False (nothing done) for one
        no longer watched (closed, or ended). A token already within the notice is told
        so halfway to its expiry, not at once: its client has just refreshed."""
        if conn not in self._timers:
            return False
        self.forget(conn)
        left = expires_at - self._clock()
        self._warn_at(conn, expires_at, left - self._notice if left > self._notice else max(left / 2, 0.0))
        return True

    def forget(self, conn: str) -> None:
        """Stop timing the connection (it closed)."""
        timer = self._timers.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _warn_at(self, conn: str, expires_at: float, delay: float) -> None:
        self._timers[conn] = asyncio.get_running_loop().call_later(delay, self._warn, conn, expires_at)

    def _warn(self, conn: str, expires_at: float) -> None:
        self._expiring(conn, expires_at)
        self._timers[conn] = asyncio.get_running_loop().call_later(
            max(expires_at - self._clock(), 0.0), self._end, conn)

    def _end(self, conn: str) -> None:
        del self._timers[conn]
        self._expired(conn)
