"""The `Store` protocol: everything instances must agree on.

Both implementations (`MemoryStore`, `RedisStore`) are run through the same
contract tests in `tests/contract/`, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from ..models import Member, MessageDict, Position, QuoteDict, Role, User, UserDict

Sanction = Literal["ban", "mute"]
ChangeKind = Literal["edit", "delete", "react"]


@dataclass(frozen=True, slots=True)
class Draft:
    """A message before the store gives it a `seq` and a `rev`; `reply_to` is the `seq`
    of the message it answers, which the store quotes."""

    id: str
    room: str
    user: UserDict
    text: str
    ts: int
    client_id: str | None
    reply_to: int | None = None

    def as_message(self, seq: int, rev: int, quote: QuoteDict | None = None) -> MessageDict:
        """The message as stored and delivered, at position `seq` and room event `rev`."""
        return {"id": self.id, "room": self.room, "seq": seq, "rev": rev, "user": self.user,
                "text": self.text, "ts": self.ts, "client_id": self.client_id,
                "edited_at": None, "deleted": False, "reactions": {}, "reply_to": quote}


@dataclass(frozen=True, slots=True)
class Change:
    """One change to the stored message `seq` of `room`, made at `ts` (Unix ms) by the user
    `actor` (None: the app's backend): an edit to `text`, a delete, or `emoji` given
    (`on`) or taken back."""

    room: str
    seq: int
    kind: ChangeKind
    actor: str | None
    ts: int
    text: str = ""
    emoji: str = ""
    on: bool = True


@dataclass(frozen=True, slots=True)
class Changed:
    message: MessageDict  # in its state after the change
    changed: bool  # False: nothing to change (a reaction given twice, a message deleted twice)


@dataclass(frozen=True, slots=True)
class ReadState:
    """Where a user's reading of a room stands: read up to `last_read`, and `unread`
    messages after it that others sent and that are not deleted, counted up to `UNREAD_MAX`."""

    last_read: int
    unread: int


UNREAD_MAX = 100


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
    # the sender's `read` needs delivering on this instance only: the store told the other
    # instances in its step (or there are none)
    read_published: bool = False


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a joining client gets: the room's position, the messages it needs, the older
    ones that changed since it last saw them (None when it does not track `rev`), and
    the joiner's read state there."""

    epoch: str
    seq: int
    rev: int
    messages: list[MessageDict]
    updated: list[MessageDict] | None
    recovered: bool
    read: ReadState


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[MessageDict]
    has_more: bool


@dataclass(frozen=True, slots=True)
class PrivateRoom:
    """A new private room: reached by its invite while it has fewer than `capacity` members.
    A room the app manages has no invite (`""`, capacity 0)."""

    room: str
    invite: str
    capacity: int
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Access:
    """What decides whether a user may use a room: whether it is private, the user's entry
    in its roster (membership in a private room, a role in a public one), and the sanctions
    on the user there, each until a time in Unix ms (0: for good; None: none in force)."""

    private: bool
    member: Member | None
    banned_until: int | None
    muted_until: int | None


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room: str
    private: bool
    title: str | None


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One room of a user's list: the room, the user's role there (None: a public room the
    user only read in), where its history stands, and where the user's reading stands."""

    info: RoomInfo
    role: Role | None
    seq: int
    last_ts: int  # of its newest message, 0 for none
    read: ReadState


class MessageStore(Protocol):
    """Per-room history with gapless `seq` numbers and an `epoch`."""

    async def append(self, draft: Draft, *, history_size: int, dedupe_ttl: float,
                     rate: RateLimit | None, moderated: bool = False) -> Appended:
        """Store `draft` as the room's next message, as ONE atomic step:

        0. if `moderated` (a user's own message) and its user is banned or muted in the
           room at `draft.ts`, raise `Forbidden`;
        1. if the same user sent the same non-null `client_id` to this room within
           `dedupe_ttl` seconds, return that first message with `duplicate=True`
           (nothing stored, no rate-limit cost);
        2. if `rate` is given and its user already made `rate.limit` appends in the
           last `rate.window` seconds, raise `RateLimited` with the seconds to wait;
        3. if `draft.reply_to` is not the `seq` of a message in history that is not
           deleted, raise `InvalidPayload`;
        4. otherwise give it `seq` = previous + 1 (1 for a new epoch) and the room's next
           `rev`, quote the message it answers, append it, trim history to the last
           `history_size`, remember its `client_id`, and, if `moderated`, mark the room
           read up to it for its user.
        5. publish the stored message to the other instances as the `message` room
           event, in that same step, where there are any (`RedisStore` built with a
           `RoomPublisher`; `MemoryStore` has nobody to tell), and, if `moderated`,
           the sender's new read mark to the user's connections there as `read`, where
           the step can (`read_published`). The caller then delivers them on this
           instance only.
        Two concurrent appends, on any instance, never get the same `seq`.
        """
        ...

    async def change(self, change: Change, *, rate: RateLimit | None, max_reactions: int) -> Changed:
        """Apply `change` to its message as ONE atomic step, like `append`:

        1. `NotFound` if the message is not (or no longer) in history;
        2. `Forbidden` unless the actor may: an edit is the author's, a delete the author's
           or a room owner's or moderator's (the roster says), a reaction anyone's; the
           backend (`actor` None) may edit and delete any; a user muted in the room may
           neither edit nor react; a deleted message takes no edit or reaction, and a
           message no more than `max_reactions` different emoji;
        3. when it changes nothing (a reaction given twice, one taken back that was not
           given, a delete of a deleted message): the message as it is, `changed=False`,
           at no rate cost;
        4. `RateLimited` as for `append`;
        5. otherwise the message takes the room's next `rev`, is stored in its new state
           and published as the `message_updated` room event, in that same step.
        """
        ...

    async def recover(self, room: str, since: Position | None, *, latest: int, reader: str | None = None) -> Recovery:
        """The room's epoch, latest `seq` and `rev`, with messages for a joining client,
        and the read state of the user `reader` there (0 and 0 for None).

        With `since` in the current epoch and every message after `since.seq` still in
        history: exactly those messages, oldest first; with `since.rev`, also `updated`:
        every message with `seq` <= `since.seq` whose `rev` is above `since.rev`, in `rev`
        order; `recovered=True` when all of them are still in history. Otherwise: the
        last `latest` messages, oldest first, `recovered=False`. Messages are in their
        current state. An unknown room gets a fresh epoch, `seq` and `rev` 0 and no messages.
        """
        ...

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        """Up to `limit` messages with `seq` below `before_seq` (default: all),
        the newest of those, oldest first, in their current state; `has_more` when older ones remain."""
        ...

    async def mark_read(self, room: str, user_id: str, seq: int) -> tuple[int, bool]:
        """Record that `user_id` read `room` up to `seq` (at most the room's latest); the
        mark only moves forward. Returns the mark and whether it moved. A public room
        read in joins the user's `rooms_of`."""
        ...

    async def last_reads(self, room: str, user_ids: list[str]) -> dict[str, int]:
        """Each user's read mark in `room` (0 for never read)."""
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


class RoomStore(Protocol):
    """Who may use a room: private rooms and their members, roles, bans and mutes.

    A room's roster maps user ids to `Member`s: in a private room it is the membership
    (the only users who may use it), in a public room the users given a role there. Each
    user's rooms are indexed for `rooms_of`. Sanctions expire by time, read against the
    clock when they are checked; nothing sweeps them.
    """

    async def create_private_room(self, room: PrivateRoom, owner: Member) -> None:
        """Record a new invite room with its creator as its owner.

        With webhooks on, each step below that adds a member, removes one or sanctions
        one records its webhook event (`member.added`, `member.removed`, `moderation`) in
        the same step: a crash cannot keep the change and lose the event."""
        ...

    async def put_private_room(self, room: str, title: str | None, members: list[Member]) -> tuple[bool, list[Member]]:
        """Create the app-managed private room `room`, or update its title (when given)
        and add or update the listed members, atomically. Returns whether it was created
        and the members that are new to it. `Conflict` for a public room with history."""
        ...

    async def room_info(self, room: str) -> RoomInfo:
        """Whether `room` is private, and its title (a public room's is None)."""
        ...

    async def access(self, room: str, user_id: str, now_ms: int) -> Access:
        """Everything that decides what `user_id` may do in `room`, read at once."""
        ...

    async def room_for_invite(self, invite: str) -> str | None:
        """The room an invite token belongs to, if any."""
        ...

    async def admit(self, room: str, member: Member, invite: str) -> bool:
        """Atomically add `member` if `invite` is the room's and the room is not full;
        True when the user is (now, or already was) a member."""
        ...

    async def roster(self, room: str) -> list[Member]:
        """Every entry of the room's roster, owners first, then by name and id."""
        ...

    async def put_member(self, room: str, user_id: str, name: str | None, role: Role | None) -> tuple[Member, bool]:
        """Add `user_id` to the roster (name defaulting to the id, role to `member`) or
        change the name or role given; returns the entry and whether it is new."""
        ...

    async def remove_member(self, room: str, user_id: str, reason: str = "removed") -> Member | None:
        """Take `user_id` off the roster (`reason`: removed, kicked or banned, for the
        webhook event); the entry it had, None if it had none."""
        ...

    async def rooms_of(self, user_id: str) -> list[RoomSummary]:
        """The rooms whose roster holds `user_id`, and the public rooms the user marked
        read in, each with its state and the user's read state."""
        ...

    async def sanction(self, room: str, kind: Sanction, user_id: str, until_ms: int,
                       announcement: Mapping[str, object] | None = None) -> None:
        """Ban or mute `user_id` in `room` until `until_ms` (0: for good); `announcement`
        is the `moderation` webhook event's data."""
        ...

    async def lift(self, room: str, kind: Sanction, user_id: str,
                   announcement: Mapping[str, object] | None = None) -> bool:
        """End a ban or mute; True when one was in force. `announcement` as for `sanction`."""
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


class Store(MessageStore, PresenceStore, RoomStore, UserStore, Protocol):
    """All the state an instance shares with the others."""

    async def ping(self) -> bool:
        """True when the store can serve requests now."""
        ...

    async def close(self) -> None:
        """Release connections and background work."""
        ...
