"""Client managers that deliver through `GuardedEngineServer.deliver`, and keep order and rooms."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import socketio
from redis.exceptions import RedisClusterException, RedisError

from ..backplane.channels import Channels
from ..backplane.clients import COMMAND_TIMEOUT, connect, connect_each_master
from ..backplane.publish import PublishFrame
from ..backplane.shards import Push, ShardSubscriber
from ..backplane.topology import Topology
from ..models import compact_json
from .fanout import chat_room
from .ordering import SeqOrder
from .room_channels import ChannelCommands, RoomChannels

if TYPE_CHECKING:
    from .server import ChatSocketServer

log = logging.getLogger(__name__)

PUBLISH_CONNECTIONS = 32  # Redis connections for the pub/sub manager's publishes (one more listens)
ENVELOPES_CACHED = 10_000  # rooms whose pub/sub envelope is kept built
INBOX_SIZE = 1_000  # pub/sub messages received on a Cluster's masters, waiting for python-socketio


class _DirectEmit:
    """Emits without an acknowledgement, to a room or one connection, go through
    `GuardedEngineServer.deliver`: one encode, no task or queue hop per recipient."""

    server: ChatSocketServer
    get_participants: Any

    def _deliver(self, event: str, each_args: list[list[Any]], namespace: str, room: str | None,
                 skip_sid: str | list[str] | None = None) -> None:
        """Deliver `event` once per argument list in `each_args`, in order, in this step;
        recipients past their backlog bound are cut off afterwards."""
        if not each_args:  # all held back for order
            return
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        eio_sids = [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip]
        if not eio_sids:
            return
        over: list[str] = []
        for args in each_args:
            packet = self.server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, *args])
            over += self.server.eio.deliver(eio_sids, packet.encode())
        self.server.eio.cut_off(over)


class _IndexedRooms:
    """Keeps each connection's rooms at hand, and answers for its room of its own.

    python-socketio's manager finds a connection's rooms by scanning every room of the
    namespace, after copying the whole mapping, and every connection has a room of its
    own: a disconnect cost O(connections), so 10,000 clients dropping at once (a network
    blip, a balancer restart) cost O(n^2) and stalled the instance (py-spy, bench/
    connections scenario).

    That room of its own (named by the sid, for emits to one connection) is a two-way dict
    per connection there, about 0.5 KiB; here it is not stored, and the `None` room, which
    maps every connected sid to its Engine.IO sid, answers for it. A connection's named
    rooms are a tuple (a connection is in a few; an empty set alone takes 0.2 KiB).
    """

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[str, dict[str, tuple[str, ...]]] = {}  # namespace -> sid -> named rooms

    def basic_enter_room(self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None) -> None:
        if room == sid:  # its own room: see `get_participants`
            return
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        if room is not None:
            of_namespace = self._rooms_of.setdefault(namespace, {})
            rooms = of_namespace.get(sid, ())
            if room not in rooms:
                of_namespace[sid] = (*rooms, room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        of_namespace = self._rooms_of.get(namespace, {})
        rooms = of_namespace.get(sid, ())
        if room in rooms:
            rest = tuple(other for other in rooms if other != room)
            if rest:
                of_namespace[sid] = rest
            else:
                del of_namespace[sid]

    def get_participants(self, namespace: str, room: Any) -> Iterator[tuple[str, str]]:
        """As python-socketio's: (sid, eio_sid) of each connection in `room`, or in any of
        several rooms; a sid names the room of that connection alone."""
        in_namespace = self.rooms.get(namespace, {})
        if room is None or isinstance(room, str):
            members = in_namespace.get(room)
            if members is not None:  # the common case: one named room
                yield from members._fwdm.copy().items()
                return
        participants: dict[str, str] = {}
        for name in ((room,) if room is None or isinstance(room, str) else room):
            members = in_namespace.get(name)
            if members is not None:
                participants.update(members._fwdm)
            elif name is not None and name in in_namespace.get(None, ()):
                participants[name] = in_namespace[None][name]
        yield from participants.items()

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        """As python-socketio's: the connection's own room (named by its sid) and the rooms it entered."""
        own = [sid] if sid in self.rooms.get(namespace, {}).get(None, ()) else []
        return own + list(self._rooms_of.get(namespace, {}).get(sid, ()))

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio 5.18.1's, with the scan replaced by the index.
        for room in self._rooms_of.get(namespace, {}).get(sid, ()):
            self.basic_leave_room(sid, namespace, room)
        self.basic_leave_room(sid, namespace, None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]


class ChatManager(_DirectEmit, _IndexedRooms, socketio.AsyncManager):  # type: ignore[misc]
    """The in-process client manager (embedded mode), delivering through `deliver`."""

    def follow(self, namespace: str, room: str, seq: int) -> None:
        """Nothing to do: one instance delivers in the order it stores."""

    async def emit(self, event: str, data: Any, namespace: str, room: str | None = None,
                   skip_sid: str | list[str] | None = None, callback: Any = None, to: str | None = None,
                   **kwargs: Any) -> None:
        room = to or room
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
        else:
            self._deliver(event, [_arguments(data)], namespace, room, skip_sid)


class ChatRedisManager(_DirectEmit, _IndexedRooms, socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis pub/sub manager, with a channel per room, delivering its
    local share through `deliver`.

    An emit to a room goes out on that room's channel (`Channels.room`), which an instance
    hears only while one of its connections is in the room (`RoomChannels`); on Redis 7
    and later over sharded pub/sub (unless `sharded` is false), so a cluster spreads rooms
    over its shards: there each room channel is heard on its own master (`ShardSubscriber`).
    Everything else python-socketio publishes (emits to one connection or to everyone,
    disconnecting a connection held elsewhere) stays on the shared channel every instance
    hears.

    Events named `ordered_event` carry one object with a `seq`; they go out to this
    instance's connections in `seq` order per room (see `SeqOrder`), whether they come
    from this instance's own appends or from other instances.
    """

    def __init__(self, topology: Topology, *, channels: Channels, ordered_event: str, channel_linger: float,
                 sharded: bool, gap_wait: float = 1.0, **options: Any) -> None:
        super().__init__(topology.url, channel=channels.shared, **options)
        self._topology = topology
        self._channels = channels
        self._ordered_event = ordered_event
        self._order: SeqOrder[tuple[str, str], list[Any]] = SeqOrder(self._release_late, gap_wait=gap_wait)
        self._room_channels = RoomChannels(linger=channel_linger, confirm_timeout=COMMAND_TIMEOUT)
        self._may_shard = sharded
        self._sharded = sharded  # until the listener learns what the Redis it reaches can do
        # where rooms are spread over a Cluster's masters, each room channel is heard on its own
        self._cluster = connect_each_master(topology.cluster, PUBLISH_CONNECTIONS) \
            if sharded and topology.traits.spread and topology.cluster else None
        self._shards: ShardSubscriber | None = None
        self._commands: ChannelCommands | None = None  # how the listener (un)subscribes room channels
        self._listening = asyncio.Event()

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            self.server.start_background_task(self._room_channels.write, lambda: self._commands, self._listening)

    def frame(self, event: str, namespace: str, room: str) -> PublishFrame:
        """The pub/sub message python-socketio's managers on the other instances act on,
        with the event's one argument left out, for a store to publish in the same step
        as storing it. This instance delivers its own share with `ignore_queue=True`."""
        channel = self._room_channel(room)
        command = self._publish_command if channel is not None else "PUBLISH"
        return PublishFrame(channel=channel or self.channel, command=command,
                            prefix=self._envelope(event, namespace, room), suffix="]}")

    def _room_channel(self, room: str) -> str | None:
        """The channel of a chat room's Socket.IO room; None for a connection's own room."""
        chat = chat_room(room)
        return None if chat is None else self._channels.room(chat)

    @functools.lru_cache(maxsize=ENVELOPES_CACHED)  # noqa: B019 (one manager per process, for its lifetime)
    def _envelope(self, event: str, namespace: str, room: str) -> str:
        """An emit's pub/sub message up to its `data` list, the same for every message of a room."""
        envelope = json.dumps({"method": "emit", "event": event, "binary": False, "namespace": namespace,
                               "room": room, "skip_sid": None, "callback": None, "host_id": self.host_id},
                              separators=(",", ":"))
        return envelope[:-1] + ',"data":['

    def follow(self, namespace: str, room: str, seq: int) -> None:
        """A join read that `room` is at `seq`: its next ordered event is `seq` + 1."""
        self._order.follow((namespace, room), seq)

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: str | None = None,
                   skip_sid: str | list[str] | None = None, callback: Any = None, to: str | None = None,
                   **kwargs: Any) -> None:
        namespace = namespace or "/"
        if kwargs.get("ignore_queue") and callback is None:
            self._deliver_local(event, _arguments(data), namespace, to or room, skip_sid)
        else:
            await super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback,
                               to=to, **kwargs)

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: str | None = None) -> None:
        """As python-socketio's; a local connection entering a room also makes sure this
        instance hears the room's channel before the call returns."""
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = self._room_channel(room)
        if channel is not None and self.is_connected(sid, namespace):
            await self._room_channels.want(channel)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        channel = self._room_channel(room) if room is not None else None
        if channel is not None and not self._has_local(namespace, room):
            self._room_channels.release(channel, lambda: self._has_local(namespace, room))

    def _has_local(self, namespace: str, room: str | None) -> bool:
        return room in self.rooms.get(namespace, ())

    @property
    def _publish_command(self) -> str:
        return "SPUBLISH" if self._sharded else "PUBLISH"

    async def _publish(self, data: dict[str, Any]) -> None:
        """Emits to a room go to the room's channel; the rest as python-socketio sends them."""
        room = data.get("room") if data.get("method") == "emit" else None
        channel = self._room_channel(room) if isinstance(room, str) else None
        if channel is None:
            await super()._publish(data)
            return
        message = compact_json(data)
        try:
            if self._shards is not None and self._sharded:
                await self._shards.publish(channel, message)
            else:
                await self.redis.execute_command(self._publish_command, channel, message)  # type: ignore[no-untyped-call]
        except (RedisError, RedisClusterException, OSError) as error:
            log.error("cannot publish to redis",
                      extra={"channel": channel, "error": f"{type(error).__name__}: {error}"})

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        namespace = message.get("namespace") or "/"
        if message.get("callback") is not None or message.get("binary") or not isinstance(message["data"], list):
            await super()._handle_emit(message)
        else:
            self._deliver_local(message["event"], message["data"], namespace, message.get("room"),
                                message.get("skip_sid"))

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
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
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

    def _deliver_local(self, event: str, args: list[Any], namespace: str, room: str | None,
                       skip_sid: str | list[str] | None) -> None:
        seq = _seq_of(args) if event == self._ordered_event else None
        ready = [args] if seq is None or room is None else self._order.arrive((namespace, room), seq, args)
        self._deliver(event, ready, namespace, room, skip_sid)

    def _release_late(self, key: tuple[str, str], ready: list[list[Any]]) -> None:
        namespace, room = key
        self._deliver(self._ordered_event, ready, namespace, room)


def _seq_of(args: list[Any]) -> int | None:
    """The `seq` of an event whose one argument is an object holding an integer `seq`."""
    if len(args) == 1 and isinstance(args[0], dict) and type(args[0].get("seq")) is int:
        seq: int = args[0]["seq"]
        return seq
    return None


def _arguments(data: Any) -> list[Any]:
    """An emit's `data` as the event's argument list, as python-socketio reads it."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]
