"""`MemoryRooms`: the `RoomStore` half of `MemoryStore`: private rooms, rosters, sanctions."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace

from ..errors import Conflict
from ..models import ROLES, Member, Role, User
from ..webhooks.events import HookRecorder, member_added, member_removed
from .base import Access, PrivateRoom, ReadState, RoomInfo, RoomSummary, Sanction


def roster_order(member: Member) -> tuple[int, str, str]:
    """Owners first, then moderators, then members; each by name, then id."""
    return ROLES.index(member.role), member.user.name, member.user.id


class MemoryRooms:
    """Who may use which room, in process memory. `MemoryStore` supplies `_latest` and
    `_read_state`, and `_hooks`, where each change to a roster and each moderation is
    recorded as a webhook event when webhooks are on."""

    _hooks: HookRecorder | None = None

    def __init__(self) -> None:
        self._private: dict[str, PrivateRoom] = {}
        self._invites: dict[str, str] = {}
        self._rosters: dict[str, dict[str, Member]] = {}
        self._rooms_of_user: dict[str, set[str]] = {}
        self._sanctions: dict[tuple[str, Sanction, str], int] = {}  # (room, kind, user) -> until ms, 0 for good

    def _latest(self, room: str) -> tuple[int, int]:
        """The room's latest `seq` and the `ts` of its newest message (0, 0 for none)."""
        raise NotImplementedError

    def _read_state(self, room: str, user_id: str) -> ReadState:
        """Where `user_id`'s reading of `room` stands."""
        raise NotImplementedError

    async def create_private_room(self, room: PrivateRoom, owner: Member) -> None:
        self._private[room.room] = room
        if room.invite:
            self._invites[room.invite] = room.room
        self._enrol(room.room, owner)
        await self._record_added(room.room, owner)

    async def put_private_room(self, room: str, title: str | None, members: list[Member]) -> tuple[bool, list[Member]]:
        existing = self._private.get(room)
        if existing is None and self._latest(room)[0] > 0:
            raise Conflict("a public room with history cannot become private")
        if existing is None:
            self._private[room] = PrivateRoom(room=room, invite="", capacity=0, title=title)
        elif title is not None:
            self._private[room] = replace(existing, title=title)
        roster = self._rosters.get(room, {})
        added = [member for member in members if member.user.id not in roster]
        for member in members:
            self._enrol(room, member)
        for member in added:
            await self._record_added(room, member)
        return existing is None, added

    async def room_info(self, room: str) -> RoomInfo:
        return self._info(room)

    def _info(self, room: str) -> RoomInfo:
        private = self._private.get(room)
        return RoomInfo(room=room, private=private is not None, title=private.title if private else None)

    async def access(self, room: str, user_id: str, now_ms: int) -> Access:
        return Access(private=room in self._private, member=self._rosters.get(room, {}).get(user_id),
                      banned_until=self._in_force(room, "ban", user_id, now_ms),
                      muted_until=self._in_force(room, "mute", user_id, now_ms))

    async def room_for_invite(self, invite: str) -> str | None:
        return self._invites.get(invite)

    async def admit(self, room: str, member: Member, invite: str) -> bool:
        private = self._private.get(room)
        if private is None or not private.invite:
            return False
        roster = self._rosters.get(room, {})
        if member.user.id in roster:
            return True
        if not secrets.compare_digest(invite.encode(), private.invite.encode()) or len(roster) >= private.capacity:
            return False
        self._enrol(room, member)
        await self._record_added(room, member)
        return True

    async def roster(self, room: str) -> list[Member]:
        return sorted(self._rosters.get(room, {}).values(), key=roster_order)

    async def put_member(self, room: str, user_id: str, name: str | None, role: Role | None) -> tuple[Member, bool]:
        existing = self._rosters.get(room, {}).get(user_id)
        if existing is None:
            member = Member(User(user_id, name or user_id), role or "member")
        else:
            member = Member(User(user_id, name or existing.user.name), role or existing.role)
        self._enrol(room, member)
        if existing is None:
            await self._record_added(room, member)
        return member, existing is None

    async def remove_member(self, room: str, user_id: str, reason: str = "removed") -> Member | None:
        member = self._rosters.get(room, {}).pop(user_id, None)
        if member is not None and self._hooks is not None:
            await self._hooks.record(room, "member.removed", member_removed(room, member.user, reason))
        rooms = self._rooms_of_user.get(user_id)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of_user[user_id]
        return member

    async def rooms_of(self, user_id: str) -> list[RoomSummary]:
        return [self._summary(room, user_id, self._rosters[room][user_id].role)
                for room in self._rooms_of_user.get(user_id, ())]

    def _summary(self, room: str, user_id: str, role: Role | None) -> RoomSummary:
        seq, last_ts = self._latest(room)
        return RoomSummary(info=self._info(room), role=role, seq=seq, last_ts=last_ts,
                           read=self._read_state(room, user_id))

    async def sanction(self, room: str, kind: Sanction, user_id: str, until_ms: int,
                       announcement: Mapping[str, object] | None = None) -> None:
        self._sanctions[(room, kind, user_id)] = until_ms
        await self._record_moderation(room, announcement)

    async def lift(self, room: str, kind: Sanction, user_id: str,
                   announcement: Mapping[str, object] | None = None) -> bool:
        lifted = self._sanctions.pop((room, kind, user_id), None) is not None
        await self._record_moderation(room, announcement)
        return lifted

    async def _record_added(self, room: str, member: Member) -> None:
        if self._hooks is not None:
            await self._hooks.record(room, "member.added", member_added(room, member))

    async def _record_moderation(self, room: str, announcement: Mapping[str, object] | None) -> None:
        if self._hooks is not None and announcement is not None:
            await self._hooks.record(room, "moderation", announcement)

    def _in_force(self, room: str, kind: Sanction, user_id: str, now_ms: int) -> int | None:
        """A sanction's end (0: for good) while it holds; an expired one is forgotten."""
        until = self._sanctions.get((room, kind, user_id))
        if until is not None and 0 < until <= now_ms:
            del self._sanctions[(room, kind, user_id)]
            return None
        return until

    def _enrol(self, room: str, member: Member) -> None:
        self._rosters.setdefault(room, {})[member.user.id] = member
        self._rooms_of_user.setdefault(member.user.id, set()).add(room)
