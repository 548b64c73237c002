"""Room channels on a Redis Cluster: each one SSUBSCRIBEd on the master that owns its slot."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import hiredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError, ResponseError, SlotNotCoveredError

log = logging.getLogger(__name__)

Push = dict[str, Any]  # a pub/sub push as redis-py's PubSub gives it: type, channel, data
RETRY_FIRST, RETRY_MOST = 0.5, 5.0  # seconds between attempts to place channels while a master is away
RECHECK = 15.0  # seconds between looks at the slot map while nothing seems wrong
TROUBLE = (RedisError, RedisClusterException, OSError)  # what a cluster that is away or changing raises


class ShardSubscriber:
    """Sharded pub/sub across a Redis Cluster's masters.

    A cluster carries a shard channel only on the master that owns its hash slot, so an
    instance needs a connection to each master owning a channel it hears. redis-py's
    `ClusterPubSub` reads those connections by polling them in turn; here each one has a
    task reading it, so a message is handled the moment it arrives, and the pushes
    (`smessage`, `ssubscribe`) go to `on_push` in the order each master sent them.

    A channel becomes unplaced when its slot moves to another master (the old one sends a
    `sunsubscribe` nobody asked for), when its master refuses the `SSUBSCRIBE` (`MOVED`,
    `BUSY`, ...), or when the connection to its master breaks. `keep_placed` then refreshes
    the slot map and subscribes it where the map says, retrying with a growing wait while
    that fails; it also looks at the slot map every `RECHECK` seconds. A join does not wait
    for a master that failed within the last `RETRY_MOST` seconds: the keeper retries it.
    What was published meanwhile is what clients recover with `since`.
    """

    def __init__(self, cluster: RedisCluster, on_push: Callable[[Push], Awaitable[None]], *,
                 max_publishes: int) -> None:
        self._cluster = cluster
        self._on_push = on_push
        self._placed: dict[str, str] = {}  # channel -> name of the master it is (being) subscribed on
        self._unplaced: set[str] = set()
        self._shards: dict[str, _Shard] = {}
        self._opening: dict[str, asyncio.Future[_Shard]] = {}
        self._down_until: dict[str, float] = {}  # master -> loop time until which joins do not wait for it
        self._misplaced = asyncio.Event()
        self._publishing = asyncio.Semaphore(max_publishes)  # redis-py's cluster pool refuses past its size

    async def ssubscribe(self, *channels: str) -> None:
        """Subscribe `channels`, each on the master owning its slot; a channel that cannot
        be placed now is placed by `keep_placed` later (its `ssubscribe` push comes then)."""
        self._unplaced.update(channel for channel in channels if channel not in self._placed)
        try:
            await self._cluster.initialize()  # learns the slot map once; a no-op afterwards
        except TROUBLE:
            self._misplaced.set()  # the keeper logs it and tries again
            return
        await self._place(channels, retry_down=False)

    async def sunsubscribe(self, *channels: str) -> None:
        """Stop hearing `channels`."""
        for channel in channels:
            self._unplaced.discard(channel)
            shard = self._shards.get(self._placed.pop(channel, ""))
            if shard is not None:
                await self._send(shard, [(False, channel)])

    async def publish(self, channel: str, data: str) -> None:
        """SPUBLISH `data` on the master owning `channel`'s slot."""
        async with self._publishing:
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
            try:
                await self._cluster.initialize()
                await self._cluster.nodes_manager.initialize()  # the slot map, anew
                self._unplace_moved()
                await self._place(list(self._unplaced), retry_down=True)
                self._close_idle()
            except TROUBLE as error:
                log.warning("cannot reach the redis cluster's slot map",
                            extra={"retry_in": retry, "error": f"{type(error).__name__}: {error}"})
            except Exception:
                log.exception("room channel upkeep failed", extra={"retry_in": retry})
            if self._misplaced.is_set():
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MOST)
            else:
                retry = RETRY_FIRST

    def close(self) -> None:
        """Drop every master's connection."""
        for shard in list(self._shards.values()):
            shard.close()
        self._shards.clear()

    async def _place(self, channels: Iterable[str], *, retry_down: bool) -> None:
        """SSUBSCRIBE those of `channels` still unplaced on the masters owning their slots,
        all masters at once. `retry_down`: also on masters that failed a moment ago."""
        by_master: dict[str, tuple[ClusterNode, list[str]]] = {}
        now = asyncio.get_running_loop().time()
        for channel in channels:
            node = self._owner(channel) if channel in self._unplaced else None
            if node is not None and (retry_down or self._down_until.get(node.name, 0.0) <= now):
                by_master.setdefault(node.name, (node, []))[1].append(channel)
        await asyncio.gather(*(self._place_on(node, channels) for node, channels in by_master.values()))
        if self._unplaced:
            self._misplaced.set()
        else:
            self._misplaced.clear()

    async def _place_on(self, node: ClusterNode, channels: list[str]) -> None:
        try:
            shard = await self._shard(node)
        except TROUBLE as error:
            self._down_until[node.name] = asyncio.get_running_loop().time() + RETRY_MOST
            log.warning("cannot connect to a redis cluster node",
                        extra={"node": node.name, "error": f"{type(error).__name__}: {error}"})
            return
        self._down_until.pop(node.name, None)
        channels = [channel for channel in channels if channel in self._unplaced]  # as of now, after the wait
        self._unplaced.difference_update(channels)
        self._placed.update(dict.fromkeys(channels, node.name))
        await self._send(shard, [(True, channel) for channel in channels])

    async def _send(self, shard: _Shard, commands: list[tuple[bool, str]]) -> None:
        """(Un)subscribe one channel per command, so that each reply, or error, names its
        command; a connection that fails here is lost like one whose reader failed."""
        try:
            await shard.send(commands)
        except TROUBLE as error:
            self._lost(shard, error)

    def _unplace_moved(self) -> None:
        """Channels placed on a master that the slot map no longer names for them."""
        for channel, name in list(self._placed.items()):
            owner = self._owner(channel)
            if owner is None or owner.name != name:
                self._unplace(channel)

    def _close_idle(self) -> None:
        """Drop the connections to masters that hold none of our channels any more."""
        busy = set(self._placed.values())
        for name, shard in list(self._shards.items()):
            if name not in busy and not shard.pending:
                del self._shards[name]
                shard.close()

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
        """The connection to `node`, opened once even when several callers want it at once."""
        shard = self._shards.get(node.name)
        if shard is not None:
            return shard
        opening = self._opening.get(node.name)
        if opening is None:
            opening = self._opening[node.name] = asyncio.ensure_future(self._open(node))
            opening.add_done_callback(lambda _: self._opening.pop(node.name, None))
        return await asyncio.shield(opening)

    async def _open(self, node: ClusterNode) -> _Shard:
        connection = node.connection_class(**{**node.connection_kwargs, "health_check_interval": 0})
        await connection.connect()  # type: ignore[no-untyped-call]
        shard = self._shards[node.name] = _Shard(node.name, connection, self._reply, self._lost)
        return shard

    async def _reply(self, shard: _Shard, reply: list[Any] | ResponseError) -> None:
        """What `shard`'s master sent: a message, the answer to a command, or a channel it
        dropped (its slot moved away)."""
        if isinstance(reply, ResponseError):
            self._refused(shard, reply)
            return
        kind = reply[0]
        if kind == b"smessage":
            await self._on_push({"type": "smessage", "channel": reply[1], "data": reply[2]})
            return
        channel = reply[1].decode() if kind in (b"ssubscribe", b"sunsubscribe") else ""
        asked = (kind == b"ssubscribe", channel)
        if kind == b"sunsubscribe" and (not shard.pending or shard.pending[0] != asked):
            if self._placed.get(channel) == shard.name:  # not asked for: the channel's slot moved away
                self._unplace(channel)
            return
        if not channel or not shard.pending or shard.pending.popleft() != asked:
            self._lost(shard, RedisError(f"a reply out of step with the commands sent: {reply!r}"))
            return
        if kind == b"ssubscribe":
            await self._on_push({"type": "ssubscribe", "channel": reply[1], "data": reply[2]})

    def _refused(self, shard: _Shard, error: ResponseError) -> None:
        if not shard.pending:
            self._lost(shard, error)
            return
        subscribe, channel = shard.pending.popleft()
        log.warning("a redis cluster node refused a room channel command",
                    extra={"node": shard.name, "channel": channel, "error": str(error)})
        if subscribe and self._placed.get(channel) == shard.name:
            self._unplace(channel)  # the keeper refreshes the slot map and tries again

    def _lost(self, shard: _Shard, error: Exception) -> None:
        """Drop `shard` (once) and unplace the channels it carried."""
        if self._shards.get(shard.name) is not shard:
            return
        del self._shards[shard.name]
        shard.close()
        log.error("cannot receive from a redis cluster node", exc_info=not isinstance(error, TROUBLE),
                  extra={"node": shard.name, "error": f"{type(error).__name__}: {error}"})
        for channel, name in list(self._placed.items()):
            if name == shard.name:
                self._unplace(channel)


