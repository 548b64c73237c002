"""`MemoryStore`: the embedded single-instance store. State lives in this process."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from ..errors import Forbidden, InvalidPayload, NotFound, RateLimited
from ..models import MessageDict, Position, User, quote_of
from ..webhooks.events import HookRecorder
from .base import UNREAD_MAX, Appended, Change, Changed, Draft, Page, RateLimit, ReadState, Recovery, RoomSummary
from .changes import NOT_IN_HISTORY, applied, check_allowed
from .memory_rooms import MemoryRooms

SANCTIONED = "you are banned or muted in this room"
BAD_REPLY = "reply_to must be the seq of a message in this room's history that is not deleted"


def new_epoch() -> str:
    """A fresh, unpredictable epoch id."""
    return secrets.token_urlsafe(8)


@dataclass
class _RoomLog:
    """A room's history: its messages in their current state, and what recovery of their
    changes needs: the `rev` of each message's latest change, in `rev` order, and the
    highest `rev` of a change whose message was trimmed away (`lost_rev`)."""

    epoch: str
    last_seq: int = 0
    rev: int = 0
    messages: deque[MessageDict] = field(default_factory=deque)
    changes: OrderedDict[int, int] = field(default_factory=OrderedDict)  # seq -> rev, oldest change first
    lost_rev: int = 0
    reads: dict[str, int] = field(default_factory=dict)  # user id -> read up to seq

    def after(self, seq: int) -> list[MessageDict]:
        """Messages with a `seq` above `seq`; relies on `seq` being gapless."""
        if not self.messages:
            return []
        start = max(0, seq + 1 - self.messages[0]["seq"])
        return list(islice(self.messages, start, None))

    def below(self, seq: int) -> list[MessageDict]:
        if not self.messages:
            return []
        end = max(0, seq - self.messages[0]["seq"])
        return list(islice(self.messages, end))

    def find(self, seq: int) -> MessageDict | None:
        """The message `seq`, if it is still in history."""
        index = seq - self.messages[0]["seq"] if self.messages else -1
        return self.messages[index] if 0 <= index < len(self.messages) else None

    def replace(self, message: MessageDict) -> None:
        """Store `message` in place of the one with its `seq`, as the room's latest change."""
        self.messages[message["seq"] - self.messages[0]["seq"]] = message
        self.changes.pop(message["seq"], None)
        self.changes[message["seq"]] = message["rev"]

    def trim(self, size: int) -> None:
        while len(self.messages) > size:
            gone = self.messages.popleft()["seq"]
            self.lost_rev = max(self.lost_rev, self.changes.pop(gone, 0))

    def changed_since(self, rev: int, seq: int) -> list[MessageDict] | None:
        """Messages up to `seq` changed after `rev`, in `rev` order; None when a change
        after `rev` was to a message no longer in history."""
        if self.lost_rev > rev:
            return None
        changed = []
        for changed_seq, change_rev in reversed(self.changes.items()):
            if change_rev <= rev:
                break
            if changed_seq <= seq:
                changed.append(self.messages[changed_seq - self.messages[0]["seq"]])
        changed.reverse()
        return changed

    def read_state(self, user_id: str) -> ReadState:
        last_read = self.reads.get(user_id, 0)
        unread = 0
        for message in self.after(last_read):
            if message["user"]["id"] != user_id and not message["deleted"]:
                unread += 1
                if unread == UNREAD_MAX:
                    break
        return ReadState(last_read, unread)


