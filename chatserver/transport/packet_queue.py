"""The queue python-engineio keeps per connection for what waits to be sent, made small."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

# Hands a batch of packets, in order, to the client (the first argument, as given to
# `drain_into`); False when nothing more is to be sent.
Drain = Callable[[Any, list[Any]], Awaitable[bool]]


class PacketQueue:
    """`asyncio.Queue`'s interface as python-engineio uses it (unbounded: `put` never waits),
    in a small part of the memory.

    An `asyncio.Queue` holds four deques (items, getters, putters, and its `join` event's
    waiters), and CPython allocates a 64-slot block for each deque when it is made: about
    3 KiB per connection for a queue that is empty nearly always, since broadcasts are
    written past it. Here the items' deque exists only while it holds something, the
    waiting getters (normally only a long-polling request) are a short list made when one
    waits, and `join`'s event is made only when someone joins.

    Once a WebSocket carries the connection, `drain_into` replaces the consumer waiting in
    `get` (python-engineio's writer task, for the connection's whole life) with a task
    that runs only while there is something to send.
    """

    __slots__ = ("_drain", "_draining", "_finished", "_getters", "_items", "_target", "_unfinished")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None  # made for what is put, let go once empty
        self._getters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        self._finished: asyncio.Event | None = None
        self._drain: Drain | None = None
        self._target: Any = None
        self._draining: asyncio.Task[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def first(self) -> Any:
        """The item `get` would take next, left in place; None when empty."""
        return self._items[0] if self._items else None

    @property
    def getter_waiting(self) -> bool:
        """Whether a consumer waits in `get` for the next item."""
        return bool(self._getters)

    @property
    def idle(self) -> bool:
        """Whether items are drained (`drain_into`), none waits and none is being drained:
        a write past the queue now cannot overtake anything put before it."""
        return self._drain is not None and self._draining is None and not self._items

    def drain_into(self, drain: Drain, target: Any) -> None:
        """From now on, hand what is put to `drain(target, batch)`, a batch at a time and in
        order, from a task started when something is put and ended once the queue is empty.
        When `drain` returns False, draining stops: what is put after that stays queued."""
        self._drain, self._target = drain, target
        if self._items and self._draining is None:
            self._draining = asyncio.get_running_loop().create_task(self._drain_all())

    async def drained(self) -> None:
        """Wait until what has been put is drained (see `drain_into`)."""
        if self._draining is not None:
            await self._draining

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._unfinished += 1
        if self._finished is not None:
            self._finished.clear()
        if self._drain is not None and self._draining is None:
            self._draining = asyncio.get_running_loop().create_task(self._drain_all())
        self._wake_next()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._take()

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter in self._getters:
                    self._getters.remove(getter)
                elif self._items:  # woken for an item it will not take: wake the next one
                    self._wake_next()
                raise
        return self._take()

    def _take(self) -> Any:
        items = self._items
        assert items
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    async def _drain_all(self) -> None:
        try:
            while self._items and self._drain is not None:
                batch = list(self._items)
                self._items = None
                for _ in batch:  # taken, as a consumer of `get` would mark them
                    self.task_done()
                if not await self._drain(self._target, batch):
                    self._drain = self._target = None
        finally:
            self._draining = None

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put has been taken and marked done."""
        if self._unfinished:
            if self._finished is None:
                self._finished = asyncio.Event()
            await self._finished.wait()
