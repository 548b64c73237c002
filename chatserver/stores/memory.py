"""`MemoryStore`: the embedded single-instance store. State lives in this process."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from ..errors import Forbidden, RateLimited
from ..models import MessageDict, Position, User
from .base import Appended, Draft, Page, RateLimit, Recovery
from .memory_rooms import MemoryRooms

SANCTIONED = "you are banned or muted in this room"


def new_epoch() -> str:
    """A fresh, unpredictable epoch id."""
    return secrets.token_urlsafe(8)


@dataclass
class _RoomLog:
    epoch: str
    last_seq: int = 0
    messages: deque[MessageDict] = field(default_factory=deque)

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


class MemoryStore(MemoryRooms):
    """The `Store` protocol in process memory: fast, and gone with the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._logs: dict[str, _RoomLog] = {}
        self._dedupe: OrderedDict[tuple[str, str, str], tuple[float, MessageDict]] = OrderedDict()
        self._rate: OrderedDict[str, deque[float]] = OrderedDict()
        self._presence: dict[str, dict[str, tuple[User, set[str]]]] = {}
        self._revoked: dict[str, int] = {}  # user id -> the line set by `revoke`

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
        if rate is not None:
            self._take_rate_token(rate, now)
        log = self._log(draft.room)
        log.last_seq += 1
        message = draft.as_message(log.last_seq)
        log.messages.append(message)
        while len(log.messages) > history_size:
            log.messages.popleft()
        if dedupe_key:
            self._dedupe[dedupe_key] = (now + dedupe_ttl, message)
        return Appended(message=message, duplicate=False)

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

    async def recover(self, room: str, since: Position | None, *, latest: int) -> Recovery:
        log = self._log(room)
        if since is not None and since.epoch == log.epoch and since.seq <= log.last_seq:
            oldest_kept = log.messages[0]["seq"] if log.messages else log.last_seq + 1
            if since.seq + 1 >= oldest_kept:
                return Recovery(log.epoch, log.last_seq, log.after(since.seq), recovered=True)
        recent = log.after(log.last_seq - latest) if latest else []
        return Recovery(log.epoch, log.last_seq, recent, recovered=False)

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        log = self._log(room)
        older = log.below(before_seq) if before_seq is not None else list(log.messages)
        return Page(messages=older[-limit:], has_more=len(older) > limit)

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
