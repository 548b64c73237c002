"""`RedisRooms`: the `RoomStore` half of `RedisStore`: private rooms, rosters and sanctions,
each room's in its slot; each user's index of rooms in the user's slot, updated beside."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import Conflict
from ..models import Member, Role, User, compact_json
from ..webhooks.events import HOLE, HookEvent, body_around, event_body, member_added, new_hook_id
from . import redis_scripts as lua
from .base import UNREAD_MAX, Access, PrivateRoom, ReadState, RoomInfo, RoomSummary, Sanction
from .memory_rooms import roster_order
from .redis_hooks import NO_EVENT_ARGS, RedisHookQueue
from .redis_presence import RedisPresence

ADMITTED_NOW = 2


class RedisRooms(RedisPresence):
    """Who may use which room, in Redis. A roster entry is member JSON; a private room made
    before rosters keeps its members in a set, read as `member`s and moved to the roster
    when one of them is changed. With `_hooks` (set by `RedisStore`), each change to a
    roster and each sanction records its webhook event in the same script or MULTI."""

    _hooks: RedisHookQueue | None

    def _init_rooms(self) -> None:
        self._admit = self._script(lua.ADMIT)
        self._put_private_room = self._script(lua.PUT_PRIVATE_ROOM)
        self._put_member = self._script(lua.PUT_MEMBER)
        self._remove_member = self._script(lua.REMOVE_MEMBER)
        self._read_state = self._script(lua.READ_STATE)

    def _roster_keys(self, room: str) -> list[str]:
        keys = self._keys.room(room)
        return [keys.private, keys.roster, keys.members]

    async def create_private_room(self, room: PrivateRoom, owner: Member) -> None:
        keys = self._keys.room(room.room)
        async with self._available():
            async with self._redis.pipeline(transaction=True) as tx:
                tx.hset(keys.private, mapping={"invite": room.invite, "capacity": room.capacity})
                if room.title is not None:
                    tx.hset(keys.private, "title", room.title)
                tx.hset(keys.roster, owner.user.id, _member_json(owner))
                added = self._added(room.room, owner)
                await self._record_in(tx, added)
                await tx.execute()
            self._recorded(room.room, added)
            # the invite after the room (another slot): nobody holds the invite before it is set
            await self._beside(self._redis.set(self._keys.invite(room.invite), room.room),
                               self._redis.sadd(self._keys.user(owner.user.id).rooms, room.room))

    async def put_private_room(self, room: str, title: str | None, members: list[Member]) -> tuple[bool, list[Member]]:
        ts = self._hooks.now_ms() if self._hooks else 0
        each: list[str | int] = []
        for member in members:
            event_id = new_hook_id() if self._hooks else ""
            body = event_body(event_id, "member.added", ts, member_added(room, member)) if event_id else ""
            each += [member.user.id, _member_json(member), event_id, body]
        keys = [*self._roster_keys(room), self._keys.room(room).log, *self._hook_keys(room)]
        async with self._available():
            result = await self._put_private_room(keys=keys, args=["1" if title is not None else "", title or "",
                                                                   room, ts, *each])
            if int(result[0]) < 0:
                raise Conflict("a public room with history cannot become private")
            await self._beside(*(self._redis.sadd(self._keys.user(member.user.id).rooms, room) for member in members))
        new = set(map(str, result[1:]))
        if self._hooks is not None and new:
            self._hooks.recorded(room)
        return bool(int(result[0])), [member for member in members if member.user.id in new]

    async def room_info(self, room: str) -> RoomInfo:
        async with self._available():
            fields = await self._redis.hgetall(self._keys.room(room).private)
        return _room_info(room, fields)

    async def access(self, room: str, user_id: str, now_ms: int) -> Access:
        keys = self._keys.room(room)
        async with self._available(), self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(keys.private)
            pipe.hget(keys.roster, user_id)
            pipe.sismember(keys.members, user_id)
            pipe.hmget(keys.sanctions, [f"ban:{user_id}", f"mute:{user_id}"])
            private, entry, v1_member, (ban, mute) = await pipe.execute()
        member = _member(entry) if entry else Member(User(user_id, user_id), "member") if v1_member else None
        return Access(private=bool(private), member=member, banned_until=_in_force(ban, now_ms),
                      muted_until=_in_force(mute, now_ms))

    async def room_for_invite(self, invite: str) -> str | None:
        async with self._available():
            room = await self._redis.get(self._keys.invite(invite))
        return str(room) if room is not None else None

    async def admit(self, room: str, member: Member, invite: str) -> bool:
        added = self._added(room, member)
        async with self._available():
            admitted = int(await self._admit(keys=[*self._roster_keys(room), *self._hook_keys(room)],
                                             args=[member.user.id, _member_json(member), invite,
                                                   *self._hook_args(added)]))
            if admitted == ADMITTED_NOW:
                await self._beside(self._redis.sadd(self._keys.user(member.user.id).rooms, room))
        if admitted == ADMITTED_NOW:
            self._recorded(room, added)
        return admitted > 0

    async def roster(self, room: str) -> list[Member]:
        keys = self._keys.room(room)
        async with self._available(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hvals(keys.roster)
            pipe.smembers(keys.members)
            entries, v1_members = await pipe.execute()
        members = [_member(entry) for entry in entries]
        members += [Member(User(user_id, user_id), "member") for user_id in v1_members]
        return sorted(members, key=roster_order)

    async def put_member(self, room: str, user_id: str, name: str | None, role: Role | None) -> tuple[Member, bool]:
        keys = self._keys.room(room)
        added = self._added(room, Member(User(user_id, name or user_id), role or "member"))  # if new
        async with self._available():
            new, entry = await self._put_member(keys=[keys.roster, keys.members, *self._hook_keys(room)],
                                                args=[user_id, name or "", role or "", *self._hook_args(added)])
            await self._beside(self._redis.sadd(self._keys.user(user_id).rooms, room))
        if int(new):
            self._recorded(room, added)
        return _member(entry), bool(int(new))

    async def remove_member(self, room: str, user_id: str, reason: str = "removed") -> Member | None:
        keys = self._keys.room(room)
        removed: list[str | int] = ["", "", 0, "", ""]
        if self._hooks is not None:
            event_id, ts = new_hook_id(), self._hooks.now_ms()
            data = {"room": room, "user": HOLE, "reason": reason}  # the user as the roster had them
            removed = [room, event_id, ts, *body_around(event_id, "member.removed", ts, data)]
        async with self._available():
            entry = await self._remove_member(keys=[keys.roster, keys.members, *self._hook_keys(room)],
                                              args=[user_id, *removed])
            await self._beside(self._redis.srem(self._keys.user(user_id).rooms, room))
        if entry is None:
            return None
        if self._hooks is not None:
            self._hooks.recorded(room)
        return _member(entry) if entry else Member(User(user_id, user_id), "member")

    async def rooms_of(self, user_id: str) -> list[RoomSummary]:
        user = self._keys.user(user_id)
        async with self._available():
            with_roster, read_in = await asyncio.gather(self._redis.smembers(user.rooms),
                                                          self._redis.smembers(user.read_in))
            rooms = sorted(set(map(str, with_roster)) | set(map(str, read_in)))
            async with self._redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    keys = self._keys.room(room)
                    pipe.hgetall(keys.private)
                    pipe.hget(keys.roster, user_id)
                    pipe.sismember(keys.members, user_id)
                    pipe.hget(keys.meta, "seq")
                    pipe.xrevrange(keys.log, "+", "-", count=1)
                answers = await pipe.execute()
            reads = await asyncio.gather(*(self._read_state(
                keys=[*self._keys.room(room).history, self._keys.room(room).reads],
                args=[user_id, compact_json(user_id), UNREAD_MAX]) for room in rooms))
        summaries = []
        for index, room in enumerate(rooms):
            fields, entry, v1_member, seq, newest = answers[5 * index:5 * index + 5]
            role = _member(entry).role if entry else "member" if v1_member else None
            if role is None and fields:
                continue  # a private room the user is not (or no longer) a member of
            if role is None and room not in read_in:
                continue  # the index is updated beside the roster: it may lag behind a removal
            last_ts = json.loads(newest[0][1]["m"])["ts"] if newest else 0
            last_read, unread = reads[index]
            summaries.append(RoomSummary(info=_room_info(room, fields), role=role, seq=int(seq or 0), last_ts=last_ts,
                                         read=ReadState(int(last_read), int(unread))))
        return summaries

    async def sanction(self, room: str, kind: Sanction, user_id: str, until_ms: int,
                       announcement: Mapping[str, object] | None = None) -> None:
        sanctions = self._keys.room(room).sanctions
        await self._sanctions_step(room, announcement, lambda tx: tx.hset(sanctions, f"{kind}:{user_id}", until_ms))

    async def lift(self, room: str, kind: Sanction, user_id: str,
                   announcement: Mapping[str, object] | None = None) -> bool:
        sanctions = self._keys.room(room).sanctions
        lifted, *_ = await self._sanctions_step(room, announcement, lambda tx: tx.hdel(sanctions, f"{kind}:{user_id}"))
        return bool(lifted)

    async def _sanctions_step(self, room: str, announcement: Mapping[str, object] | None,
                              change: Callable[[Any], object]) -> list[Any]:
        """`change` the room's sanctions (queued on a pipeline) and, with webhooks on, record
        the `moderation` event in the same MULTI; the replies, the change's first."""
        event = self._moderation(room, announcement)
        async with self._available(), self._redis.pipeline(transaction=event is not None) as tx:
            change(tx)
            await self._record_in(tx, event)
            replies: list[Any] = await tx.execute()
        self._recorded(room, event)
        return replies

    # --- webhook events recorded with the step ------------------------------

    def _added(self, room: str, member: Member) -> HookEvent | None:
        return self._hooks.new_event(room, "member.added", member_added(room, member)) if self._hooks else None

    def _moderation(self, room: str, announcement: Mapping[str, object] | None) -> HookEvent | None:
        if self._hooks is None or announcement is None:
            return None
        return self._hooks.new_event(room, "moderation", announcement)

    async def _record_in(self, transaction: Any, event: HookEvent | None) -> None:
        """Queue the recording of `event` (if any) on the MULTI that makes its change."""
        if self._hooks is not None and event is not None:
            await self._hooks.record_in(transaction, event)

    def _hook_keys(self, room: str) -> list[str]:
        return self._hooks.keys_of(room) if self._hooks else []

    def _hook_args(self, event: HookEvent | None) -> list[str | int]:
        return self._hooks.script_args(event) if self._hooks else list(NO_EVENT_ARGS)

    def _recorded(self, room: str, event: HookEvent | None) -> None:
        """After a step that recorded `event` (if any): wake the room's delivery."""
        if self._hooks is not None and event is not None:
            self._hooks.recorded(room)


def _room_info(room: str, fields: Mapping[Any, Any]) -> RoomInfo:
    """From the private room hash (decoded as text, as `connect` sets it up); empty for a public room."""
    title = fields.get("title")
    return RoomInfo(room=room, private=bool(fields), title=str(title) if title else None)


def _member_json(member: Member) -> str:
    return compact_json(member.as_dict())


def _member(entry: str) -> Member:
    data = json.loads(entry)
    return Member(User(data["id"], data["name"]), data["role"])


def _in_force(ends: str | None, now_ms: int) -> int | None:
    """A sanction's end (0: for good) while it holds; None once it has passed, or for none."""
    if ends is None:
        return None
    until = int(ends)
    return until if until == 0 or until > now_ms else None
