"""`RedisPresence`: who is online where, shared by every instance through Redis.

A connection's entry lives in its room's slot, in a set per instance; the instance's
index of rooms (`instance_rooms`) and the online index live elsewhere, so each step is
the room's script plus single-key updates beside it. The room's script decides (first,
last, who left). The instance index is raised before an entry exists and lowered after
it is gone, so a reaper finds every entry; the updates after the script are best effort
(`_beside`): an index left too high costs a reaper a look at an empty room, and
`online_rooms` reads counts from the rooms themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, cast

from redis.asyncio.cluster import RedisCluster

from ..backplane.clients import RedisClient
from ..backplane.topology import Topology
from ..models import User
from . import redis_scripts as lua
from .batching import BatchedScript
from .redis_errors import RedisAway
from .redis_keys import Keys

log = logging.getLogger(__name__)
REDIS_AWAY = RedisAway("redis unavailable")



class ScriptCall(Protocol):
    """A Lua script to call: redis-py's `AsyncScript` or a `BatchedScript`."""

    def __call__(self, *, keys: list[str], args: list[str | int]) -> Awaitable[Any]: ...


class RedisPresence:
    """The `PresenceStore` protocol in Redis, and the base of `RedisStore`: the client,
    the key names and the mapping of Redis failures to `StoreUnavailable`."""

    def __init__(self, redis: RedisClient, topology: Topology, instance: str, keys: Keys, *, timeout: float,
                 turn_wait: float) -> None:
        self._redis = redis
        self._instance = instance
        self._keys = keys
        self._timeout = timeout
        # where keys are spread over nodes, `redis` is redis-py's cluster client (`connect`)
        self._cluster = cast(RedisCluster, redis) if topology.traits.spread else None
        self._batches: list[BatchedScript] = []
        self._add_presence = self._script(lua.ADD_PRESENCE)
        self._remove_presence = self._script(lua.REMOVE_PRESENCE)
        self._reap_room = self._script(lua.REAP_ROOM)
        self._decrement = self._script(lua.DECREMENT)
        # redis-py's cluster client refuses a command past `max_connections` to a node
        # where the single-server pool waits for a free connection, so on a Cluster an
        # operation waits here for a turn: an operation holds at most two connections at
        # once, and a quarter of the pool per turn leaves room for the batches.
        per_node = int(self._cluster.connection_kwargs.get("max_connections", 4)) if self._cluster else 0
        self._turns = asyncio.Semaphore(max(1, per_node // 4))
        self._turn_wait = turn_wait

    def _batched(self, script: str) -> BatchedScript:
        """`script`, registered, with its calls batched (closed by `close`)."""
        batched = BatchedScript(self._redis, self._redis.register_script(script), timeout=self._timeout,
                               spread=self._cluster is not None)
        self._batches.append(batched)
        return batched

    def _script(self, script: str) -> ScriptCall:
        """`script`, registered: on one server called through the pool (which waits for a
        free connection, and reconnects within a call after Redis restarted); on a Cluster
        batched, so that a burst takes at most one connection per node and script."""
        return self._batched(script) if self._cluster else self._redis.register_script(script)

    def _available(self) -> AbstractAsyncContextManager[None]:
        """Turn Redis being away (or no turn within `turn_wait`) into a `StoreUnavailable`
        the client sees as `internal`; on a Cluster, wait for a turn first (one server's
        pool waits by itself)."""
        return REDIS_AWAY if self._cluster is None else self._in_turn(self._cluster)

    @asynccontextmanager
    async def _in_turn(self, cluster: RedisCluster) -> AsyncIterator[None]:
        async with REDIS_AWAY:
            # learn the slot map before the first command: redis-py 8.1 broke connections of
            # a burst of first commands while it did (tests/contract: the burst of joins)
            await cluster.initialize()
            await asyncio.wait_for(self._turns.acquire(), self._turn_wait)
            try:
                yield
            finally:
                self._turns.release()

    async def add_presence(self, room: str, user: User, conn: str) -> bool:
        async with self._available():
            await self._redis.zincrby(self._keys.instance_rooms(self._instance), 1, room)
            first, public = await self._add_presence(keys=self._presence_keys(room, self._instance),
                                                     args=[user.id, json.dumps(user.as_dict()), f"{user.id}\n{conn}"])
            if int(first) and int(public):
                await self._beside(self._redis.zincrby(self._keys.online, 1, room))
        return bool(int(first))

    async def remove_presence(self, room: str, user: User, conn: str) -> bool:
        async with self._available():
            removed, last, public = await self._remove_presence(keys=self._presence_keys(room, self._instance),
                                                                args=[user.id, f"{user.id}\n{conn}"])
            updates = []
            if int(removed):
                updates.append(self._decrement(keys=[self._keys.instance_rooms(self._instance)], args=[room, 1]))
            if int(last) and int(public):
                updates.append(self._decrement(keys=[self._keys.online], args=[room, 1]))
            await self._beside(*updates)
        return bool(int(last))

    async def _beside(self, *updates: Awaitable[Any]) -> bool:
        """Run the single-key updates that follow a room's script, at once. A failure is
        logged, not raised: the room's step is done, and its answer must reach the caller
        (a retried removal would find nothing to remove and announce nobody left)."""
        failures = [result for result in await asyncio.gather(*updates, return_exceptions=True)
                    if isinstance(result, Exception)]
        for failure in failures:
            log.warning("redis update beside a room's step failed",
                        extra={"error": f"{type(failure).__name__}: {failure}"})
        return not failures

    def _presence_keys(self, room: str, instance: str) -> list[str]:
        keys = self._keys.room(room)
        return [keys.users, keys.conns, keys.instance(instance), keys.private]

    async def members(self, room: str) -> list[User]:
        async with self._available():
            raw = await self._redis.hvals(self._keys.room(room).users)
        users = [User(**json.loads(item)) for item in raw]
        return sorted(users, key=lambda user: (user.name, user.id))

    async def online_rooms(self, limit: int) -> list[tuple[str, int]]:
        """The online index picks the rooms; each room's own users hash gives the count,
        since the index is updated beside the room's script, not in it, and an instance
        that died (or lost Redis) between the two left it off by one."""
        async with self._available():
            rooms = [str(room) for room in await self._redis.zrange(self._keys.online, 0, limit - 1, desc=True)]
            async with self._redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    pipe.hlen(self._keys.room(room).users)
                users = await pipe.execute()
        counts = [(room, int(count)) for room, count in zip(rooms, users, strict=True) if int(count) > 0]
        return sorted(counts, key=lambda item: (-item[1], item[0]))

    async def heartbeat(self) -> bool:
        async with self._available():
            added = await self._redis.zadd(self._keys.instances, {self._instance: int(time.time() * 1000)})
        return bool(added)

    async def reap(self, expiry: float) -> list[tuple[str, User]]:
        deadline = int((time.time() - expiry) * 1000)
        left: list[tuple[str, User]] = []
        async with self._available():
            for instance in await self._redis.zrangebyscore(self._keys.instances, "-inf", deadline):
                left += await self._reap_instance(str(instance))
        return left

    async def _reap_instance(self, instance: str) -> list[tuple[str, User]]:
        """Remove a dead instance's entries room by room (each room in one step, so two
        reapers never both report a user), then the instance, unless a room failed:
        the next reap finishes it."""
        rooms = [str(room) for room in await self._redis.zrange(self._keys.instance_rooms(instance), 0, -1)]
        reaped = await asyncio.gather(*(self._reap_room(keys=self._presence_keys(room, instance), args=[])
                                        for room in rooms), return_exceptions=True)
        left: list[tuple[str, User]] = []
        updates = []
        complete = True
        for room, result in zip(rooms, reaped, strict=True):
            if isinstance(result, BaseException):
                log.warning("reaping a room failed",
                            extra={"room": room, "error": f"{type(result).__name__}: {result}"})
                complete = False
                continue
            public, *users = result
            left += [(room, User(**json.loads(user))) for user in users]
            if users and int(public):
                updates.append(self._decrement(keys=[self._keys.online], args=[room, len(users)]))
        if await self._beside(*updates) and complete:
            await self._beside(self._redis.delete(self._keys.instance_rooms(instance)),
                               self._redis.zrem(self._keys.instances, instance))
        return left
