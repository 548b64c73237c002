"""Release each room's stored events in `rev` order, whichever way they reached this instance."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass
class _Room(Generic[T]):
    last: int  # the highest seq released in order
    waiting: dict[int, T] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class SeqOrder(Generic[K, T]):
    """Holds a room's stored event (a message or a change to one) until the one before it
    has been released, by the room's gapless event counter (`rev`; "seq" below).

    In Redis mode an event reaches an instance from its own step (the script's answer)
    or from another instance (pub/sub, in order). Two steps in flight on one
    instance can answer in either order, so 6 may come before 5: it waits for 5.
    If 5 has not come within `gap_wait` seconds (lost on the way, say while the pub/sub
    connection reconnected), everything waiting goes out in order through `release_late`,
    and clients fill the gap from history as for any other gap.

    A `seq` at or below the last one released goes out at once: a room whose history was
    lost starts over at 1 under a new epoch. At most `max_rooms` rooms are remembered;
    a forgotten room starts afresh with whatever comes next.
    """

    def __init__(self, release_late: Callable[[K, list[T]], None], *, gap_wait: float,
                 max_rooms: int = 100_000) -> None:
        self._release_late = release_late
        self._gap_wait = gap_wait
        self._max_rooms = max_rooms
        self._rooms: OrderedDict[K, _Room[T]] = OrderedDict()

    def follow(self, room: K, seq: int) -> None:
        """The room's latest `seq` as a join on this instance read it: unless the room is
        already followed, its next message is `seq` + 1 (so 2 waits for 1)."""
        if room not in self._rooms:
            self._remember(room, _Room(last=seq))

    def arrive(self, room: K, seq: int, item: T) -> list[T]:
        """`item`, the room's message `seq`, has come: the items to release now, in order."""
        state = self._rooms.get(room)
        if state is None:
            self._remember(room, _Room(last=seq))
            return [item]
        self._rooms.move_to_end(room)
        if seq > state.last + 1:
            state.waiting[seq] = item
            if state.timer is None:
                state.timer = asyncio.get_running_loop().call_later(self._gap_wait, self._give_up, room)
            return []
        if seq <= state.last:
            if seq != 1:
                return [item]
            # A new epoch: what waits belongs to the old one; it goes out first, unordered.
            stale = [state.waiting.pop(old) for old in sorted(state.waiting)]
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None
            state.last = 1
            return [*stale, item]
        released = [item]
        state.last = seq
        while state.last + 1 in state.waiting:
            state.last += 1
            released.append(state.waiting.pop(state.last))
        if not state.waiting and state.timer is not None:
            state.timer.cancel()
            state.timer = None
        return released

    def _give_up(self, room: K) -> None:
        state = self._rooms[room]
        state.timer = None
        released = [state.waiting[seq] for seq in sorted(state.waiting)]
        state.last = max(state.waiting)
        state.waiting.clear()
        self._release_late(room, released)

    def _remember(self, room: K, state: _Room[T]) -> None:
        self._rooms[room] = state
        while len(self._rooms) > self._max_rooms:
            oldest, old = next(iter(self._rooms.items()))
            if old.waiting:  # still waiting: keep it, it is about to be released
                self._rooms.move_to_end(oldest)
                break
            del self._rooms[oldest]
