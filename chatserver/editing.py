"""Messages that change: edits, deletions and reactions, from users and from the app's
backend. Knows nothing of Socket.IO or HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .config import Settings
from .errors import InvalidPayload
from .models import EMOJI_RULE, REACTIONS_MAX, MessageDict, check_room, is_emoji, message_text
from .service import ChatService, Fanout
from .stores.base import Change, ChangeKind, RateLimit, Store

log = logging.getLogger(__name__)


class MessageEditing:
    """Each change is one atomic step of the store, which decides who may make it (the
    author edits; the author, an owner or a moderator deletes; anyone who may send
    reacts) and gives it the room's next `rev`; a change that changed something is then
    delivered to the room as `message_updated`, like a message."""

    def __init__(self, store: Store, service: ChatService, fanout: Fanout, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._service = service
        self._fanout = fanout
        self._settings = settings
        self._clock = clock

    async def edit(self, conn_id: str, room: str, seq: int, text: str) -> MessageDict:
        """The author's new text for message `seq`, under the rules of a message's text."""
        text = message_text(text, self._settings.max_message_length)
        return await self._by_user(conn_id, room, seq, "edit", text=text)

    async def delete(self, conn_id: str, room: str, seq: int) -> MessageDict:
        """Take back message `seq`: its text goes, its reactions too."""
        return await self._by_user(conn_id, room, seq, "delete")

    async def react(self, conn_id: str, room: str, seq: int, emoji: str, on: bool) -> MessageDict:
        """Give (`on`) or take back `emoji` on message `seq`."""
        if not is_emoji(emoji):
            raise InvalidPayload(EMOJI_RULE)
        return await self._by_user(conn_id, room, seq, "react", emoji=emoji, on=on)

    async def backend_edit(self, room: str, seq: int, text: str) -> MessageDict:
        """The app's backend edits any message."""
        check_room(room)
        text = message_text(text, self._settings.max_message_length)
        return await self._change(Change(room, seq, "edit", None, self._now(), text=text), None)

    async def backend_delete(self, room: str, seq: int) -> MessageDict:
        """The app's backend deletes any message."""
        check_room(room)
        return await self._change(Change(room, seq, "delete", None, self._now()), None)

    async def _by_user(self, conn_id: str, room: str, seq: int, kind: ChangeKind, *, text: str = "",
                       emoji: str = "", on: bool = True) -> MessageDict:
        # As for a message, nothing waits before the store is called for a joined connection:
        # a client's pipelined change stays behind its message.
        conn = await self._service.joined(conn_id, room, "changing messages in", refuse_banned=True)
        change = Change(room, seq, kind, conn.user.id, self._now(), text=text, emoji=emoji, on=on)
        return await self._change(change, self._service.rate_of(conn.user))

    async def _change(self, change: Change, rate: RateLimit | None) -> MessageDict:
        changed = await self._store.change(change, rate=rate, max_reactions=REACTIONS_MAX)
        if changed.changed:
            await self._fanout.local_broadcast("message_updated", changed.message, change.room)
            log.info("message changed", extra={"room": change.room, "seq": change.seq, "change": change.kind,
                                                "user": change.actor, "rev": changed.message["rev"]})
        return changed.message

    def _now(self) -> int:
        return int(self._clock() * 1000)
