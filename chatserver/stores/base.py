"""The `Store` protocol: everything instances must agree on.

Both implementations (`MemoryStore`, `RedisStore`) are run through the same
contract tests in `tests/contract/`, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..models import MessageDict, Position, User, UserDict


@dataclass(frozen=True, slots=True)
class Draft:
    """A message before the store gives it a `seq`."""

    id: str
    room: str
    user: UserDict
    text: str
    ts: int
    client_id: str | None

    def as_message(self, seq: int) -> MessageDict:
        """The message as stored and delivered, at position `seq`."""
        return {"id": self.id, "room": self.room, "seq": seq, "user": self.user,
                "text": self.text, "ts": self.ts, "client_id": self.client_id}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` appends per `window` seconds for the user `key`."""

    key: str
    limit: int
    window: float


@dataclass(frozen=True, slots=True)
class Appended:
    message: MessageDict
    duplicate: bool  # True: the client_id was seen; `message` is the first one, stored earlier


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a joining client gets: the room's position and the messages it needs."""

    epoch: str
    seq: int
    messages: list[MessageDict]
    recovered: bool


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[MessageDict]
    has_more: bool


@dataclass(frozen=True, slots=True)
class PrivateRoom:
    room: str
    invite: str
    capacity: int
    members: frozenset[str]


class MessageStore(Protocol):
    """Per-room history with gapless `seq` numbers and an `epoch`."""

    async def append(self, draft: Draft, *, history_size: int, dedupe_ttl: float,
                     rate: RateLimit | None) -> Appended:
        """Store `draft` as the room's next message, as ONE atomic step:

        1. if the same user sent the same non-null `client_id` to this room within
           `dedupe_ttl` seconds, return that first message with `duplicate=True`
           (nothing stored, no rate-limit cost);
        2. if `rate` is given and its user already made `rate.limit` appends in the
           last `rate.window` seconds, raise `RateLimited` with the seconds to wait;
        3. otherwise give it `seq` = previous + 1 (1 for a new epoch), append it,
           trim history to the last `history_size`, and remember its `client_id`.
        4. publish the stored message to the other instances as the `message` room
           event, in that same step, where there are any (`RedisStore` built with a
           `RoomPublisher`; `MemoryStore` has nobody to tell). The caller then
           delivers it on this instance only.
        Two concurrent appends, on any instance, never get the same `seq`.
        """
        ...

    async def recover(self, room: str, since: Position | None, *, latest: int) -> Recovery:
        """The room's epoch and latest `seq`, with messages for a joining client.

        With `since` in the current epoch and every message after `since.seq`
        still in history: exactly those messages, oldest first, `recovered=True`.
        Otherwise: the last `latest` messages, oldest first, `recovered=False`.
        An unknown room gets a fresh epoch, `seq` 0 and no messages.
        """
        ...

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        """Up to `limit` messages with `seq` below `before_seq` (default: all),
        the newest of those, oldest first; `has_more` when older ones remain."""
        ...


class PresenceStore(Protocol):
    """Which users are online in which room, counted by user, not by connection.

    A connection id is unique across instances. Entries of an instance that
    stops refreshing them (see `heartbeat`) expire, so a killed instance leaves
    no ghosts.
    """

    async def add_presence(self, room: str, user: User, conn: str) -> bool:
        """Record `conn` of `user` in `room`; True when it is the user's first there."""
        ...

    async def remove_presence(self, room: str, user: User, conn: str) -> bool:
        """Forget `conn` in `room`; True when the user has no connection left there."""
        ...

    async def members(self, room: str) -> list[User]:
        """Users online in `room` on every instance, ordered by name then id."""
        ...

    async def online_rooms(self, limit: int) -> list[tuple[str, int]]:
        """Public rooms with users online, most online first, as (room, users)."""
        ...

    async def heartbeat(self) -> bool:
        """Tell the other instances this one is alive; call it well within `expiry`.
        True when the store did not know this instance (first beat, or its state was
        lost), so the caller should record its presence again."""
        ...

    async def reap(self, expiry: float) -> list[tuple[str, User]]:
        """Remove the presence of instances silent for `expiry` seconds, each room's
        share in one atomic step (two instances reaping at once never both report a
        user); returns the (room, user) pairs of users who thereby have no connection left."""
        ...


class PrivateRoomStore(Protocol):
    """Private rooms: membership is for good, capacity bounds it."""

    async def create_private_room(self, room: PrivateRoom) -> None:
        """Record a new private room; `room.members` holds its creator."""
        ...

    async def private_room(self, room: str) -> PrivateRoom | None:
        """The private room with this id, or None for a public room."""
        ...

    async def room_for_invite(self, invite: str) -> str | None:
        """The room an invite token belongs to, if any."""
        ...

    async def admit(self, room: str, user_id: str, invite: str) -> bool:
        """Atomically make `user_id` a member if `invite` is the room's and it is
        not full; True when the user is (now, or already was) a member."""
        ...


class UserStore(Protocol):
    """What is kept per user, whatever room: the revocation of old tokens."""

    async def revoke(self, user_id: str, before: int) -> None:
        """Refuse the user's tokens issued before `before` (Unix ms) from now on,
        for good; a later revocation moves the line, an earlier one changes nothing."""
        ...

    async def revoked_before(self, user_id: str) -> int | None:
        """The line set by `revoke`: tokens issued before it are refused; None if never revoked."""
        ...


class Store(MessageStore, PresenceStore, PrivateRoomStore, UserStore, Protocol):
    """All the state an instance shares with the others."""

    async def ping(self) -> bool:
        """True when the store can serve requests now."""
        ...

    async def close(self) -> None:
        """Release connections and background work."""
        ...