class _Shard:
    """A connection to one master, with a task that reads what it sends, and the
    (un)subscribe commands sent on it whose reply has not come yet."""

    def __init__(self, name: str, connection: AbstractConnection,
                 on_reply: Callable[[_Shard, list[Any] | ResponseError], Awaitable[None]],
                 on_lost: Callable[[_Shard, Exception], None]) -> None:
        self.name = name
        self.pending: deque[tuple[bool, str]] = deque()  # (subscribe?, channel) in the order sent
        self._connection = connection
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._closing = False
        self._reader = asyncio.create_task(self._read())

    async def send(self, commands: list[tuple[bool, str]]) -> None:
        """SSUBSCRIBE or SUNSUBSCRIBE, one channel each, in one write."""
        if not commands:
            return
        if not self._connection.is_connected:  # never reconnect silently: nothing would read it
            raise RedisConnectionError("the connection to this node was closed")
        self.pending.extend(commands)
        packed = b"".join(hiredis.pack_command(_command(subscribe, channel)) for subscribe, channel in commands)
        await self._connection.send_packed_command(packed, check_health=False)

    def close(self) -> None:
        """Stop reading and close the connection (at once, or, from the reader itself,
        once the reply in hand is handled)."""
        self._closing = True
        if self._reader is not asyncio.current_task():
            self._reader.cancel()

    async def _read(self) -> None:
        try:
            while not self._closing:
                try:
                    reply = await self._connection.read_response(timeout=math.inf, push_request=True)
                except ResponseError as error:  # a refused command; the connection is still in step
                    reply = error
                await self._on_reply(self, reply)
        except Exception as error:
            self._on_lost(self, error)
        finally:
            await self._connection.disconnect()


def _command(subscribe: bool, channel: str) -> tuple[Any, ...]:
    return ("SSUBSCRIBE" if subscribe else "SUNSUBSCRIBE", channel)
