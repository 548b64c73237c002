"""`RedisStore`: state shared by every instance, in Redis (redis-py asyncio client)."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from ..backplane.clients import COMMAND_TIMEOUT, RedisClient
from ..backplane.publish import RoomPublisher
from ..backplane.topology import Topology
from ..errors import Forbidden, RateLimited
from ..models import MessageDict, Position, compact_json
from . import redis_scripts as lua
from .base import Appended, Draft, Page, RateLimit, Recovery
from .memory import SANCTIONED, new_epoch
from .redis_keys import Keys
from .redis_rooms import RedisRooms

log = logging.getLogger(__name__)

DUPLICATE, LIMITED, SANCTIONED_OUTCOME = 1, 2, 3  # the append script's outcomes besides 0, stored
TURN_WAIT = 5.0  # seconds an operation may wait for its turn on a Cluster (a burst queues; an outage fails fast)


class RedisStore(RedisRooms):
    """The `Store` protocol in Redis; every multi-key step is one Lua script in one hash
    slot (`redis_keys.py`), so the same store runs on one server and on a Cluster.

    Built with a `publisher`, it publishes each stored room event to the other instances
    in the same script that stores it; without one it publishes nothing."""

    def __init__(self, redis: RedisClient, topology: Topology, instance: str, prefix: str = "chat:",
                 publisher: RoomPublisher | None = None) -> None:
        super().__init__(redis, topology, instance, Keys(prefix), timeout=COMMAND_TIMEOUT, turn_wait=TURN_WAIT)
        # Where keys are spread over nodes, a user's rate window and a room's keys may
        # live on different ones, so the window is checked apart, a round trip before the append.
        self._rate_apart = topology.traits.spread
        self._publisher = publisher
        self._append = self._batched(lua.APPEND)
        self._rate = self._batched(lua.RATE)
        self._recover = self._script(lua.RECOVER)
        self._init_rooms()
        self._revoke = self._script(lua.REVOKE)

    # --- messages -----------------------------------------------------------

    async def append(self, draft: Draft, *, history_size: int, dedupe_ttl: float,
                     rate: RateLimit | None, moderated: bool = False) -> Appended:
        # Nothing may wait before `self._append` is called (but on a Cluster, which does not
        # pipeline): the call's place in line is a pipelined message's place in its room.
        message = draft.as_message(0)
        # stored as JSON without `seq`; the script writes the `seq` it allocates in front
        body = compact_json({key: value for key, value in message.items() if key != "seq"})
        room = self._keys.room(draft.room)
        dedupe = room.dedupe(draft.user["id"], draft.client_id) if draft.client_id else None
        in_script = rate if not self._rate_apart else None
        publish = self._publisher.frame(draft.room, "message") if self._publisher else None
        keys = [room.meta, room.log, room.sanctions, *([dedupe] if dedupe else []),
                *([self._keys.rate(in_script.key)] if in_script else [])]
        args: list[str | int] = [new_epoch(), body, history_size, int(dedupe_ttl * 1000),
                                 in_script.limit if in_script else 0, int(in_script.window * 1000) if in_script else 0,
                                 draft.id,
                                 *((publish.channel, publish.prefix, publish.suffix, publish.command)
                                   if publish else ("", "", "", "")),
                                 "1" if dedupe else "", draft.user["id"] if moderated else "", draft.ts]
        async with self._available():
            if rate is not None and self._rate_apart:
                first = await self._count_rate_apart(rate, draft.id, dedupe)
                if first is not None:
                    return Appended(message=json.loads(first), duplicate=True)
            outcome, value = await self._append(keys=keys, args=args)
            if int(outcome) == DUPLICATE and rate is not None and self._rate_apart:
                await self._redis.zrem(self._keys.rate(rate.key), draft.id)  # a retry costs no rate
        if int(outcome) == LIMITED:
            raise RateLimited(retry_after=round(int(value) / 1000, 3))
        if int(outcome) == SANCTIONED_OUTCOME:
            raise Forbidden(SANCTIONED)
        if int(outcome) == DUPLICATE:
            return Appended(message=json.loads(value), duplicate=True)
        message["seq"] = int(value)
        return Appended(message=message, duplicate=False)

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

    async def recover(self, room: str, since: Position | None, *, latest: int) -> Recovery:
        keys = self._keys.room(room)
        args: list[str | int] = [new_epoch(), since.seq if since else -1, since.epoch if since else "", latest]
        async with self._available():
            epoch, seq, recovered, entries = await self._recover(keys=[keys.meta, keys.log], args=args)
        messages = _messages(entries)
        if not int(recovered):
            messages.reverse()  # XREVRANGE gave newest first
        return Recovery(epoch=epoch, seq=int(seq), messages=messages, recovered=bool(int(recovered)))

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        upper = f"(0-{before_seq}" if before_seq is not None else "+"
        async with self._available():
            entries = await self._redis.xrevrange(self._keys.room(room).log, upper, "-", count=limit + 1) or []
        messages = _messages(entries[:limit])
        messages.reverse()
        return Page(messages=messages, has_more=len(entries) > limit)

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


def _messages(entries: Sequence[Any]) -> list[MessageDict]:
    """Messages out of stream entries `[id, [field, value]]` (or `(id, {field: value})`)."""
    messages = []
    for _, fields in entries:
        value = fields["m"] if isinstance(fields, dict) else fields[1]
        messages.append(json.loads(value))
    return messages


def instance_id() -> str:
    """A new id for this process among the instances sharing Redis."""
    return secrets.token_hex(6)
