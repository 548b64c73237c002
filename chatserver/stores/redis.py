"""`RedisStore`: state shared by every instance, in Redis (redis-py asyncio client)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, overload

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from ..errors import RateLimited, StoreUnavailable
from ..models import MessageDict, Position, User
from . import redis_scripts as lua
from .base import Announcement, Appended, Draft, Page, PrivateRoom, RateLimit, Recovery
from .batching import BatchedScript
from .memory import new_epoch
from .redis_cluster import cluster_client, seed_client
from .redis_urls import is_cluster_url, is_sentinel_url, parse_cluster_url, parse_sentinel_url

log = logging.getLogger(__name__)

DUPLICATE, LIMITED = 1, 2  # the append script's outcomes besides 0, stored
COMMAND_TIMEOUT = 2.0  # seconds; a request that needs Redis fails within a few seconds


RedisClient = Redis | RedisCluster


@overload
def connect(url: str, max_connections: int = 64, *, for_pubsub: Literal[True]) -> Redis: ...
@overload
def connect(url: str, max_connections: int = 64, *, for_pubsub: Literal[False] = False) -> RedisClient: ...
def connect(url: str, max_connections: int = 64, *, for_pubsub: bool = False) -> RedisClient:
    """A client whose commands fail fast while Redis is away, and reconnect by themselves.

    The pool waits (up to the command timeout) for a free connection instead of failing,
    so a burst queues for Redis rather than opening a socket per request. Behind
    Sentinel every new connection asks the sentinels for the master, so after a failover
    the client follows the promoted replica. On a Cluster the store gets redis-py's
    cluster client (`max_connections` per node); python-socketio's manager gets a client
    to one seed node, as the cluster client has no pub/sub. `for_pubsub`: for that
    manager, replies stay bytes and reads have no timeout (a subscriber waits for messages).
    """
    options: dict[str, Any] = {
        "max_connections": max_connections, "timeout": COMMAND_TIMEOUT,
        "socket_connect_timeout": COMMAND_TIMEOUT, "socket_keepalive": True, "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)}
    if not for_pubsub:
        options.update(decode_responses=True, socket_timeout=COMMAND_TIMEOUT)
    if is_cluster_url(url):
        cluster = parse_cluster_url(url)
        return seed_client(cluster, options) if for_pubsub else cluster_client(cluster, options)
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = Sentinel(list(target.sentinels), username=target.username,  # type: ignore[no-untyped-call]
                            password=target.password,
                            sentinel_kwargs={"socket_timeout": COMMAND_TIMEOUT,
                                             "socket_connect_timeout": COMMAND_TIMEOUT})
        master: Redis = sentinel.master_for(target.service, redis_class=Redis,
                                            connection_pool_class=_BlockingSentinelPool, **options)
        return master
    return Redis(connection_pool=BlockingConnectionPool.from_url(url, **options))


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to the master Sentinel names, from a pool that waits for a free one
    (as for one server) instead of refusing past `max_connections`."""


