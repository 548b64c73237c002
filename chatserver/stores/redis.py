"""`RedisStore`: state shared by every instance, in Redis (redis-py asyncio client)."""

from __future__ import annotations

import json
import logging
import secrets

from redis.exceptions import RedisClusterException, RedisError

from ..backplane.clients import COMMAND_TIMEOUT, RedisClient
from ..backplane.publish import PublishFrame, RoomPublisher
from ..backplane.topology import Topology
from ..errors import Forbidden, InvalidPayload, NotFound, RateLimited
from ..models import QUOTE_LENGTH, MessageDict, Position, compact_json
from ..webhooks.events import new_hook_id
from . import redis_scripts as lua
from .base import UNREAD_MAX, Appended, Change, Changed, Draft, Page, RateLimit, ReadState, Recovery
from .changes import NOT_IN_HISTORY
from .memory import BAD_REPLY, SANCTIONED, new_epoch
from .redis_hooks import RedisHookQueue
from .redis_keys import Keys
from .redis_rooms import RedisRooms

log = logging.getLogger(__name__)

DUPLICATE, LIMITED, SANCTIONED_OUTCOME, BAD_REPLY_OUTCOME = 1, 2, 3, 4  # APPEND's outcomes besides 0, stored
UNCHANGED, FORBIDDEN_OUTCOME, NOT_FOUND_OUTCOME = 1, 3, 4  # CHANGE's, besides 0 (changed) and LIMITED
NO_FRAME = ("", "", "", "")  # publish nothing
TURN_WAIT = 5.0  # seconds an operation may wait for its turn on a Cluster (a burst queues; an outage fails fast)


