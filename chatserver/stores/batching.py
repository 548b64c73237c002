"""Run one Lua script for many callers: one round trip out at a time, the rest in one pipeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


class BatchedScript:
    """Calls of `script` share Redis round trips: while one round trip is out, new calls
    wait, and then go together in one pipeline (not a transaction: each call is atomic on
    its own, as a script is). One call alone goes at once, as a plain EVALSHA.

    redis-py costs a pool checkout, a lock and a timer per command; with thousands of
    senders that was a quarter of an instance's time (bench/, 1,000 rooms on Redis).
    Redis runs scripts one after another anyway. Replies come back in call order, and
    callers resume in that order.
    """

    def __init__(self, redis: Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        self._busy = False  # a round trip is out
        self._waiting: list[_Call] = []
        self._batch: asyncio.Task[None] | None = None

    async def __call__(self, *, keys: list[str], args: list[str | int]) -> Any:
        """The script's reply for `keys` and `args`; raises what Redis or the connection raised."""
        if self._busy:
            reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append(_Call(keys, args, reply))
            return await reply
        self._busy = True
        try:
            return await self._script(keys=keys, args=args)
        finally:
            self._send_waiting()

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
            if call.reply.done():  # the caller was cancelled
                continue
            if isinstance(reply, Exception):
                call.reply.set_exception(reply)
            else:
                call.reply.set_result(reply)

    async def _replies(self, batch: list[_Call]) -> list[Any]:
        if len(batch) == 1:
            return [await self._script(keys=batch[0].keys, args=batch[0].args)]
        replies = await self._pipeline(batch)
        unloaded = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unloaded:  # Redis restarted or was flushed; the calls that did run must not run twice
            await self._redis.script_load(self._script.script)
            for n, reply in zip(unloaded, await self._pipeline([batch[n] for n in unloaded]), strict=True):
                replies[n] = reply
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in batch:
                pipe.evalsha(self._script.sha, len(call.keys), *call.keys, *call.args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


@dataclass(frozen=True, slots=True)
class _Call:
    keys: list[str]
    args: list[str | int]
    reply: asyncio.Future[Any]
