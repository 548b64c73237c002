"""Rooms the app manages: private rooms with members the backend names, roles in any room,
and the list of a user's rooms. Knows nothing of Socket.IO or HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .errors import NotFound
from .models import Member, Role, User, check_room
from .stores.base import RoomInfo, RoomSummary, Store

log = logging.getLogger(__name__)


class UserDelivery(Protocol):
    async def to_user(self, event: str, payload: Mapping[str, object], user_id: str) -> None:
        """Deliver `event` to every connection of the user, on every instance."""
        ...


@dataclass(frozen=True, slots=True)
class RosterEntry:
    member: Member
    online: bool


class Membership:
    """Who belongs to which room, as the app's backend says. A user who becomes a member
    hears `room_added`; one who loses a private room hears `removed`, and every instance
    takes that user's connections out of the room at once (`ChatService` hears it).
    The store records each change to a roster as a webhook event, when webhooks are on."""

    def __init__(self, store: Store, users: UserDelivery) -> None:
        self._store = store
        self._users = users

    async def put_private_room(self, room: str, title: str | None, members: list[Member]) -> tuple[bool, RoomInfo]:
        """Create the private room `room` with `members`, or update its title and add or
        update those members; returns whether it was created, and the room."""
        check_room(room)
        created, added = await self._store.put_private_room(room, title, members)
        info = await self._store.room_info(room)
        for member in added:
            await self._announce_added(info, member)
        log.info("private room put", extra={"room": room, "new_room": created, "added": len(added)})
        return created, info

    async def roster(self, room: str) -> list[RosterEntry]:
        """The room's roster, each entry with whether that user is online in the room."""
        check_room(room)
        online = {user.id for user in await self._store.members(room)}
        return [RosterEntry(member, member.user.id in online) for member in await self._store.roster(room)]

    async def put_member(self, room: str, user_id: str, name: str | None, role: Role | None) -> Member:
        """Add a member (or, in a public room, a role) or change one; a new one hears `room_added`."""
        check_room(room)
        member, new = await self._store.put_member(room, user_id, name, role)
        if new:
            await self._announce_added(await self._store.room_info(room), member)
        log.info("member put", extra={"room": room, "user": user_id, "role": member.role, "new": new})
        return member

    async def remove_member(self, room: str, user_id: str, reason: str = "removed") -> Member:
        """Take a user off the roster: a private room's member loses the room (`removed`,
        on every instance), a public room's loses the role. `not_found` for no entry."""
        check_room(room)
        member = await self._store.remove_member(room, user_id, reason)
        if member is None:
            raise NotFound(f"{user_id} is not on the roster of {room}")
        if (await self._store.room_info(room)).private:
            await self.take_out(room, user_id, reason)
        log.info("member removed", extra={"room": room, "user": user_id, "reason": reason})
        return member

    async def take_out(self, room: str, user_id: str, reason: str) -> None:
        """Every connection of the user leaves `room` now, on every instance, told why."""
        await self._users.to_user("removed", {"room": room, "reason": reason}, user_id)

    async def rooms_of(self, user: User) -> list[RoomSummary]:
        """The user's rooms, the one with the most recent message first."""
        summaries = await self._store.rooms_of(user.id)
        return sorted(summaries, key=lambda summary: (-summary.last_ts, -summary.seq, summary.info.room))

    async def _announce_added(self, info: RoomInfo, member: Member) -> None:
        await self._users.to_user("room_added", {"room": info.room, "title": info.title, "private": info.private,
                                                 "role": member.role}, member.user.id)

