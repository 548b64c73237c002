"""The service's `Fanout` and the stores' `RoomPublisher`, through python-socketio's client manager
(in-process, or Redis pub/sub)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import socketio

from ..backplane.publish import PublishFrame
from ..metrics import Metrics

if TYPE_CHECKING:
    from .managers import ChatRedisManager

NAMESPACE = "/chat"
# Socket.IO also puts every connection in a room named by its sid; prefixing chat
# rooms keeps a room id from ever addressing someone's private connection room.
ROOM_PREFIX = "room:"
# Every connection is also in the room of its user, which events addressed to the user go to.
USER_PREFIX = "user:"

# (user id, event, its payload, the user's connections on this instance it reached)
UserEventHandler = Callable[[str, str, object, list[str]], None]


def chat_room(manager_room: str) -> str | None:
    """The chat room a Socket.IO room stands for; None for any other room."""
    return manager_room[len(ROOM_PREFIX):] if manager_room.startswith(ROOM_PREFIX) else None


def user_room(manager_room: str) -> str | None:
    """The user whose room a Socket.IO room is; None for any other room."""
    return manager_room[len(USER_PREFIX):] if manager_room.startswith(USER_PREFIX) else None


class SocketIOFanout:
    """The service's `Fanout`, backed by an `AsyncServer`."""

    def __init__(self, sio: socketio.AsyncServer, metrics: Metrics) -> None:
        self._sio = sio
        self._metrics = metrics

    async def enter(self, conn: str, room: str) -> None:
        # The manager keeps the name for each connection in the room: one copy for all of them.
        await self._sio.enter_room(conn, sys.intern(ROOM_PREFIX + room), namespace=NAMESPACE)

    async def exit(self, conn: str, room: str) -> None:
        await self._sio.leave_room(conn, ROOM_PREFIX + room, namespace=NAMESPACE)

    def follow(self, room: str, rev: int) -> None:
        self._sio.manager.follow(NAMESPACE, ROOM_PREFIX + room, rev)

    async def broadcast(self, event: str, payload: Mapping[str, object], room: str, skip: str | None = None) -> None:
        await self._sio.emit(event, payload, to=ROOM_PREFIX + room, skip_sid=skip, namespace=NAMESPACE)

    async def local_broadcast(self, event: str, payload: Mapping[str, object], room: str) -> None:
        await self._sio.manager.emit(event, payload, NAMESPACE, room=ROOM_PREFIX + room, ignore_queue=True)
        self._metrics.messages_out.inc()

    async def enter_user(self, conn: str, user_id: str) -> None:
        await self._sio.enter_room(conn, USER_PREFIX + user_id, namespace=NAMESPACE)

    async def to_user(self, event: str, payload: Mapping[str, object], user_id: str, skip: str | None = None) -> None:
        await self._sio.emit(event, payload, to=USER_PREFIX + user_id, skip_sid=skip, namespace=NAMESPACE)

    async def to_user_here(self, event: str, payload: Mapping[str, object], user_id: str,
                           skip: str | None = None) -> None:
        here = self._sio.manager.rooms.get(NAMESPACE, {}).get(USER_PREFIX + user_id, ())
        if any(sid != skip for sid in here):  # a sender's read notice mostly has nobody else to reach
            await self._sio.manager.emit(event, payload, NAMESPACE, room=USER_PREFIX + user_id, skip_sid=skip,
                                         ignore_queue=True)

    async def to_connection(self, event: str, payload: Mapping[str, object], conn: str) -> None:
        await self._sio.manager.emit(event, payload, NAMESPACE, room=conn, ignore_queue=True)

    async def close(self, conn: str) -> None:
        await self._sio.disconnect(conn, namespace=NAMESPACE, ignore_queue=True)

    def hear_users(self, handler: UserEventHandler) -> None:
        manager = self._sio.manager
        manager.user_events = (*manager.user_events, handler)


class SocketIOPublisher:
    """The stores' `RoomPublisher`: a room event as python-socketio's Redis manager on the
    other instances reads it, on the room's channel (`ChatRedisManager.frame`)."""

    def __init__(self, manager: ChatRedisManager) -> None:
        self._manager = manager

    def frame(self, room: str, event: str) -> PublishFrame:
        return self._manager.frame(event, NAMESPACE, ROOM_PREFIX + room)

    def user_frame(self, user_id: str, event: str) -> PublishFrame | None:
        if self._manager.spread:  # the user's channel lives in another slot than the room's script
            return None
        return self._manager.frame(event, NAMESPACE, USER_PREFIX + user_id)
