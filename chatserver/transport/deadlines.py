"""Deadlines of one fixed length, for any number of connections, on one timer."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
Key = TypeVar("Key")


class Deadlines(Generic[Key]):
    """Deadlines that each fall `delay` seconds after they are set.

    All of one length, they fall due in the order they were set: a deque holds them and
    one timer of the event loop waits for the first. A timer per connection would cost
    about 0.6 KiB each; a look once a second (what the server did before) let a
    deadline pass by up to a second. Here `due` is called with the keys whose time has
    come, at that time. A deadline is never taken back: `due` checks whether the key
    still needs it (a pong may have come, the connection may be gone).
    """

    __slots__ = ("_delay", "_due", "_queue", "_timer")

    def __init__(self, delay: float, due: Callable[[list[Key]], None]) -> None:
        self._delay = delay
        self._due = due
        self._queue: deque[tuple[float, Key]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def set(self, key: Key) -> None:
        """Call `due` with `key` once `delay` seconds have passed."""
        loop = asyncio.get_running_loop()
        when = loop.time() + self._delay
        self._queue.append((when, key))
        if self._timer is None:
            self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        queue = self._queue
        keys = []
        while queue and queue[0][0] <= now:
            keys.append(queue.popleft()[1])
        self._timer = loop.call_at(queue[0][0], self._fire) if queue else None
        if keys:
            try:
                self._due(keys)
            except Exception:  # one bad round must not stop the deadlines after it
                log.exception("deadline handling failed", extra={"keys": len(keys)})
