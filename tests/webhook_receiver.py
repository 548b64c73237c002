"""A webhook receiver of the tests' own: a real HTTP server on a loopback port that keeps
every request as it came (raw body, headers, time) and answers as the test tells it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import free_port

WEBHOOK_SECRET = "webhook-secret-of-the-tests-0123456789"


@dataclass(frozen=True)
class Request:
    """One request as received; `answered` is the status given (None: left hanging)."""

    body: bytes
    headers: dict[str, str]
    at: float
    answered: int | None

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def signed_with(self, secret: str) -> bool:
        """Whether the signature is HMAC-SHA256 of "<timestamp>.<body>", checked here without the server's code."""
        mac = hmac.new(secret.encode(), self.headers["X-Chat-Timestamp"].encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest(self.headers["X-Chat-Signature"], "sha256=" + mac.hexdigest())


Answer = Callable[[Request], int | None]  # the status for a request, or None to leave it hanging


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    answer: Answer = lambda request: 204
    _hanging: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def delivered(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The events answered 2xx, in the order they came, of one type or all."""
        return [request.event for request in self.requests
                if request.answered is not None and 200 <= request.answered < 300
                and (type_ is None or request.event["type"] == type_)]

    async def handle(self, http_request: web.Request) -> web.StreamResponse:
        body = await http_request.read()
        incoming = Request(body, dict(http_request.headers), time.time(), None)
        status = self.answer(incoming)
        self.requests.append(Request(body, incoming.headers, incoming.at, status))
        if status is None:
            await self._hanging.wait()  # until the test ends
            status = 503
        return web.Response(status=status)

    def release(self) -> None:
        self._hanging.set()


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """`receiver` listening on 127.0.0.1, its port, while the block runs."""
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    try:
        yield receiver
    finally:
        receiver.release()
        await runner.cleanup()


@pytest.fixture(name="receiver")
async def receiver_fixture() -> AsyncIterator[Receiver]:
    """A receiver listening on 127.0.0.1 for the test's duration."""
    async with serving(Receiver()) as receiver:
        yield receiver
