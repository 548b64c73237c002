"""Run one Lua script for many callers: one round trip out at a time, the rest in one pipeline,
on a connection of its own."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


class BatchedScript:
    """Calls of `script` share Redis round trips: while one round trip is out, new calls
    wait, and then go together in one pipeline (not a transaction: each call is atomic on
    its own, as a script is). One call alone goes at once, as a plain EVALSHA.

    The calls go on a connection of their own, made like the pool's, without redis-py's
    per-command machinery: a pool checkout, a lock, a task and a timer for each write and
    a timer for each read (about 50 µs of CPU per call, measured), where one `timeout`
    bounds a whole exchange here. Redis runs scripts one after another anyway. Replies
    come back in call order, and callers resume in that order. A failed or interrupted
    exchange drops the connection (its replies can no longer be matched); the next one
    connects again.

    On a Cluster the calls' keys live on several nodes, so a batch goes through redis-py's
    cluster pipeline instead, which sends each node its share at once.
    """

    def __init__(self, redis: Redis | RedisCluster, script: AsyncScript, *, timeout: float, spread: bool) -> None:
        """`spread`: the keys live on several nodes (`Traits.spread`), and `redis` is the cluster client."""
        self._redis = redis
        self._script = script
        self._timeout = timeout
        self._connection: AbstractConnection | None = None  # where spread: none, the pipeline's
        if not spread:
            pool = cast(Redis, redis).connection_pool
            self._connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        self._busy = False  # a round trip is out
        self._waiting: list[_Call] = []
        self._batch: asyncio.Task[None] | None = None

    async def __call__(self, *, keys: list[str], args: list[str | int]) -> Any:
        """The script's reply for `keys` and `args`; raises what Redis or the connection raised.

        Calls run in the order they were made: a call takes its place in line when it is
        made, before it first waits. Pipelined messages depend on this (see
        `ChatSocketServer`): nothing may wait between the start of a `message` event's
        handler and this call (`tests/contract/test_message_order.py`)."""
        if self._busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append(_Call(keys, args, future))
            return await future
        self._busy = True
        try:
            [reply] = await self._replies([_Call(keys, args, None)])
        finally:
            self._send_waiting()
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()

    def _send_waiting(self, _: object = None) -> None:
        """The round trip out has come back: send what waited meanwhile, or go idle."""
        if not self._waiting:
            self._busy = False
            return
        batch, self._waiting = self._waiting, []
        self._batch = asyncio.ensure_future(self._run(batch))
        self._batch.add_done_callback(self._send_waiting)

    async def _run(self, batch: list[_Call]) -> None:
        try:
            replies = await self._replies(batch)
        except Exception as error:  # the connection failed: every caller gets it
            replies = [error] * len(batch)
        for call, reply in zip(batch, replies, strict=True):
            if call.reply is None or call.reply.done():  # the caller was cancelled
                continue
            if isinstance(reply, Exception):
                call.reply.set_exception(reply)
            else:
                call.reply.set_result(reply)

    async def _replies(self, batch: list[_Call]) -> list[Any]:
        """One reply per call, error replies among them; raises if the connection failed."""
        replies = await self._exchange(batch)
        unloaded = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unloaded:  # Redis restarted or was flushed; the calls that did run must not run twice
            await self._load()
            for n, reply in zip(unloaded, await self._exchange([batch[n] for n in unloaded]), strict=True):
                replies[n] = reply
        return replies

    async def _load(self) -> None:
        """Load the script into Redis, on this script's own connection where it has one
        (after a restart the pool's connections may be stale too)."""
        if self._connection is None:
            await self._redis.script_load(self._script.script)
            return
        [reply] = await self._send(self._connection, [("SCRIPT", "LOAD", self._script.script)])
        if isinstance(reply, Exception):
            raise reply

    async def _exchange(self, batch: list[_Call]) -> list[Any]:
        connection = self._connection
        if connection is None:
            return await self._pipelined(batch)
        commands = [("EVALSHA", self._script.sha, len(call.keys), *call.keys, *call.args) for call in batch]
        stale = connection.is_connected  # connected before: Redis may have dropped it since
        try:
            return await self._send(connection, commands)
        except RedisConnectionError:
            if not stale:
                raise
            # A connection Redis dropped while it was idle (Redis restarted, or Sentinel
            # failed over) fails its first use; as redis-py's own client does, try once more
            # on a new one.
            return await self._send(connection, commands)

    async def _send(self, connection: AbstractConnection, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The replies to `commands`, error replies among them; on any failure the connection
        is dropped (its replies could no longer be matched to calls) and the error raised."""
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self._timeout):
                if not connection.is_connected:
                    # `connect` itself: behind Sentinel it asks for the master; a send on
                    # an unconnected connection would connect to the default address
                    await connection.connect()  # type: ignore[no-untyped-call]
                # hiredis packs in C; redis-py's asyncio connection packs in Python, which
                # cost about 7 % of an instance's CPU with many small rooms (py-spy)
                packed = b"".join(hiredis.pack_command(command) for command in commands)
                await connection.send_packed_command(packed, check_health=False)
                for _ in commands:
                    try:
                        # the timeout above bounds the whole exchange: one of redis-py's own
                        # per reply (its default) cost 5 µs a reply, 40 % of reading it
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as error:
                        replies.append(error)
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        return replies

    async def _pipelined(self, batch: list[_Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in batch:
                # not `pipe.evalsha`: redis-py's cluster pipeline refuses that method, but
                # routes the command by its keys; NOSCRIPT is handled in `_replies`
                pipe.execute_command("EVALSHA", self._script.sha, len(call.keys), *call.keys, *call.args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


@dataclass(frozen=True, slots=True)
class _Call:
    keys: list[str]
    args: list[str | int]
    reply: asyncio.Future[Any] | None  # None for the call made inline
