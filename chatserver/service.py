"""ChatService: the rules of chat. Knows nothing of Socket.IO or HTTP."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from .config import Settings
from .errors import ChatError, Forbidden, NotJoined, RateLimited, Unauthorized
from .models import Member, MessageDict, Position, Role, User, check_room, message_text
from .stores.base import Access, Appended, Draft, Page, PrivateRoom, RateLimit, Recovery, Store
from .tasks import Background
from .throttle import TokenBucket

log = logging.getLogger(__name__)

PRIVATE_ROOM_ID_BYTES = 16  # 22 characters of the room-id alphabet
INVITE_BYTES = 24
ONLINE_ROOMS_LIMIT = 100
# Room events the store keeps, published by the store and delivered in the room's `rev` order.
STORED_EVENTS = frozenset({"message", "message_updated"})


class Fanout(Protocol):
    """Delivery of room events to the connections in a room.

    Events the store keeps (`STORED_EVENTS`: messages and their changes) are published to
    the other instances by the store, in the same step as storing them: the service then
    delivers them here with `local_broadcast`. Events nobody stores (presence, typing) go
    to every instance with `broadcast`. Either way a new kind of event is a name and a payload.
    """

    async def enter(self, conn: str, room: str) -> None: ...

    async def exit(self, conn: str, room: str) -> None: ...

    def follow(self, room: str, rev: int) -> None:
        """`room` is at `rev`, as a join just read it: stored events go on in `rev` order from there."""
        ...

    async def broadcast(self, event: str, payload: Mapping[str, object], room: str, skip: str | None = None) -> None:
        """Deliver `event` to everyone in `room` on every instance, but the connection `skip`."""
        ...

    async def local_broadcast(self, event: str, payload: Mapping[str, object], room: str) -> None:
        """Deliver `event` to everyone in `room` on this instance: the store has published
        it to the others."""
        ...

    async def to_user(self, event: str, payload: Mapping[str, object], user_id: str, skip: str | None = None) -> None:
        """Deliver `event` to every connection of the user, on every instance, but the connection `skip`."""
        ...

    async def to_user_here(self, event: str, payload: Mapping[str, object], user_id: str,
                           skip: str | None = None) -> None:
        """Deliver `event` to the user's connections on this instance (but `skip`): the
        store has published it to the others."""
        ...

    def hear_users(self, handler: Callable[[str, str, object, list[str]], None]) -> None:
        """Call `handler(user_id, event, payload, conns)` after each user event was
        delivered to `conns`, the user's connections on this instance."""
        ...


@dataclass(slots=True)
class Connection:
    """One client connection on this instance and the rooms it joined."""

    id: str
    user: User
    typing_budget: TokenBucket
    read_budget: TokenBucket
    rooms: set[str] = field(default_factory=set)
    closed: bool = False


@dataclass(frozen=True, slots=True)
class Online:
    """A user online in a room, with their role there, if they have one, and in a private
    room how far they have read."""

    user: User
    role: Role | None
    last_read: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        """The user object, with `role` and `last_read` where there are any."""
        shown: dict[str, str | int] = {"id": self.user.id, "name": self.user.name}
        if self.role:
            shown["role"] = self.role
        if self.last_read is not None:
            shown["last_read"] = self.last_read
        return shown


@dataclass(frozen=True, slots=True)
class Joined:
    room: str
    recovery: Recovery
    members: list[Online]
    role: Role | None  # the joiner's, where the room's roster gives one


