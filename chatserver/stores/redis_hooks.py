"""`RedisHookQueue`: webhook events waiting in Redis, delivered by whichever instance holds
their room, and by any live one when that instance dies.

Each room's events are a stream in the room's slot, written by the room's own scripts in
the step that makes the change (`APPEND`, `CHANGE`), so a crash loses none, and read
through the consumer group `deliver`, one consumer per instance: the instance whose
consumer holds a room's pending entry delivers the room's events, one at a time, in
order, while its heartbeat (the presence registry) is fresh; after that any instance
claims the entry and goes on. Two indexes beside the streams find the work: `hooks_due`
(rooms to look at, and when) for the sweep, `hooks_heads` (each room's oldest event, by
its place in the order of all events, `hooks_serial`) for the bound. They are touched by
the room's scripts, so webhooks need one Redis server (or Sentinel's master), not a Cluster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import cast

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

from ..backplane.clients import RedisClient
from ..webhooks.events import HookEvent, HookType
from ..webhooks.queue import DropReason
from . import redis_scripts as lua
from .redis_errors import RedisAway
from .redis_keys import Keys

log = logging.getLogger(__name__)

NOTHING, HELD_ELSEWHERE, TO_DELIVER = 0, 1, 2  # CLAIM_HOOK's outcomes
NO_EVENT_ARGS: tuple[str | int, ...] = ("", "", 0, "")  # a member script told to record nothing
QUEUE_AWAY = RedisAway("webhook queue unavailable")  # delivery waits and tries again
SWEEP_BATCH = 1000  # rooms the sweep looks at, at most, each time


class RedisHookQueue:
    """The `HookQueue` in Redis, shared by every instance.

    `lease` (seconds) is how long a claim holds a room before the sweep of another instance
    looks at it again (it then finds the holder alive and leaves it, or dead and takes
    over); `expiry` is the presence expiry, after which a silent instance counts as dead."""

    def __init__(self, redis: RedisClient, keys: Keys, instance: str, *, max_events: int, lease: float,
                 expiry: float, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._instance = instance
        self._max = max_events
        self._lease_ms = int(lease * 1000)
        self._expiry_ms = int(expiry * 1000)
        self._clock = clock
        self._record = redis.register_script(lua.RECORD_HOOK)
        self._claim = redis.register_script(lua.CLAIM_HOOK)
        self._drop = redis.register_script(lua.DROP_HOOK)
        self._on_record: Callable[[str], None] = lambda room: None
        self._on_drop: Callable[[HookEvent, DropReason], None] = lambda event, reason: None

    def listen(self, on_record: Callable[[str], None], on_drop: Callable[[HookEvent, DropReason], None]) -> None:
        self._on_record, self._on_drop = on_record, on_drop

    def keys_of(self, room: str) -> list[str]:
        """The five keys every script recording or reading `room`'s events takes."""
        return [self._keys.room(room).hooks, self._keys.hooks_due, self._keys.hooks_heads, self._keys.hooks_length,
                self._keys.hooks_serial]

    def new_event(self, room: str, type: HookType, data: Mapping[str, object]) -> HookEvent:
        """An event about `room` made now, for a store's step to record."""
        return HookEvent.new(room, type, data, self.now_ms())

    def now_ms(self) -> int:
        """The time an event made now carries, in Unix ms."""
        return int(self._clock() * 1000)

    def script_args(self, event: HookEvent | None) -> list[str | int]:
        """How a member script is told to record `event` (see redis_scripts.py): room, id,
        ts, body; for None, that it records nothing."""
        return [event.room, event.id, event.ts, event.body.decode()] if event else list(NO_EVENT_ARGS)

    async def record_in(self, transaction: Pipeline | ClusterPipeline, event: HookEvent) -> None:
        """Record `event` within `transaction`, the MULTI that makes the change it reports
        (queued: it runs when the transaction is executed). Never a Cluster's: webhooks
        need one server, which start-up checks."""
        await self._record(keys=self.keys_of(event.room), args=[event.room, event.id, event.type, event.ts, event.body],
                           client=cast(Pipeline, transaction))

    def recorded(self, room: str) -> None:
        """A room's script recorded an event: wake its delivery."""
        self._on_record(room)

    async def record(self, room: str, type: HookType, data: Mapping[str, object]) -> None:
        event = self.new_event(room, type, data)
        async with QUEUE_AWAY:
            await self._record(keys=self.keys_of(room), args=[room, event.id, event.type, event.ts, event.body])
        self._on_record(room)

    async def claim(self, room: str) -> HookEvent | None:
        return await self._claim_next(room, "")

    async def settle(self, room: str, event: HookEvent) -> HookEvent | None:
        return await self._claim_next(room, event.entry)

    async def retry_at(self, room: str, at: float) -> None:
        async with QUEUE_AWAY:
            await self._redis.zadd(self._keys.hooks_due, {room: int(at * 1000) + self._lease_ms}, xx=True)

    async def trim(self) -> None:
        async with QUEUE_AWAY:
            excess = int(await self._redis.get(self._keys.hooks_length) or 0) - self._max
            while excess > 0:
                oldest = await self._redis.zrange(self._keys.hooks_heads, 0, 0)
                if not oldest:
                    return
                room = str(oldest[0])
                dropped = await self._drop(keys=self.keys_of(room), args=[room])
                if dropped:
                    event_id, type_, ts = dropped
                    self._on_drop(HookEvent(str(event_id), type_, int(ts), room, b""), "queue_full")
                excess -= 1

    async def waiting_rooms(self) -> list[str]:
        now_ms = int(self._clock() * 1000)
        async with QUEUE_AWAY:
            rooms = await self._redis.zrangebyscore(self._keys.hooks_due, "-inf", now_ms, start=0, num=SWEEP_BATCH)
        return [str(room) for room in rooms]

    async def size(self) -> tuple[int, int | None]:
        async with QUEUE_AWAY:
            length = await self._redis.get(self._keys.hooks_length)
            oldest_room = await self._redis.zrange(self._keys.hooks_heads, 0, 0)
            first = await self._redis.xrange(self._keys.room(str(oldest_room[0])).hooks, count=1) \
                if oldest_room else []
        fields = first[0][1] if first else None
        return max(0, int(length or 0)), int(fields["ts"]) if fields else None

    async def _claim_next(self, room: str, settled: str) -> HookEvent | None:
        keys = [*self.keys_of(room), self._keys.instances]
        async with QUEUE_AWAY:
            outcome, *found = await self._claim(keys=keys, args=[self._instance, room, self._lease_ms,
                                                                 self._expiry_ms, settled])
        if int(outcome) != TO_DELIVER:
            return None
        entry, event_id, type_, ts, body = found
        return HookEvent(str(event_id), type_, int(ts), room, body if isinstance(body, bytes) else body.encode(),
                         entry=str(entry))

