"""The store under test: every contract test runs against each implementation."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from chatserver.backplane.clients import connect
from chatserver.backplane.publish import RoomPublisher
from chatserver.backplane.topology import topology_of
from chatserver.stores.base import Store
from chatserver.stores.memory import MemoryStore
from chatserver.stores.redis import RedisStore


def redis_store(url: str, *, instance: str, prefix: str, publisher: RoomPublisher | None = None) -> RedisStore:
    """A `RedisStore` on the Redis `url` names, as the app builds one."""
    topology = topology_of(url)
    return RedisStore(connect(topology), topology, instance=instance, prefix=prefix, publisher=publisher)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis", "cluster"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(store_kind: str, request: pytest.FixtureRequest) -> str:
    """The REDIS_URL of a Redis store: one server, or the test session's Redis Cluster."""
    if store_kind == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def store(store_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if store_kind == "memory":
        instance: Store = MemoryStore(clock=request.getfixturevalue("clock"))
    else:  # a key prefix of its own keeps tests apart in one Redis
        url = request.getfixturevalue("store_url")
        instance = redis_store(url, instance="i-" + secrets.token_hex(4), prefix=f"test:{secrets.token_hex(6)}:")
    yield instance
    await instance.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def advance(store_kind: str, clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """Let time pass: by hand for the memory store, for real for Redis (which keeps its own time)."""
    async def advance(seconds: float) -> None:
        if store_kind == "memory":
            clock.now += seconds
        else:
            await asyncio.sleep(seconds)
    return advance
