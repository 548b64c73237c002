"""Waiting events in process memory (embedded mode): lost with the process."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

from .events import HookEvent, HookType
from .queue import DropReason


class MemoryHookQueue:
    """The `HookQueue` of one process: a line of events per room, and all of them in
    the order they were recorded, so that the oldest of all is dropped first."""

    def __init__(self, max_events: int, clock: Callable[[], float] = time.time) -> None:
        self._max = max_events
        self._clock = clock
        self._rooms: dict[str, deque[HookEvent]] = {}
        self._all: OrderedDict[str, HookEvent] = OrderedDict()  # event id -> event, oldest first
        self._on_record: Callable[[str], None] = lambda room: None
        self._on_drop: Callable[[HookEvent, DropReason], None] = lambda event, reason: None

    def listen(self, on_record: Callable[[str], None], on_drop: Callable[[HookEvent, DropReason], None]) -> None:
        self._on_record, self._on_drop = on_record, on_drop

    async def record(self, room: str, type: HookType, data: Mapping[str, object]) -> None:
        event = HookEvent.new(room, type, data, int(self._clock() * 1000))
        self._rooms.setdefault(room, deque()).append(event)
        self._all[event.id] = event
        while len(self._all) > self._max:
            _, oldest = self._all.popitem(last=False)
            self._forget(oldest)  # the oldest of all is the oldest of its room: the head of its line
            self._on_drop(oldest, "queue_full")
        self._on_record(room)

    async def claim(self, room: str) -> HookEvent | None:
        line = self._rooms.get(room)
        return line[0] if line else None

    async def settle(self, room: str, event: HookEvent) -> HookEvent | None:
        if self._all.pop(event.id, None) is not None:  # else dropped meanwhile, as the oldest
            self._forget(event)
        return await self.claim(room)

    async def retry_at(self, room: str, at: float) -> None:
        """Nothing to do: only this process delivers."""

    async def trim(self) -> None:
        """Nothing to do: `record` keeps to the bound."""

    async def waiting_rooms(self) -> list[str]:
        return list(self._rooms)

    async def size(self) -> tuple[int, int | None]:
        oldest = next(iter(self._all.values()), None)
        return len(self._all), oldest.ts if oldest else None

    def _forget(self, event: HookEvent) -> None:
        line = self._rooms[event.room]
        line.popleft()
        if not line:
            del self._rooms[event.room]
