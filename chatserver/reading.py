"""Read state shared by a user's devices: marks that move forward, heard by every
connection of the user and, in a private room, by the room. Knows nothing of Socket.IO or HTTP."""

from __future__ import annotations

from .service import ChatService, Fanout
from .stores.base import Store


class ReadMarks:
    """`read`: a user has read a room up to a `seq`."""

    def __init__(self, store: Store, service: ChatService, fanout: Fanout) -> None:
        self._store = store
        self._service = service
        self._fanout = fanout

    async def read(self, conn_id: str, room: str, seq: int) -> int:
        """Move the user's mark in `room` to `seq` (never back, never past the latest
        message); returns the mark. A mark that moved goes to every connection of the user
        as `read`, and to a private room as `read_receipt`."""
        user, access = await self._service.reader(conn_id, room)
        last_read, moved = await self._store.mark_read(room, user.id, seq)
        if moved:
            await self._fanout.to_user("read", {"room": room, "last_read": last_read}, user.id)
            if access.private:
                await self._fanout.broadcast("read_receipt", {"room": room, "user": user.as_dict(),
                                                              "last_read": last_read}, room)
        return last_read
