"""Moderation: kick, ban and mute, by a room's owners and moderators or by the app's backend.
Knows nothing of Socket.IO or HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from .errors import Forbidden, NotFound
from .membership import Membership
from .models import SYSTEM_USER, Role, User, check_room
from .stores.base import Store
from .webhooks.events import HookRecorder

log = logging.getLogger(__name__)

Action = Literal["kick", "ban", "unban", "mute", "unmute"]
MODERATING: frozenset[Role] = frozenset({"owner", "moderator"})
REASON_OF = {"kick": "kicked", "ban": "banned"}


class RoomAnnouncer(Protocol):
    async def broadcast(self, event: str, payload: Mapping[str, object], room: str, skip: str | None = None) -> None:
        """Deliver `event` to everyone in `room` on every instance."""
        ...


class Moderation:
    """The moderation rules: who may act on whom, and what each action does.

    A room's owners and moderators may act; a moderator not on an owner or another
    moderator, an owner not on another owner, nobody on themselves. The backend may act
    on anyone. Every action is announced to the room as `moderation`. Bans and mutes are
    kept with the time they end, read when they are checked: nothing sweeps them."""

    def __init__(self, store: Store, membership: Membership, room_events: RoomAnnouncer,
                 clock: Callable[[], float] = time.time, hooks: HookRecorder | None = None) -> None:
        self._store = store
        self._membership = membership
        self._room_events = room_events
        self._clock = clock
        self._hooks = hooks

    async def act(self, actor: User | None, room: str, action: Action, user_id: str,
                  seconds: int | None = None, reason: str | None = None) -> dict[str, object]:
        """Do `action` to `user_id` in `room`, as `actor` (None: the app's backend, which
        may act on anyone); returns the `moderation` announcement sent to the room."""
        check_room(room)
        now_ms = int(self._clock() * 1000)
        target = await self._store.access(room, user_id, now_ms)
        if actor is not None:
            await self._check_may_act(actor, room, user_id, target.member.role if target.member else None, now_ms)
        until = now_ms + seconds * 1000 if seconds is not None and action in ("ban", "mute") else None
        by = actor or SYSTEM_USER
        user = target.member.user if target.member else await self._online_user(room, user_id)
        announcement: dict[str, object] = {"room": room, "action": action, "user": user.as_dict(), "by": by.as_dict(),
                                           "until": until}
        if reason is not None:
            announcement["reason"] = reason
        # the `moderation` webhook event is recorded with the action's own step, before
        # the removal a kick or ban causes (which records `member.removed`)
        if action in ("ban", "mute"):
            await self._store.sanction(room, action, user_id, until or 0, announcement)
        elif action in ("unban", "unmute"):
            await self._store.lift(room, "ban" if action == "unban" else "mute", user_id, announcement)
        elif self._hooks is not None:  # a kick changes nothing but the roster
            await self._hooks.record(room, "moderation", announcement)
        if action in ("kick", "ban"):
            if target.private and target.member is not None:  # a private room's member is out for good
                try:
                    await self._membership.remove_member(room, user_id, REASON_OF[action])
                except NotFound:  # removed meanwhile: take out what connections remain
                    await self._membership.take_out(room, user_id, REASON_OF[action])
            else:
                await self._membership.take_out(room, user_id, REASON_OF[action])
        await self._room_events.broadcast("moderation", announcement, room)
        log.info("moderation", extra={"room": room, "action": action, "user": user_id, "by": by.id, "until": until})
        return announcement

    async def _check_may_act(self, actor: User, room: str, user_id: str, target_role: Role | None,
                             now_ms: int) -> None:
        if actor.id == user_id:
            raise Forbidden("you cannot moderate yourself")
        own = await self._store.access(room, actor.id, now_ms)
        role = own.member.role if own.member else None
        if role not in MODERATING:
            raise Forbidden("only the room's owners and moderators may moderate it")
        if target_role == "owner" or (role == "moderator" and target_role == "moderator"):
            raise Forbidden(f"a {role} cannot act on a {target_role}")

    async def _online_user(self, room: str, user_id: str) -> User:
        """The target as the room shows them: online there, or else known by id only."""
        return next((user for user in await self._store.members(room) if user.id == user_id), User(user_id, user_id))
