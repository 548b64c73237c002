"""Delivery through python-socketio's client manager (in-process, or Redis pub/sub)."""

from __future__ import annotations

import sys
from collections.abc import Mapping

import socketio

from .metrics import Metrics
from .models import MessageDict
from .namespace import NAMESPACE
from .stores.base import Announcement

# Socket.IO also puts every connection in a room named by its sid; prefixing chat
# rooms keeps a room id from ever addressing someone's private connection room.
ROOM_PREFIX = "room:"


def chat_room(manager_room: str) -> str | None:
    """The chat room a Socket.IO room stands for; None for a connection's own room."""
    return manager_room[len(ROOM_PREFIX):] if manager_room.startswith(ROOM_PREFIX) else None


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

    async def emit(self, event: str, payload: Mapping[str, object], room: str, skip: str | None = None) -> None:
        await self._sio.emit(event, payload, to=ROOM_PREFIX + room, skip_sid=skip, namespace=NAMESPACE)

    def follow(self, room: str, seq: int) -> None:
        self._sio.manager.follow(NAMESPACE, ROOM_PREFIX + room, seq)

    def announcement(self, room: str) -> Announcement | None:
        announcement: Announcement | None = self._sio.manager.announcement("message", NAMESPACE, ROOM_PREFIX + room)
        return announcement

    async def emit_message(self, message: MessageDict, room: str, *, announced: bool) -> None:
        if announced:
            await self._sio.manager.emit("message", message, NAMESPACE, room=ROOM_PREFIX + room, ignore_queue=True)
        else:
            await self.emit("message", message, room)
        self._metrics.messages_out.inc()