class MemoryStore(MemoryRooms):
    """The `Store` protocol in process memory: fast, and gone with the process. With
    `hooks`, each new message, each edit or delete, each member added or removed and each
    moderation is recorded there as a webhook event in the same step as it is stored."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, hooks: HookRecorder | None = None) -> None:
        super().__init__()
        self._clock = clock
        self._hooks = hooks
        self._logs: dict[str, _RoomLog] = {}
        self._dedupe: OrderedDict[tuple[str, str, str], tuple[float, MessageDict]] = OrderedDict()
        self._rate: OrderedDict[str, deque[float]] = OrderedDict()
        self._presence: dict[str, dict[str, tuple[User, set[str]]]] = {}
        self._revoked: dict[str, int] = {}  # user id -> the line set by `revoke`
        self._read_in: dict[str, set[str]] = {}  # user id -> public rooms the user marked read

    # --- messages ---------------------------------------------------------

    def _log(self, room: str) -> _RoomLog:
        log = self._logs.get(room)
        if log is None:
            log = self._logs[room] = _RoomLog(epoch=new_epoch())
        return log

    def _latest(self, room: str) -> tuple[int, int]:
        log = self._logs.get(room)
        if log is None:
            return 0, 0
        return log.last_seq, log.messages[-1]["ts"] if log.messages else 0

    async def append(self, draft: Draft, *, history_size: int, dedupe_ttl: float,
                     rate: RateLimit | None, moderated: bool = False) -> Appended:
        now = self._clock()
        self._expire_dedupe(now)
        dedupe_key = (draft.room, draft.user["id"], draft.client_id) if draft.client_id else None
        if dedupe_key and dedupe_key in self._dedupe:
            return Appended(message=self._dedupe[dedupe_key][1], duplicate=True)
        if moderated:
            access = await self.access(draft.room, draft.user["id"], draft.ts)
            if access.banned_until is not None or access.muted_until is not None:
                raise Forbidden(SANCTIONED)
        log = self._log(draft.room)
        answered = log.find(draft.reply_to) if draft.reply_to is not None else None
        if draft.reply_to is not None and (answered is None or answered["deleted"]):
            raise InvalidPayload(BAD_REPLY)
        if rate is not None:
            self._take_rate_token(rate, now)
        log.last_seq += 1
        log.rev += 1
        message = draft.as_message(log.last_seq, log.rev, quote_of(answered) if answered else None)
        log.messages.append(message)
        log.trim(history_size)
        if dedupe_key:
            self._dedupe[dedupe_key] = (now + dedupe_ttl, message)
        if moderated:
            log.reads[draft.user["id"]] = log.last_seq
        if self._hooks is not None:
            await self._hooks.record(draft.room, "message.created", {"message": message,
                                                                     "offline": self._offline(draft.room)})
        return Appended(message=message, duplicate=False, read_published=moderated)  # no other instance to tell

    async def change(self, change: Change, *, rate: RateLimit | None, max_reactions: int) -> Changed:
        log = self._logs.get(change.room)
        message = log.find(change.seq) if log is not None else None
        if log is None or message is None:
            raise NotFound(NOT_IN_HISTORY)
        if change.actor is not None:
            access = await self.access(change.room, change.actor, change.ts)
            check_allowed(change, message, access.member.role if access.member else None,
                          muted=access.muted_until is not None)
        updated = applied(message, change, max_reactions)
        if updated is None:
            return Changed(message=message, changed=False)
        if rate is not None:
            self._take_rate_token(rate, self._clock())
        log.rev += 1
        updated["rev"] = log.rev
        log.replace(updated)
        if self._hooks is not None and change.kind != "react":
            await self._hooks.record(change.room, "message.updated", {"message": updated})
        return Changed(message=updated, changed=True)

    def _offline(self, room: str) -> list[str]:
        """The ids of the room's roster with no connection in it."""
        online = self._presence.get(room, {})
        return [user_id for user_id in self._rosters.get(room, {}) if user_id not in online]

    def _expire_dedupe(self, now: float) -> None:
        # Entries are inserted in expiry order (one TTL for all), so the oldest go first.
        while self._dedupe:
            key, (expires, _) = next(iter(self._dedupe.items()))
            if expires > now:
                break
            del self._dedupe[key]

    def _take_rate_token(self, rate: RateLimit, now: float) -> None:
        stamps = self._rate.pop(rate.key, None) or deque()
        while stamps and stamps[0] <= now - rate.window:
            stamps.popleft()
        self._rate[rate.key] = stamps  # most recently active last
        if len(stamps) >= rate.limit:
            raise RateLimited(retry_after=round(stamps[0] + rate.window - now, 3))
        stamps.append(now)
        self._forget_idle_senders(now, rate.window)

    def _forget_idle_senders(self, now: float, window: float) -> None:
        while self._rate:
            key, stamps = next(iter(self._rate.items()))
            if stamps and stamps[-1] > now - window:
                break
            del self._rate[key]

    async def recover(self, room: str, since: Position | None, *, latest: int, reader: str | None = None) -> Recovery:
        log = self._log(room)
        read = log.read_state(reader) if reader is not None else ReadState(0, 0)
        if since is not None and since.epoch == log.epoch and since.seq <= log.last_seq:
            oldest_kept = log.messages[0]["seq"] if log.messages else log.last_seq + 1
            updated = log.changed_since(since.rev, since.seq) if since.rev is not None else []
            if since.seq + 1 >= oldest_kept and updated is not None:
                return Recovery(log.epoch, log.last_seq, log.rev, log.after(since.seq),
                                updated if since.rev is not None else None, recovered=True, read=read)
        recent = log.after(log.last_seq - latest) if latest else []
        return Recovery(log.epoch, log.last_seq, log.rev, recent, None, recovered=False, read=read)

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        log = self._log(room)
        older = log.below(before_seq) if before_seq is not None else list(log.messages)
        return Page(messages=older[-limit:], has_more=len(older) > limit)

    # --- read state -------------------------------------------------------

    async def mark_read(self, room: str, user_id: str, seq: int) -> tuple[int, bool]:
        log = self._logs.get(room)
        if log is None:
            return 0, False
        last_read = log.reads.get(user_id, 0)
        if min(seq, log.last_seq) <= last_read:
            return last_read, False
        log.reads[user_id] = min(seq, log.last_seq)
        if room not in self._private:
            self._read_in.setdefault(user_id, set()).add(room)
        return log.reads[user_id], True

    async def last_reads(self, room: str, user_ids: list[str]) -> dict[str, int]:
        reads = self._logs[room].reads if room in self._logs else {}
        return {user_id: reads.get(user_id, 0) for user_id in user_ids}

    async def rooms_of(self, user_id: str) -> list[RoomSummary]:
        summaries = await super().rooms_of(user_id)
        with_role = {summary.info.room for summary in summaries}
        for room in self._read_in.get(user_id, set()) - with_role:
            summaries.append(self._summary(room, user_id, None))
        return summaries

    def _read_state(self, room: str, user_id: str) -> ReadState:
        log = self._logs.get(room)
        return log.read_state(user_id) if log is not None else ReadState(0, 0)

    # --- presence ---------------------------------------------------------

    async def add_presence(self, room: str, user: User, conn: str) -> bool:
        users = self._presence.setdefault(room, {})
        if user.id in users:
            users[user.id][1].add(conn)
            return False
        users[user.id] = (user, {conn})
        return True

    async def remove_presence(self, room: str, user: User, conn: str) -> bool:
        users = self._presence.get(room, {})
        entry = users.get(user.id)
        if entry is None:
            return False
        entry[1].discard(conn)
        if entry[1]:
            return False
        del users[user.id]
        if not users:
            self._presence.pop(room, None)
        return True

    async def members(self, room: str) -> list[User]:
        users = [user for user, _ in self._presence.get(room, {}).values()]
        return sorted(users, key=lambda user: (user.name, user.id))

    async def online_rooms(self, limit: int) -> list[tuple[str, int]]:
        counts = [(room, len(users)) for room, users in self._presence.items()
                  if room not in self._private]
        counts.sort(key=lambda item: (-item[1], item[0]))
        return counts[:limit]

    async def heartbeat(self) -> bool:
        return False  # one process: it is alive while it runs this, and state is never lost

    async def reap(self, expiry: float) -> list[tuple[str, User]]:
        return []  # no other instances whose presence could be left behind

    # --- users ------------------------------------------------------------

    async def revoke(self, user_id: str, before: int) -> None:
        self._revoked[user_id] = max(before, self._revoked.get(user_id, before))

    async def revoked_before(self, user_id: str) -> int | None:
        return self._revoked.get(user_id)

    # --- lifecycle --------------------------------------------------------

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