class ChatService:
    """Join, leave, send, recover, history and presence, as the contract states them."""

    def __init__(self, store: Store, fanout: Fanout, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._fanout = fanout
        self._settings = settings
        self._clock = clock
        self._connections: dict[str, Connection] = {}
        # presence removals the store refused (Redis away), retried by `keep_presence`
        self._stale_presence: set[tuple[str, User, str]] = set()
        self._presence_lost = False  # the store lost this instance's presence; not yet all restored
        self._background = Background("room removal")
        fanout.hear_users(self._heard)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def room_count(self) -> int:
        """Rooms joined by at least one connection of this instance."""
        return len(set().union(*(conn.rooms for conn in self._connections.values())))

    def user_of(self, conn_id: str) -> User:
        """The user behind a live connection; `Unauthorized` for an unknown one."""
        return self._connection(conn_id).user

    def is_connected(self, conn_id: str) -> bool:
        """Whether the connection is registered and not yet gone."""
        return conn_id in self._connections

    def connect(self, conn_id: str, user: User) -> None:
        """Register a new connection of `user`."""
        def budget() -> TokenBucket:
            return TokenBucket(self._settings.typing_rate, self._settings.typing_burst, self._clock())
        self._connections[conn_id] = Connection(id=conn_id, user=user, typing_budget=budget(), read_budget=budget())

    async def disconnect(self, conn_id: str) -> None:
        """Forget a connection; announce `left` in each room where it was the user's last."""
        conn = self._connections.pop(conn_id, None)
        if conn is None:
            return
        conn.closed = True
        for room in list(conn.rooms):
            await self._drop_presence(conn, room)

    async def close(self) -> None:
        """Forget every connection of this instance, announcing who left (instance shutdown)."""
        for conn_id in list(self._connections):
            await self.disconnect(conn_id)

    async def keep_presence(self, interval: float, expiry: float) -> None:
        """Run forever: heartbeat this instance and reap instances silent for `expiry`
        seconds, announcing `left` for users who were only on those."""
        while True:
            try:
                if await self._store.heartbeat():  # a new entry: the store lost what it had
                    self._presence_lost = True
                if self._presence_lost:  # until a restore went through, not just on that beat
                    await self._restore_presence()
                    self._presence_lost = False
                await self._retry_stale_presence()
                for room, user in await self._store.reap(expiry):
                    log.info("presence expired", extra={"room": room, "user": user.id})
                    await self._announce(room, user, "left")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep beating: Redis may come back
                log.warning("presence upkeep failed", extra={"error": f"{type(error).__name__}: {error}"})
            await asyncio.sleep(interval)

    async def join(self, conn_id: str, room: str, since: Position | None, invite: str | None) -> Joined:
        """Admit the connection to `room` and hand it what it missed.

        The connection enters the room before history is read, so a message sent
        meanwhile reaches it live or in `recovery` (clients drop repeats by `seq`).
        """
        conn = self._connection(conn_id)
        check_room(room)
        if room not in conn.rooms and len(conn.rooms) >= self._settings.max_rooms_per_connection:
            raise Forbidden(f"a connection may be in at most {self._settings.max_rooms_per_connection} rooms; "
                            "leave one first")
        access = await self._check_access(conn.user, room, invite, refuse_banned=True)
        await self._fanout.enter(conn.id, room)
        try:
            recovery = await self._store.recover(room, since, latest=self._settings.join_history, reader=conn.user.id)
            self._fanout.follow(room, recovery.rev)
            if room not in conn.rooms:
                first = await self._store.add_presence(room, conn.user, conn.id)
                conn.rooms.add(sys.intern(room))  # one copy of the id for all of the room's connections
                if first:
                    await self._announce(room, conn.user, "joined", skip=conn.id)
        except ChatError:
            if room not in conn.rooms:
                await self._fanout.exit(conn.id, room)
            raise
        if conn.closed:  # disconnected while we were awaiting: leave no ghost
            await self._drop_presence(conn, room)
        members = await self._online(room, access.private)
        log.debug("join", extra={"room": room, "user": conn.user.id, "conn": conn.id, "recovered": recovery.recovered})
        return Joined(room=room, recovery=recovery, members=members,
                      role=access.member.role if access.member else None)

    async def leave(self, conn_id: str, room: str) -> None:
        """Take the connection out of `room`; leaving a room not joined is a no-op, except
        that a stranger to a private room is refused, as for everything in it."""
        conn = self._connection(conn_id)
        if room in conn.rooms:
            await self._drop_presence(conn, room)
            log.debug("leave", extra={"room": room, "user": conn.user.id, "conn": conn.id})
        else:
            await self._refuse_strangers(conn.user, room)

    async def send(self, conn_id: str, room: str, text: str, client_id: str | None,
                   reply_to: int | None = None) -> MessageDict:
        """Store a message from a joined connection, then deliver it to the room; the
        store marks the room read up to it, which the user's connections hear.

        Nothing here waits before the store's append is called: a connection's pipelined
        messages keep their order only so (see `BatchedScript.__call__`)."""
        conn = await self.joined(conn_id, room, "sending to", refuse_banned=True)
        appended = await self._append(room, conn.user, text, client_id, reply_to, self.rate_of(conn.user),
                                      moderated=True)
        message = appended.message
        if not appended.duplicate:  # to the user's other connections; this one has its ack
            notice = {"room": room, "last_read": message["seq"]}
            if appended.read_published:
                await self._fanout.to_user_here("read", notice, conn.user.id, skip=conn.id)
            else:
                await self._fanout.to_user("read", notice, conn.user.id, skip=conn.id)
        return message

    async def publish(self, room: str, text: str, user: User) -> MessageDict:
        """Store and deliver a message from a trusted backend (no membership, no rate limit)."""
        check_room(room)
        return (await self._append(room, user, text, None, None, None)).message

    def rate_of(self, user: User) -> RateLimit:
        """The window a user's messages and changes to them share."""
        return RateLimit(key=user.id, limit=self._settings.rate_limit, window=self._settings.rate_window)

    async def typing(self, conn_id: str, room: str, typing: bool) -> None:
        """Tell the room's other connections that the user is (not) typing."""
        conn = await self.joined(conn_id, room, "typing in")
        wait = conn.typing_budget.take(self._clock())
        if wait:
            raise RateLimited(wait, "too many typing notices")
        payload = {"room": room, "user": conn.user.as_dict(), "typing": typing}
        await self._fanout.broadcast("typing", payload, room, skip=conn.id)

    async def history(self, user: User, room: str, before_seq: int | None, limit: int) -> Page:
        """A page of history, for anyone in a public room and members of a private one."""
        check_room(room)
        await self._check_access(user, room, invite=None)
        return await self._store.history(room, before_seq, limit)

    async def members(self, user: User, room: str) -> list[Online]:
        """Users online in `room`, with the same access rule as history."""
        check_room(room)
        access = await self._check_access(user, room, invite=None)
        return await self._online(room, access.private)

    async def reader(self, conn_id: str, room: str) -> tuple[User, Access]:
        """The user of a connection that marks `room` read, and what they may do there:
        anyone in a public room, members in a private one; joined or not. Each connection
        has a budget of marks, as of typing notices."""
        conn = self._connection(conn_id)
        check_room(room)
        wait = conn.read_budget.take(self._clock())
        if wait:
            raise RateLimited(wait, "too many read marks")
        return conn.user, await self._check_access(conn.user, room, invite=None)

    async def create_private_room(self, user: User, capacity: int) -> PrivateRoom:
        """A new private room with `user` as its owner, and its invite token."""
        room = PrivateRoom(room=secrets.token_urlsafe(PRIVATE_ROOM_ID_BYTES),
                           invite=secrets.token_urlsafe(INVITE_BYTES), capacity=capacity)
        await self._store.create_private_room(room, Member(user, "owner"))
        log.info("private room created", extra={"room": room.room, "user": user.id, "capacity": capacity})
        return room

    async def room_for_invite(self, invite: str) -> str | None:
        """The private room an invite token opens, if any."""
        return await self._store.room_for_invite(invite)

    async def online_rooms(self) -> list[tuple[str, int]]:
        """Public rooms with users online, most online first."""
        return await self._store.online_rooms(ONLINE_ROOMS_LIMIT)

    def _heard(self, user_id: str, event: str, payload: object, conns: list[str]) -> None:
        """A user lost a room (`removed`): their connections here leave it at once."""
        if event == "removed" and isinstance(payload, dict) and isinstance(payload.get("room"), str):
            self._background.start(self._leave_all(conns, payload["room"]))

    async def _leave_all(self, conn_ids: list[str], room: str) -> None:
        for conn_id in conn_ids:
            conn = self._connections.get(conn_id)
            if conn is not None and room in conn.rooms:
                await self._drop_presence(conn, room)
                log.info("removed from room", extra={"room": room, "user": conn.user.id, "conn": conn.id})

    # --- rules shared by the operations above -------------------------------

    async def _online(self, room: str, private: bool) -> list[Online]:
        """Users online in `room`, each with their role from its roster (read at the same
        time) and, in a private room, their read mark."""
        users, roster = await asyncio.gather(self._store.members(room), self._store.roster(room))
        roles = {member.user.id: member.role for member in roster}
        reads = await self._store.last_reads(room, [user.id for user in users]) if private else {}
        return [Online(user, roles.get(user.id), reads.get(user.id)) for user in users]

    def _connection(self, conn_id: str) -> Connection:
        conn = self._connections.get(conn_id)
        if conn is None:
            raise Unauthorized("connection is not authenticated")
        return conn

    async def _check_access(self, user: User, room: str, invite: str | None, *,
                            refuse_banned: bool = False) -> Access:
        """What the user may do in `room`: `forbidden` for a stranger to a private room
        (unless `invite` admits them), and, with `refuse_banned`, for a user banned there."""
        access = await self._store.access(room, user.id, int(self._clock() * 1000))
        if refuse_banned and access.banned_until is not None:
            raise Forbidden("you are banned from this room")
        if not access.private or access.member is not None:
            return access
        member = Member(user, "member")
        if invite is not None and await self._store.admit(room, member, invite):
            log.info("invite accepted", extra={"room": room, "user": user.id})
            return replace(access, member=member)
        raise Forbidden("this room is private and you are not a member")

    async def _append(self, room: str, user: User, text: str, client_id: str | None, reply_to: int | None,
                      rate: RateLimit | None, *, moderated: bool = False) -> Appended:
        """The store's answer, once the message (if new: not a repeat of a `client_id`) is delivered here."""
        draft = Draft(id=secrets.token_hex(12), room=room, user=user.as_dict(),
                      text=message_text(text, self._settings.max_message_length),
                      ts=int(self._clock() * 1000), client_id=client_id, reply_to=reply_to)
        appended = await self._store.append(draft, history_size=self._settings.history_size,
                                            dedupe_ttl=self._settings.dedupe_ttl, rate=rate, moderated=moderated)
        if not appended.duplicate:
            await self._fanout.local_broadcast("message", appended.message, room)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("message", extra={"room": room, "user": user.id, "seq": appended.message["seq"],
                                        "duplicate": appended.duplicate})
        return appended

    async def _drop_presence(self, conn: Connection, room: str) -> None:
        conn.rooms.discard(room)
        if not conn.closed:  # a closed connection leaves its delivery rooms with it
            await self._fanout.exit(conn.id, room)
        try:
            last = await self._store.remove_presence(room, conn.user, conn.id)
        except ChatError as error:  # the connection is gone here regardless; fix the store later
            log.warning("presence removal deferred", extra={"room": room, "conn": conn.id, "error": error.message})
            self._stale_presence.add((room, conn.user, conn.id))
            return
        if last:
            await self._announce(room, conn.user, "left", skip=conn.id)

    async def _retry_stale_presence(self) -> None:
        for room, user, conn_id in list(self._stale_presence):
            last = await self._store.remove_presence(room, user, conn_id)
            self._stale_presence.discard((room, user, conn_id))
            if last:
                await self._announce(room, user, "left")

    async def _restore_presence(self) -> None:
        """Record every local connection's presence again, after the store lost it."""
        for conn in list(self._connections.values()):
            for room in list(conn.rooms):
                if await self._store.add_presence(room, conn.user, conn.id):
                    await self._announce(room, conn.user, "joined", skip=conn.id)

    async def joined(self, conn_id: str, room: str, doing: str, *, refuse_banned: bool = False) -> Connection:
        """The connection, if it has joined `room` (a joined room's id was checked at join),
        at once (no wait); else the refusals of `_refuse_strangers`, then `not_joined`
        naming what it was `doing`."""
        conn = self._connection(conn_id)
        if room not in conn.rooms:
            await self._refuse_strangers(conn.user, room, refuse_banned=refuse_banned)
            raise NotJoined(f"join room {room} before {doing} it")
        return conn

    async def _refuse_strangers(self, user: User, room: str, *, refuse_banned: bool = False) -> None:
        """`invalid_room` for a malformed id; `forbidden` for a private room `user` is not
        in, and, with `refuse_banned`, in a room where `user` is banned."""
        check_room(room)
        await self._check_access(user, room, invite=None, refuse_banned=refuse_banned)

    async def _announce(self, room: str, user: User, status: str, skip: str | None = None) -> None:
        payload = {"room": room, "user": user.as_dict(), "status": status}
        await self._fanout.broadcast("presence", payload, room, skip=skip)

