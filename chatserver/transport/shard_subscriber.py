"""Room channels on a Redis Cluster: each one SSUBSCRIBEd on the master that owns its slot."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from itertools import groupby
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisClusterException, RedisError, ResponseError, SlotNotCoveredError

log = logging.getLogger(__name__)

Push = dict[str, Any]  # a pub/sub push as redis-py's PubSub gives it: type, channel, data
RETRY_FIRST, RETRY_MOST = 0.5, 5.0  # seconds between attempts to place channels while a master is away
RECHECK = 15.0  # seconds between looks at the slot map while nothing seems wrong


class ShardSubscriber:
    """Sharded pub/sub across a Redis Cluster's masters.

    A cluster carries a shard channel only on the master that owns its hash slot, so an
    instance needs a connection to each master owning a channel it hears. redis-py's
    `ClusterPubSub` reads those connections by polling them in turn; here each one has a
    task reading it, so a message is handled the moment it arrives, and the pushes
    (`smessage`, `ssubscribe`) go to `on_push` in the order each master sent them.

    A channel becomes unplaced when its slot moves to another master (the old one sends a
    `sunsubscribe` nobody asked for), when a master answers that it does not own the slot,
    or when the connection to its master breaks. `keep_placed` then refreshes the slot map
    and subscribes it where the map says, retrying with a growing wait while the master is
    away; it also looks at the slot map every `RECHECK` seconds. What was published
    meanwhile is what clients recover with `since`.
    """

    def __init__(self, cluster: RedisCluster, on_push: Callable[[Push], None]) -> None:
        self._cluster = cluster
        self._on_push = on_push
        self._placed: dict[str, str] = {}  # channel -> name of the master it is subscribed on
        self._unplaced: set[str] = set()
        self._shards: dict[str, _Shard] = {}
        self._misplaced = asyncio.Event()
        self._lock = asyncio.Lock()  # one change of the subscriptions at a time

    async def ssubscribe(self, *channels: str) -> None:
        """Subscribe `channels`, each on the master owning its slot; a channel that cannot
        be placed now is placed by `keep_placed` later (its `ssubscribe` push comes then)."""
        async with self._lock:
            self._unplaced.update(channels)
            try:
                await self._cluster.initialize()  # learns the slot map once; a no-op afterwards
            except (RedisError, RedisClusterException, OSError):
                self._misplaced.set()  # the keeper logs it and tries again
                return
            await self._place()

    async def sunsubscribe(self, *channels: str) -> None:
        """Stop hearing `channels`."""
        async with self._lock:
            for channel in channels:
                self._unplaced.discard(channel)
                shard = self._shards.get(self._placed.pop(channel, ""))
                if shard is not None:
                    await shard.send("SUNSUBSCRIBE", channel)

    async def publish(self, channel: str, data: str) -> None:
        """SPUBLISH `data` on the master owning `channel`'s slot."""
        await self._cluster.execute_command("SPUBLISH", channel, data)

    async def keep_placed(self) -> None:
        """Place the channels that lost their master, after refreshing the slot map; also
        look at the slot map every `RECHECK` seconds, for a failover that no connection
        noticed (a master cut off by the network, not closed). Runs for the manager's lifetime."""
        retry = RETRY_FIRST
        while True:
            try:
                await asyncio.wait_for(self._misplaced.wait(), RECHECK)
            except TimeoutError:
                if not self._placed:
                    continue
            async with self._lock:
                try:
                    await self._cluster.initialize()
                    await self._cluster.nodes_manager.initialize()  # the slot map, anew
                    self._unplace_moved()
                    await self._place()
                except (RedisError, RedisClusterException, OSError) as error:
                    log.warning("cannot reach the redis cluster's slot map",
                                extra={"retry_in": retry, "error": f"{type(error).__name__}: {error}"})
            if self._misplaced.is_set():
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MOST)
            else:
                retry = RETRY_FIRST

    def close(self) -> None:
        """Drop every master's connection."""
        for name in list(self._shards):
            self._shards.pop(name).close()

    async def _place(self) -> None:
        """SSUBSCRIBE the unplaced channels, one command per slot (Redis refuses a
        command whose channels lie in two slots)."""
        keyslot = self._cluster.keyslot
        unreachable: set[str] = set()
        for _, in_slot in groupby(sorted(self._unplaced, key=keyslot), key=keyslot):
            channels = list(in_slot)
            node = self._owner(channels[0])
            if node is None or node.name in unreachable:
                continue
            try:
                shard = await self._shard(node)
                await shard.send("SSUBSCRIBE", *channels)
            except (RedisError, OSError) as error:
                unreachable.add(node.name)
                log.warning("cannot subscribe on a redis cluster node",
                            extra={"node": node.name, "error": f"{type(error).__name__}: {error}"})
                continue
            self._unplaced.difference_update(channels)
            self._placed.update(dict.fromkeys(channels, node.name))
        if self._unplaced:
            self._misplaced.set()
        else:
            self._misplaced.clear()

    def _unplace_moved(self) -> None:
        """Channels placed on a master that the slot map no longer names for them."""
        for channel, name in list(self._placed.items()):
            owner = self._owner(channel)
            if owner is None or owner.name != name:
                self._unplace(channel)

    def _owner(self, channel: str) -> ClusterNode | None:
        """The master owning `channel`'s slot in the slot map; None while nobody covers it."""
        try:
            return self._cluster.get_node_from_key(channel)
        except SlotNotCoveredError:
            return None

    def _unplace(self, channel: str) -> None:
        del self._placed[channel]
        self._unplaced.add(channel)
        self._misplaced.set()

    async def _shard(self, node: ClusterNode) -> _Shard:
        shard = self._shards.get(node.name)
        if shard is None:
            connection = node.connection_class(**{**node.connection_kwargs, "health_check_interval": 0})
            await connection.connect()  # type: ignore[no-untyped-call]
            shard = self._shards[node.name] = _Shard(node.name, connection, self._push, self._refused, self._lost)
        return shard

    def _push(self, shard: str, reply: list[Any]) -> None:
        kind = reply[0].decode()
        if kind == "sunsubscribe":
            channel = reply[1].decode()
            if self._placed.get(channel) == shard:  # not asked for: the channel's slot moved away
                self._unplace(channel)
        else:
            self._on_push({"type": kind, "channel": reply[1], "data": reply[2]})

    def _refused(self, shard: str, error: ResponseError) -> None:
        log.info("a redis cluster node refused a subscription", extra={"node": shard, "error": str(error)})
        self._misplaced.set()  # the keeper moves what the refreshed slot map places elsewhere

    def _lost(self, shard: str, error: Exception) -> None:
        log.error("cannot receive from a redis cluster node",
                  extra={"node": shard, "error": f"{type(error).__name__}: {error}"})
        self._shards.pop(shard, None)
        for channel, name in list(self._placed.items()):
            if name == shard:
                self._unplace(channel)


class _Shard:
    """A connection to one master, with a task that reads what it pushes."""

    def __init__(self, name: str, connection: AbstractConnection, on_push: Callable[[str, list[Any]], None],
                 on_refused: Callable[[str, ResponseError], None], on_lost: Callable[[str, Exception], None]) -> None:
        self.name = name
        self._connection = connection
        self._on_push = on_push
        self._on_refused = on_refused
        self._on_lost = on_lost
        self._reader = asyncio.create_task(self._read())

    async def send(self, *command: str) -> None:
        await self._connection.send_command(*command, check_health=False)

    def close(self) -> None:
        self._reader.cancel()

    async def _read(self) -> None:
        try:
            while True:
                try:
                    reply = await self._connection.read_response(timeout=math.inf, push_request=True)
                except ResponseError as error:  # e.g. MOVED: the slot map is out of date
                    self._on_refused(self.name, error)
                    continue
                self._on_push(self.name, reply)
        except (RedisError, OSError) as error:
            self._on_lost(self.name, error)
        finally:
            await self._connection.disconnect()
