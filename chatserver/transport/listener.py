"""The pub/sub listener of `ChatRedisManager`: the shared channel and the room channels this
instance hears, on one connection, or on a Cluster on a connection per master that owns one."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from ..backplane.clients import connect
from ..backplane.shards import Push, ShardSubscriber
from ..backplane.topology import Topology
from .room_channels import ChannelCommands, RoomChannels

log = logging.getLogger(__name__)
PUBLISH_CONNECTIONS = 32  # Redis connections for the pub/sub manager's publishes (one more listens)
INBOX_SIZE = 1_000  # pub/sub messages received on a Cluster's masters, waiting for python-socketio


class RoomChannelListener:
    """python-socketio's `AsyncRedisManager` listener (`_listen`, a mixin's override),
    hearing room channels too; the manager keeps the state named here."""

    channel: str
    host_id: str
    redis: Redis
    pubsub: Any
    connected: bool
    _topology: Topology
    _cluster: RedisCluster | None
    _shards: ShardSubscriber | None
    _room_channels: RoomChannels
    _commands: ChannelCommands | None
    _listening: asyncio.Event
    _may_shard: bool
    _sharded: bool

    def _redis_connect(self) -> None:
        """As python-socketio's, but through the store's `connect`: every `REDIS_URL` form
        (its own Sentinel URL reads a database number where ours has none, and leaves
        credentials percent-encoded), on a bounded pool that waits for a free connection
        (by default a publish opened a connection each, and failed past 100)."""
        self.redis = connect(self._topology, PUBLISH_CONNECTIONS, for_pubsub=True)
        self.pubsub = self.redis.pubsub()
        self.connected = True

    async def _listen(self) -> AsyncIterator[bytes]:
        """Messages on the shared channel and on the room channels this instance hears.
        On one server (or Sentinel's master) one connection carries them all; on a Cluster
        with sharded pub/sub each room channel is heard on its own master, and what all
        those connections receive is merged here."""
        if self._cluster is None:
            async for data in self._listen_shared():
                yield data
            return
        inbox: asyncio.Queue[bytes | BaseException] = asyncio.Queue(INBOX_SIZE)  # full: readers wait

        async def take(message: Push) -> None:
            data = self._accepted(message)
            if data is not None:
                await inbox.put(data)

        async def forward_shared() -> None:
            async for data in self._listen_shared():
                await inbox.put(data)

        def stopped(task: asyncio.Task[None]) -> None:
            if not task.cancelled():
                inbox.put_nowait(task.exception() or RuntimeError(f"{task.get_name()} ended"))

        self._shards = ShardSubscriber(self._cluster, take, max_publishes=PUBLISH_CONNECTIONS)
        tasks = [asyncio.create_task(self._shards.keep_placed(), name="room channel keeper"),
                 asyncio.create_task(forward_shared(), name="shared channel reader")]
        for task in tasks:
            task.add_done_callback(stopped)
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, BaseException):  # python-socketio logs it and listens anew
                    raise item
                yield item
        finally:
            for task in tasks:
                task.remove_done_callback(stopped)
                task.cancel()
            self._shards.close()

    async def _listen_shared(self) -> AsyncIterator[bytes]:
        """What the listener's one connection receives; after a broken connection,
        reconnect with a growing wait (as python-socketio's) and subscribe again."""
        retry = 1.0
        while True:
            try:
                await self._listen_anew()
                retry = 1.0
                async for message in self.pubsub.listen():
                    data = self._accepted(message)
                    if data is not None:
                        yield data
            except (RedisError, OSError) as error:
                self._listening.clear()
                log.error("cannot receive from redis", extra={"retry_in": retry,
                                                              "error": f"{type(error).__name__}: {error}"})
                await asyncio.sleep(retry)
                retry = min(retry * 2, 60.0)

    def _accepted(self, message: Push) -> bytes | None:
        """The data of a message for python-socketio to act on; None for a subscription's
        confirmation, and for this instance's own emits on room channels: room channels
        carry emits only, and this instance delivered its own already, so they are skipped
        before python-socketio decodes them to find out. (A JSON string escapes its
        quotes, so message text cannot match the marker.)"""
        kind = message["type"]
        if kind in ("message", "smessage"):
            data: bytes = message["data"]
            if message["channel"] == self._shared_channel or self._own_marker not in data:
                return data
        elif kind in ("subscribe", "ssubscribe"):
            self._room_channels.confirm(message["channel"].decode())
        return None

    @functools.cached_property
    def _shared_channel(self) -> bytes:
        return str(self.channel).encode()

    @functools.cached_property
    def _own_marker(self) -> bytes:
        return f'"host_id":"{self.host_id}"'.encode()  # as this instance publishes to room channels

    async def _listen_anew(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.aclose()
        self._redis_connect()
        info = await self.redis.info("server")
        self._sharded = self._may_shard and int(str(info["redis_version"]).split(".")[0]) >= 7
        await self.pubsub.subscribe(self.channel)
        if self._shards is not None and self._sharded:
            self._commands = ChannelCommands(self._shards.ssubscribe, self._shards.sunsubscribe)
        elif self._sharded:
            self._commands = ChannelCommands(self.pubsub.ssubscribe, self.pubsub.sunsubscribe)
        else:
            self._commands = ChannelCommands(self.pubsub.subscribe, self.pubsub.unsubscribe)
        await self._room_channels.subscribe_all(self._commands)
        self._listening.set()