class RedisStore:
    """The `Store` protocol in Redis; every multi-key step is one Lua script."""

    def __init__(self, redis: RedisClient, instance: str, prefix: str = "chat:") -> None:
        self._redis = redis
        self._instance = instance
        self._p = prefix
        self._append = BatchedScript(redis, redis.register_script(lua.APPEND), timeout=COMMAND_TIMEOUT)
        self._recover = redis.register_script(lua.RECOVER)
        self._add_presence = redis.register_script(lua.ADD_PRESENCE)
        self._remove_presence = redis.register_script(lua.REMOVE_PRESENCE)
        self._reap = redis.register_script(lua.REAP)
        self._admit = redis.register_script(lua.ADMIT)

    @asynccontextmanager
    async def _available(self) -> AsyncIterator[None]:
        """Turn Redis being away into a `StoreUnavailable` the client sees as `internal`."""
        try:
            yield
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("redis unavailable", extra={"error": f"{type(error).__name__}: {error}"})
            raise StoreUnavailable() from None

    # --- keys ---------------------------------------------------------------

    def _room_keys(self, room: str) -> list[str]:
        return [f"{self._p}room:{room}:meta", f"{self._p}room:{room}:log"]

    def _private_keys(self, room: str) -> list[str]:
        """A private room's settings hash and its members set."""
        return [f"{self._p}private:{room}", f"{self._p}private:{room}:members"]

    def _presence_keys(self, room: str, user_id: str) -> list[str]:
        return [f"{self._p}presence:{room}:users", f"{self._p}presence:{room}:conns:{user_id}",
                f"{self._p}instance:{self._instance}:presence", f"{self._p}rooms:online",
                self._private_keys(room)[0]]

    # --- messages -----------------------------------------------------------

    async def append(self, draft: Draft, *, history_size: int, dedupe_ttl: float,
                     rate: RateLimit | None, announce: Announcement | None = None) -> Appended:
        message = draft.as_message(0)
        # stored as JSON without `seq`; the script writes the `seq` it allocates in front
        body = json.dumps({key: value for key, value in message.items() if key != "seq"}, separators=(",", ":"))
        dedupe = (f"{self._p}dedupe:{draft.room}:" + json.dumps([draft.user["id"], draft.client_id])
                  if draft.client_id else "")
        rate_key = f"{self._p}rate:{rate.key}" if rate else ""
        args: list[str | int] = [new_epoch(), body, history_size, int(dedupe_ttl * 1000),
                                 rate.limit if rate else 0, int(rate.window * 1000) if rate else 0, draft.id,
                                 *((announce.channel, announce.prefix, announce.suffix, announce.command)
                                   if announce else ("", "", "", ""))]
        async with self._available():
            outcome, value = await self._append(keys=[*self._room_keys(draft.room), dedupe, rate_key], args=args)
        if int(outcome) == LIMITED:
            raise RateLimited(retry_after=round(int(value) / 1000, 3))
        if int(outcome) == DUPLICATE:
            return Appended(message=json.loads(value), duplicate=True)
        message["seq"] = int(value)
        return Appended(message=message, duplicate=False)

    async def recover(self, room: str, since: Position | None, *, latest: int) -> Recovery:
        args: list[str | int] = [new_epoch(), since.seq if since else -1, since.epoch if since else "", latest]
        async with self._available():
            epoch, seq, recovered, entries = await self._recover(keys=self._room_keys(room), args=args)
        messages = _messages(entries)
        if not int(recovered):
            messages.reverse()  # XREVRANGE gave newest first
        return Recovery(epoch=epoch, seq=int(seq), messages=messages, recovered=bool(int(recovered)))

    async def history(self, room: str, before_seq: int | None, limit: int) -> Page:
        upper = f"(0-{before_seq}" if before_seq is not None else "+"
        async with self._available():
            entries = await self._redis.xrevrange(self._room_keys(room)[1], upper, "-", count=limit + 1) or []
        messages = _messages(entries[:limit])
        messages.reverse()
        return Page(messages=messages, has_more=len(entries) > limit)

    # --- presence -----------------------------------------------------------

    async def add_presence(self, room: str, user: User, conn: str) -> bool:
        async with self._available():
            return bool(await self._add_presence(keys=self._presence_keys(room, user.id),
                                                 args=self._presence_args(room, user, conn)))

    async def remove_presence(self, room: str, user: User, conn: str) -> bool:
        async with self._available():
            return bool(await self._remove_presence(keys=self._presence_keys(room, user.id),
                                                    args=self._presence_args(room, user, conn)))

    @staticmethod
    def _presence_args(room: str, user: User, conn: str) -> list[str]:
        return [user.id, json.dumps(user.as_dict()), conn, room, f"{room}\n{user.id}\n{conn}"]

    async def members(self, room: str) -> list[User]:
        async with self._available():
            raw = await self._redis.hvals(f"{self._p}presence:{room}:users")
        users = [User(**json.loads(item)) for item in raw]
        return sorted(users, key=lambda user: (user.name, user.id))

    async def online_rooms(self, limit: int) -> list[tuple[str, int]]:
        async with self._available():
            rows = await self._redis.zrange(f"{self._p}rooms:online", 0, limit - 1, desc=True, withscores=True)
        counts = [(str(row[0]), int(row[1])) for row in rows if float(row[1]) > 0]
        return sorted(counts, key=lambda item: (-item[1], item[0]))

    async def heartbeat(self) -> bool:
        async with self._available():
            added = await self._redis.zadd(f"{self._p}instances", {self._instance: int(time.time() * 1000)})
        return bool(added)

    async def reap(self, expiry: float) -> list[tuple[str, User]]:
        deadline = int((time.time() - expiry) * 1000)
        async with self._available():
            flat = await self._reap(keys=[f"{self._p}instances", f"{self._p}rooms:online"],
                                    args=[self._p, deadline])
        return [(flat[i], User(**json.loads(flat[i + 1]))) for i in range(0, len(flat), 2)]

    # --- private rooms ------------------------------------------------------

    async def create_private_room(self, room: PrivateRoom) -> None:
        async with self._available(), self._redis.pipeline(transaction=True) as tx:
            meta_key, members_key = self._private_keys(room.room)
            tx.hset(meta_key, mapping={"invite": room.invite, "capacity": room.capacity})
            tx.sadd(members_key, *room.members)
            tx.set(f"{self._p}invite:{room.invite}", room.room)
            await tx.execute()

    async def private_room(self, room: str) -> PrivateRoom | None:
        async with self._available(), self._redis.pipeline(transaction=False) as pipe:
            meta_key, members_key = self._private_keys(room)
            pipe.hgetall(meta_key)
            pipe.smembers(members_key)
            fields, members = await pipe.execute()
        if not fields:
            return None
        return PrivateRoom(room=room, invite=fields["invite"], capacity=int(fields["capacity"]),
                           members=frozenset(members))

    async def room_for_invite(self, invite: str) -> str | None:
        async with self._available():
            room = await self._redis.get(f"{self._p}invite:{invite}")
        return str(room) if room is not None else None

    async def admit(self, room: str, user_id: str, invite: str) -> bool:
        async with self._available():
            return bool(await self._admit(keys=self._private_keys(room), args=[user_id, invite]))

    # --- lifecycle ----------------------------------------------------------

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self._append.close()
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
