"""Client managers that deliver through `GuardedEngineServer.deliver`, and keep order and rooms."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import socketio
from redis.exceptions import RedisClusterException, RedisError

from ..backplane.channels import Channels
from ..backplane.clients import COMMAND_TIMEOUT, connect_each_master
from ..backplane.publish import PublishFrame
from ..backplane.shards import ShardSubscriber
from ..backplane.topology import Topology
from ..models import compact_json
from .fanout import chat_room, user_room
from .listener import PUBLISH_CONNECTIONS, RoomChannelListener
from .ordering import SeqOrder
from .room_channels import ChannelCommands, RoomChannels
from .rooms import DirectEmit, IndexedRooms

log = logging.getLogger(__name__)
ENVELOPES_CACHED = 10_000  # rooms whose pub/sub envelope is kept built


class ChatManager(DirectEmit, IndexedRooms, socketio.AsyncManager):  # type: ignore[misc]
    """The in-process client manager (embedded mode), delivering through `deliver`."""

    def follow(self, namespace: str, room: str, rev: int) -> None:
        """Nothing to do: one instance delivers in the order it stores."""

    async def emit(self, event: str, data: Any, namespace: str, room: str | None = None,
                   skip_sid: str | list[str] | None = None, callback: Any = None, to: str | None = None,
                   **kwargs: Any) -> None:
        room = to or room
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
        else:
            self._deliver(event, [_arguments(data)], namespace, room, skip_sid)


class ChatRedisManager(DirectEmit, IndexedRooms, RoomChannelListener, socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis pub/sub manager, with a channel per room, delivering its
    local share through `deliver`.

    An emit to a room goes out on that room's channel (`Channels.room`), which an instance
    hears only while one of its connections is in the room (`RoomChannels`); on Redis 7
    and later over sharded pub/sub (unless `sharded` is false), so a cluster spreads rooms
    over its shards: there each room channel is heard on its own master (`ShardSubscriber`).
    Everything else python-socketio publishes (emits to one connection or to everyone,
    disconnecting a connection held elsewhere) stays on the shared channel every instance
    hears.

    Events named in `ordered_events` carry one object with a `rev`, the room's event
    counter; they go out to this instance's connections in `rev` order per room (see
    `SeqOrder`), whether they come from this instance's own steps or from other instances.
    """

    def __init__(self, topology: Topology, *, channels: Channels, ordered_events: frozenset[str],
                 channel_linger: float, sharded: bool, gap_wait: float = 1.0, **options: Any) -> None:
        super().__init__(topology.url, channel=channels.shared, **options)
        self._topology = topology
        self._channels = channels
        self._ordered_events = ordered_events
        self._order: SeqOrder[tuple[str, str], tuple[str, list[Any]]] = SeqOrder(self._release_late,
                                                                                  gap_wait=gap_wait)
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

    @property
    def spread(self) -> bool:
        """Whether Redis spreads keys and channels over a Cluster's nodes."""
        return self._topology.traits.spread

    def frame(self, event: str, namespace: str, room: str) -> PublishFrame:
        """The pub/sub message python-socketio's managers on the other instances act on,
        with the event's one argument left out, for a store to publish in the same step
        as storing it. This instance delivers its own share with `ignore_queue=True`."""
        channel = self._room_channel(room)
        command = self._publish_command if channel is not None else "PUBLISH"
        return PublishFrame(channel=channel or self.channel, command=command,
                            prefix=self._envelope(event, namespace, room), suffix="]}")

    @functools.lru_cache(maxsize=ENVELOPES_CACHED)  # noqa: B019 (one manager per process, for its lifetime)
    def _room_channel(self, room: str) -> str | None:
        """The channel of a chat room's or a user's Socket.IO room; None for a connection's own room."""
        chat = chat_room(room)
        if chat is not None:
            return self._channels.room(chat)
        user = user_room(room)
        return None if user is None else self._channels.user(user)

    @functools.lru_cache(maxsize=ENVELOPES_CACHED)  # noqa: B019 (one manager per process, for its lifetime)
    def _envelope(self, event: str, namespace: str, room: str) -> str:
        """An emit's pub/sub message up to its `data` list, the same for every message of a room."""
        envelope = json.dumps({"method": "emit", "event": event, "binary": False, "namespace": namespace,
                               "room": room, "skip_sid": None, "callback": None, "host_id": self.host_id},
                              separators=(",", ":"))
        return envelope[:-1] + ',"data":['

    def follow(self, namespace: str, room: str, rev: int) -> None:
        """A join read that `room` is at `rev`: its next ordered event is `rev` + 1."""
        self._order.follow((namespace, room), rev)

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
        # pre-connected: a connection enters its user's room while its connect handler runs
        if channel is not None and (self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace)):
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

    def _deliver_local(self, event: str, args: list[Any], namespace: str, room: str | None,
                       skip_sid: str | list[str] | None) -> None:
        rev = _rev_of(args) if event in self._ordered_events else None
        if rev is None or room is None:
            self._deliver(event, [args], namespace, room, skip_sid)
        else:
            self._deliver_in_turn(self._order.arrive((namespace, room), rev, (event, args)), namespace, room)

    def _deliver_in_turn(self, ready: list[tuple[str, list[Any]]], namespace: str, room: str) -> None:
        """Deliver ordered events in the order given, each run of one event name in one step."""
        if len(ready) == 1:  # the common case: the next in line, alone
            event, args = ready[0]
            self._deliver(event, [args], namespace, room)
            return
        start = 0
        for end in range(1, len(ready) + 1):
            if end == len(ready) or ready[end][0] != ready[start][0]:
                self._deliver(ready[start][0], [args for _, args in ready[start:end]], namespace, room)
                start = end

    def _release_late(self, key: tuple[str, str], ready: list[tuple[str, list[Any]]]) -> None:
        namespace, room = key
        self._deliver_in_turn(ready, namespace, room)


def _rev_of(args: list[Any]) -> int | None:
    """The `rev` of an event whose one argument is an object holding an integer `rev`."""
    if len(args) == 1 and isinstance(args[0], dict) and type(args[0].get("rev")) is int:
        rev: int = args[0]["rev"]
        return rev
    return None


def _arguments(data: Any) -> list[Any]:
    """An emit's `data` as the event's argument list, as python-socketio reads it."""
    if isinstance(data, tuple):
        return list(data)
    return [] if data is None else [data]