class RedisStore(RedisRooms):
    """The `Store` protocol in Redis; every multi-key step is one Lua script in one hash
    slot (`redis_keys.py`), so the same store runs on one server and on a Cluster.

    Built with a `publisher`, it publishes each stored room event to the other instances
    in the same script that stores it; without one it publishes nothing. Built with
    `hooks`, the same script records the webhook event of each new message and each edit
    or delete there."""

    def __init__(self, redis: RedisClient, topology: Topology, instance: str, prefix: str = "chat:",
                 publisher: RoomPublisher | None = None, hooks: RedisHookQueue | None = None) -> None:
        super().__init__(redis, topology, instance, Keys(prefix), timeout=COMMAND_TIMEOUT, turn_wait=TURN_WAIT)
        self._hooks = hooks
        # Where keys are spread over nodes, a user's rate window and a room's keys may
        # live on different ones, so the window is checked apart, a round trip before the append.
        self._rate_apart = topology.traits.spread
        self._publisher = publisher
        self._append = self._batched(lua.APPEND)
        self._change = self._batched(lua.CHANGE)
        self._rate = self._batched(lua.RATE)
        self._recover = self._script(lua.RECOVER)
        self._history = self._script(lua.HISTORY)
        self._mark_read = self._script(lua.MARK_READ)
        self._init_rooms()
        self._revoke = self._script(lua.REVOKE)

    # --- messages -----------------------------------------------------------

    async def append(self, draft: Draft, *, history_size: int, dedupe_ttl: float,
                     rate: RateLimit | None, moderated: bool = False) -> Appended:
        # Nothing may wait before `self._append` is called (but on a Cluster, which does not
        # pipeline): the call's place in line is a pipelined message's place in its room.
        message = draft.as_message(0, 0)
        # stored as JSON without `seq`, `rev` and `reply_to`: the script writes them
        body = compact_json({key: value for key, value in message.items() if key not in ("seq", "rev", "reply_to")})
        room = self._keys.room(draft.room)
        dedupe = room.dedupe(draft.user["id"], draft.client_id) if draft.client_id else None
        in_script = rate if not self._rate_apart else None
        keys = [*room.history, room.sanctions, room.reads, *([dedupe] if dedupe else []),
                *([self._keys.rate(in_script.key)] if in_script else [])]
        args: list[str | int] = [new_epoch(), body, history_size, int(dedupe_ttl * 1000),
                                 *_rate_args(in_script, draft.id), draft.user["id"] if moderated else "", draft.ts,
                                 "1" if dedupe else "", draft.reply_to if draft.reply_to is not None else "",
                                 QUOTE_LENGTH, *self._frame(draft.room, "message")]
        if self._hooks is not None:
            keys += [room.roster, room.members, room.conns, *self._hooks.keys_of(draft.room)]
            args += [new_hook_id(), draft.room]
        else:
            args += ["", draft.room]
        read_frame = self._publisher.user_frame(draft.user["id"], "read") if moderated and self._publisher else None
        args += [read_frame.command, read_frame.channel, read_frame.prefix, read_frame.suffix] if read_frame \
            else NO_FRAME
        async with self._available():
            if rate is not None and self._rate_apart:
                first = await self._count_rate_apart(rate, draft.id, dedupe)
                if first is not None:
                    return Appended(message=_message(first), duplicate=True)
            outcome, *values = await self._append(keys=keys, args=args)
            if int(outcome) != 0 and rate is not None and self._rate_apart:
                await self._redis.zrem(self._keys.rate(rate.key), draft.id)  # a retry or a refusal costs no rate
        if int(outcome) == LIMITED:
            raise RateLimited(retry_after=round(int(values[0]) / 1000, 3))
        if int(outcome) == SANCTIONED_OUTCOME:
            raise Forbidden(SANCTIONED)
        if int(outcome) == BAD_REPLY_OUTCOME:
            raise InvalidPayload(BAD_REPLY)
        if int(outcome) == DUPLICATE:
            return Appended(message=_message(values[0]), duplicate=True)
        if self._hooks is not None:
            self._hooks.recorded(draft.room)
        seq, rev, quote = values
        message["seq"], message["rev"] = int(seq), int(rev)
        message["reply_to"] = json.loads(quote) if quote else None
        return Appended(message=message, duplicate=False, read_published=read_frame is not None)

    async def change(self, change: Change, *, rate: RateLimit | None, max_reactions: int) -> Changed:
        room = self._keys.room(change.room)
        in_script = rate if not self._rate_apart else None
        member = f"{change.kind}:{change.seq}:{new_epoch()}"
        keys = [*room.history, room.sanctions, room.roster, *([self._keys.rate(in_script.key)] if in_script else [])]
        args: list[str | int] = [change.kind, change.seq, change.actor or "", change.ts,
                                 change.text or change.emoji, "1" if change.on else "0", max_reactions,
                                 *_rate_args(in_script, member), *self._frame(change.room, "message_updated")]
        hooks = self._hooks if change.kind != "react" else None  # reactions are no webhook event
        if hooks is not None:
            keys += hooks.keys_of(change.room)
            args += [new_hook_id(), change.room]
        else:
            args += ["", ""]
        async with self._available():
            if rate is not None and self._rate_apart:
                await self._count_rate_apart(rate, member, None)
            outcome, *values = await self._change(keys=keys, args=args)
            if int(outcome) != 0 and rate is not None and self._rate_apart:
                await self._redis.zrem(self._keys.rate(rate.key), member)  # nothing changed: no rate cost
        if int(outcome) == LIMITED:
            raise RateLimited(retry_after=round(int(values[0]) / 1000, 3))
        if int(outcome) == FORBIDDEN_OUTCOME:
            raise Forbidden(str(values[0]))
        if int(outcome) == NOT_FOUND_OUTCOME:
            raise NotFound(NOT_IN_HISTORY)
        if hooks is not None and int(outcome) == 0:
            hooks.recorded(change.room)
        return Changed(message=_message(values[0]), changed=int(outcome) == 0)

    def _frame(self, room: str, event: str) -> tuple[str, str, str, str]:
        """How the scripts publish `event` of `room` to the other instances (see `_PUBLISH`)."""
        if self._publisher is None:
            return NO_FRAME
        frame: PublishFrame = self._publisher.frame(room, event)
        return frame.command, frame.channel, frame.prefix, frame.suffix

    async def _count_rate_apart(self, rate: RateLimit, member: str, dedupe: str | None) -> str | None:
        """Count an append in the user's rate window, in its own slot. When the window is
        full: the first message, if this is a retry of one (a retry is answered, not
        limited), else `RateLimited`."""
        wait = int(await self._rate(keys=[self._keys.rate(rate.key)],
                                    args=[rate.limit, int(rate.window * 1000), member]))
        if not wait:
            return None
        first = await self._redis.get(dedupe) if dedupe else None
        if first is None:
            raise RateLimited(retry_after=round(wait / 1000, 3))
        return str(first)

    async def recover(self, room: str, since: Position | None, *, latest: int, reader: str | None = None) -> Recovery:
        keys = self._keys.room(room)
        since_rev = since.rev if since is not None and since.rev is not None else -1
        args: list[str | int] = [new_epoch(), since.seq if since else -1, since.epoch if since else "", latest,
                                 since_rev, reader or "", compact_json(reader or ""), UNREAD_MAX]
        async with self._available():
            epoch, seq, rev, recovered, last_read, unread, messages, updated = await self._recover(
                keys=[*keys.history, keys.reads], args=args)
        recovered = bool(int(recovered))
        found = [_message(value) for value in messages]
        if not recovered:
            found.reverse()  # XREVRANGE gave newest first
        return Recovery(epoch=epoch, seq=int(seq), rev=int(rev), messages=found,
                        updated=[_message(value) for value in updated] if recovered and since_rev >= 0 else None,
                        recovered=recovered, read=ReadState(int(last_read), int(unread)))

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        upper = f"(0-{before_seq}" if before_seq is not None else "+"
        async with self._available():
            found = await self._history(keys=self._keys.room(room).history, args=[upper, limit + 1]) or []
        messages = [_message(value) for value in found[:limit]]
        messages.reverse()
        return Page(messages=messages, has_more=len(found) > limit)

    # --- read state ---------------------------------------------------------

    async def mark_read(self, room: str, user_id: str, seq: int) -> tuple[int, bool]:
        keys = self._keys.room(room)
        async with self._available():
            mark, moved = await self._mark_read(keys=[*keys.history, keys.reads], args=[user_id, seq])
            if int(mark) > 0 and not await self._redis.exists(keys.private):
                await self._beside(self._redis.sadd(self._keys.user(user_id).read_in, room))
        return int(mark), bool(int(moved))

    async def last_reads(self, room: str, user_ids: list[str]) -> dict[str, int]:
        if not user_ids:
            return {}
        async with self._available():
            marks = await self._redis.hmget(self._keys.room(room).reads, user_ids)
        return {user_id: int(mark or 0) for user_id, mark in zip(user_ids, marks, strict=True)}

    # --- users --------------------------------------------------------------

    async def revoke(self, user_id: str, before: int) -> None:
        async with self._available():
            await self._revoke(keys=[self._keys.user(user_id).revoked], args=[before])

    async def revoked_before(self, user_id: str) -> int | None:
        async with self._available():
            line = await self._redis.get(self._keys.user(user_id).revoked)
        return int(line) if line is not None else None

    # --- lifecycle ----------------------------------------------------------

    async def ping(self) -> bool:
        """On a Cluster: a node answers and reports the cluster able to serve every slot
        (a node answers PING while the cluster refuses commands)."""
        try:
            if self._cluster is not None:
                return (await self._cluster.cluster_info()).get("cluster_state") == "ok"
            return bool(await self._redis.ping())
        except (RedisError, RedisClusterException, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        for batched in self._batches:
            await batched.close()
        await self._redis.aclose()


def _message(value: str) -> MessageDict:
    """A stored message out of its JSON; one stored before messages could change gets the
    fields it lacks, as it would have had them."""
    message: MessageDict = json.loads(value)
    if "rev" not in message:
        message.update(rev=message["seq"], edited_at=None, deleted=False, reactions={}, reply_to=None)
    return message


def _rate_args(rate: RateLimit | None, member: str) -> tuple[int, int, str]:
    """A script's rate arguments: limit (0: none), window in ms, and this call's member."""
    return (rate.limit, int(rate.window * 1000), member) if rate is not None else (0, 0, "")


def instance_id() -> str:
    """A new id for this process among the instances sharing Redis."""
    return secrets.token_hex(6)
