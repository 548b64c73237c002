"""The rule that keeps a connection's pipelined messages in order (see `ChatSocketServer`):
from the moment the `message` event's handler starts to the moment its append script call
takes its place in line (`BatchedScript`), nothing waits. The server starts the handler of
the next message once this one first waits; an await before the append would let the next
message's append overtake it.

The handler is stepped by hand here, through the namespace, the service and the store on a
real Redis: its first wait must be the append's own."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from typing import Any

from chatserver.auth import TokenIssuer, TokenVerifier
from chatserver.config import Settings
from chatserver.editing import MessageEditing
from chatserver.membership import Membership
from chatserver.metrics import Metrics
from chatserver.models import User
from chatserver.moderation import Moderation
from chatserver.namespace import ChatNamespace
from chatserver.reading import ReadMarks
from chatserver.service import ChatService
from chatserver.sessions import Sessions
from tests.contract.conftest import redis_store
from tests.unit.test_service import RecordingFanout

ANA = User("u-ana", "Ana")


async def finish(coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Run a coroutine that was stepped by hand to its end, as a task would have."""
    while True:
        if waiting_on is None:
            await asyncio.sleep(0)
        else:
            await asyncio.wait({waiting_on})
        try:
            waiting_on = coroutine.send(None)
        except StopIteration as stop:
            return stop.value


async def test_a_message_takes_its_place_in_line_before_its_handler_first_waits(redis_url: str) -> None:
    store = redis_store(redis_url, instance="i-order", prefix=f"test:{secrets.token_hex(6)}:")
    settings = Settings(secret_key="k" * 32, rate_limit=1000)
    fanout = RecordingFanout()
    service = ChatService(store, fanout, settings)
    tokens = TokenIssuer("k" * 32, 60)
    moderation = Moderation(store, Membership(store, fanout), fanout)
    namespace = ChatNamespace(service, Sessions(store, fanout, refresh_notice=60), moderation=moderation,
                              editing=MessageEditing(store, service, fanout, settings),
                              reads=ReadMarks(store, service, fanout), tokens=TokenVerifier(tokens, None),
                              metrics=Metrics())
    service.connect("c-ana", ANA)
    await service.join("c-ana", "lobby", None, None)
    try:
        first = asyncio.ensure_future(namespace._handle("c-ana", "message", ({"room": "lobby", "text": "one"},)))
        while not store._append._busy:  # the first append's round trip is out
            await asyncio.sleep(0)
        second = namespace._handle("c-ana", "message", ({"room": "lobby", "text": "two"},))
        waiting_on = second.send(None)  # the handler runs to its first wait
        assert len(store._append._waiting) == 1, "the second message waited before its append took its place"
        acks = [await first, await finish(second, waiting_on)]
        assert [ack["message"]["seq"] for ack in acks] == [1, 2]
    finally:
        await store.close()
